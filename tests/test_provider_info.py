"""Provider registration: the metadata validates against Airflow's schemas, and the Airflow CLI (and
the UI's connection-form service) see the ``confirma`` connection type.

The CLI checks run each command once, all in parallel, in subprocesses using the test AIRFLOW_HOME.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest
from packaging.utils import canonicalize_name

from airflow_provider_confirma.compat import AIRFLOW_V_3_1_PLUS
from airflow_provider_confirma.get_provider_info import get_provider_info
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from tests.airflow_compat import only_on_airflow_3_3

AIRFLOW_DIR = Path(airflow.__file__).parent
ENTRY_POINT = "airflow_provider_confirma.get_provider_info:get_provider_info"
HOOK_CLASS = "airflow_provider_confirma.hooks.confirma.ConfirmaHook"
CONN_FIELDS = {"environment", "timeout", "partner_provisioning_token", "ca_bundle"}


def load_schema(name: str) -> dict[str, Any]:
    return json.loads((AIRFLOW_DIR / name).read_text())


def confirma_connection_type() -> dict[str, Any]:
    (conn_type,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == "confirma"]
    return conn_type


# -- metadata --------------------------------------------------------------------------------------
def test_provider_info_validates_against_airflow_runtime_schema():
    schema = load_schema("provider_info.schema.json")
    jsonschema.validators.validator_for(schema)(schema).validate(get_provider_info())


def test_connection_type_validates_against_the_provider_yaml_schema():
    """The stricter provider.yaml schema describes ui-field-behaviour and conn-fields in detail."""
    item_schema = load_schema("provider.yaml.schema.json")["properties"]["connection-types"]["items"]
    jsonschema.Draft7Validator(item_schema).validate(confirma_connection_type())


def test_field_behaviour_validates_as_the_providers_manager_converts_it():
    behaviour = confirma_connection_type()["ui-field-behaviour"]
    converted = {
        "hidden_fields": behaviour.get("hidden-fields", []),
        "relabeling": behaviour.get("relabeling", {}),
        "placeholders": behaviour.get("placeholders", {}),
    }
    jsonschema.Draft7Validator(load_schema("customized_form_field_behaviours.schema.json")).validate(converted)
    assert converted["relabeling"] == {"password": "API key", "host": "Base URL (optional)", "port": "Port"}
    # The port is shown: Airflow 3.3.2's Test refuses a stored connection without one (its UI sends 0).
    assert set(converted["hidden_fields"]) == {"schema", "login"}


def test_package_name_and_version_match_the_installed_distribution():
    info = get_provider_info()
    (entry_point,) = [
        ep for ep in importlib.metadata.entry_points(group="apache_airflow_provider") if ep.value == ENTRY_POINT
    ]
    assert entry_point.dist is not None
    assert info["package-name"] == canonicalize_name(entry_point.dist.name)
    assert info["versions"][0] == entry_point.dist.version
    assert entry_point.load() is get_provider_info


def test_config_section_declares_the_request_bound_with_the_hooks_default():
    """``[confirma] max_concurrent_requests``: declared for ``airflow config``, default as the hook's."""
    from airflow_provider_confirma.hooks import confirma as hook_module

    options = get_provider_info()["config"][hook_module.CONFIG_SECTION]["options"]
    option = options[hook_module.MAX_CONCURRENT_REQUESTS_OPTION]
    assert option["type"] == "integer"
    assert int(option["default"]) == hook_module.DEFAULT_MAX_CONCURRENT_REQUESTS
    assert set(options) == {hook_module.MAX_CONCURRENT_REQUESTS_OPTION, hook_module.MAX_RESPONSE_BYTES_OPTION}


def test_config_section_declares_the_response_cap_with_the_hooks_default():
    """``[confirma] max_response_bytes``: declared for ``airflow config``, default as the hook's."""
    from airflow_provider_confirma.hooks import confirma as hook_module

    option = get_provider_info()["config"][hook_module.CONFIG_SECTION]["options"][hook_module.MAX_RESPONSE_BYTES_OPTION]
    assert option["type"] == "integer"
    assert int(option["default"]) == hook_module.DEFAULT_MAX_RESPONSE_BYTES


def test_conn_fields_are_complete_and_well_formed():
    fields = confirma_connection_type()["conn-fields"]
    assert set(fields) == CONN_FIELDS
    for name, field in fields.items():
        assert field["label"].strip(), name
        assert field["description"].strip(), name
        assert field["schema"]["type"], name
        jsonschema.Draft7Validator.check_schema(field["schema"])
        if "default" in field["schema"]:
            jsonschema.validate(field["schema"]["default"], field["schema"])
    assert fields["environment"]["schema"]["enum"] == ["staging", "production"]
    assert fields["partner_provisioning_token"]["schema"]["format"] == "password"


def test_connection_type_matches_the_hook():
    conn_type = confirma_connection_type()
    assert conn_type["hook-class-name"] == HOOK_CLASS
    module, _, name = HOOK_CLASS.rpartition(".")
    assert getattr(importlib.import_module(module), name) is ConfirmaHook
    assert conn_type["connection-type"] == ConfirmaHook.conn_type
    assert conn_type["hook-name"] == ConfirmaHook.hook_name


def test_every_listed_module_imports():
    info = get_provider_info()
    modules = [
        module
        for section in ("hooks", "operators", "sensors", "triggers")
        for entry in info.get(section, [])
        for module in entry["python-modules"]
    ]
    assert "airflow_provider_confirma.hooks.confirma" in modules
    for module in modules:
        importlib.import_module(module)


# -- what Airflow itself reports (subprocesses, one per command, run in parallel) ------------------
COMMANDS: dict[str, list[str]] = {
    "list": ["-m", "airflow", "providers", "list", "-o", "json"],
    "hooks": ["-m", "airflow", "providers", "hooks", "-o", "json"],
    "behaviours": ["-m", "airflow", "providers", "behaviours", "-o", "json"],
    "widgets": ["-m", "airflow", "providers", "widgets", "-o", "json"],
    # What the React connection form reads (GET /ui/connections/hook_meta).
    "ui": [
        "-c",
        "import json; from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService; "
        "print(json.dumps([m.model_dump(mode='json') for m in HookMetaService.hook_meta_data()]))",
    ],
    # The [confirma] section's default, as Airflow's configuration reads it from the provider.
    "config": ["-m", "airflow", "config", "get-value", "confirma", "max_concurrent_requests"],
}
#: commands whose answer is one plain line (the last), not a JSON document
PLAIN_COMMANDS = {"config"}


def json_line(output: str) -> Any:
    """The JSON document of a command's stdout (log lines may precede it)."""
    for line in reversed(output.splitlines()):
        if line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON list in output: {output[-2000:]}")


@pytest.fixture(scope="module")
def airflow_reports() -> dict[str, Any]:
    """Each command's JSON output, from processes started together with the test AIRFLOW_HOME."""
    env = os.environ.copy()
    procs = {
        name: subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, args in COMMANDS.items()
    }
    reports: dict[str, Any] = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name} failed: {err[-2000:]}"
            reports[name] = out.strip().splitlines()[-1] if name in PLAIN_COMMANDS else json_line(out)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return reports


def test_cli_lists_the_provider(airflow_reports):
    (entry,) = [p for p in airflow_reports["list"] if p["package_name"] == "airflow-provider-confirma"]
    assert entry["version"] == get_provider_info()["versions"][0]


def test_cli_lists_the_hook(airflow_reports):
    (entry,) = [h for h in airflow_reports["hooks"] if h["connection_type"] == "confirma"]
    assert entry == {
        "connection_type": "confirma",
        "class": HOOK_CLASS,
        "conn_id_attribute_name": "confirma_conn_id",
        "package_name": "airflow-provider-confirma",
        "hook_name": "Confirma Finance",
    }


def test_cli_lists_the_field_behaviour(airflow_reports):
    assert {"field_behaviours": "confirma"} in airflow_reports["behaviours"]


@only_on_airflow_3_3("the CLI reads conn-fields from 3.2 (the form itself: test_airflow_versions.py)")
def test_cli_lists_the_four_conn_fields(airflow_reports):
    widgets = {
        w["connection_parameter_name"]: w
        for w in airflow_reports["widgets"]
        if w["connection_parameter_name"].startswith("extra__confirma__")
    }
    assert set(widgets) == {f"extra__confirma__{name}" for name in CONN_FIELDS}
    assert all(w["class"] == HOOK_CLASS for w in widgets.values())
    assert widgets["extra__confirma__environment"]["field_type"] == "string"
    assert widgets["extra__confirma__timeout"]["field_type"] == "number"


def test_ui_connection_form_shows_relabeling_and_conn_fields(airflow_reports):
    (meta,) = [m for m in airflow_reports["ui"] if m["connection_type"] == "confirma"]
    assert meta["hook_class_name"] == HOOK_CLASS
    assert meta["hook_name"] == "Confirma Finance"
    standard = meta["standard_fields"]
    assert standard["password"]["title"] == "API key"
    assert standard["host"]["title"] == "Base URL (optional)"
    assert standard["login"]["hidden"] and standard["url_schema"]["hidden"]
    assert not standard["port"]["hidden"] and standard["port"]["title"] == "Port"
    extra = meta["extra_fields"]
    assert set(extra) == CONN_FIELDS
    assert extra["environment"]["schema"]["enum"] == ["staging", "production"]
    assert extra["environment"]["value"] == "staging"
    assert extra["partner_provisioning_token"]["schema"]["format"] == "password"
    assert extra["timeout"]["schema"]["title"] == "Request timeout (seconds)"


def test_airflow_config_reads_the_providers_default(airflow_reports):
    from airflow_provider_confirma.hooks.confirma import DEFAULT_MAX_CONCURRENT_REQUESTS

    assert airflow_reports["config"] == str(DEFAULT_MAX_CONCURRENT_REQUESTS)


@pytest.mark.skipif(
    not AIRFLOW_V_3_1_PLUS,
    reason="Airflow 3.0's Providers page builds its own link (apache.org) from the package name",
)
def test_the_providers_page_links_to_our_documentation():
    """From Airflow 3.1 the Providers page links the package to its ``Documentation`` Project-URL
    (without one it falls back to an apache.org page that does not exist for us)."""
    from airflow.providers_manager import ProvidersManager

    metadata = importlib.metadata.metadata("airflow-provider-confirma")
    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL"))
    provider = ProvidersManager().providers["airflow-provider-confirma"]
    # Airflow 3.1 keeps the space after the comma (a browser trims it from a link) and splits at
    # every comma: a second comma in any Project-URL would break its Providers page.
    assert provider.data["documentation-url"].strip() == urls["Documentation"]
    assert all(entry.count(",") == 1 for entry in metadata.get_all("Project-URL"))
    assert urls["Documentation"].startswith("https://github.com/confirma-oss/airflow-provider-confirma")
    assert urls["Confirma API"] == "https://developer-partnerapi.confirmafinance.com/"


def test_the_form_hints_match_the_sandbox_and_say_what_overrides_what():
    from airflow_provider_confirma.sandbox.cli import DEFAULT_PORT

    conn_type = get_provider_info()["connection-types"][0]
    host_hint = conn_type["ui-field-behaviour"]["placeholders"]["host"]
    assert f"http://127.0.0.1:{DEFAULT_PORT}" in host_hint  # the port the sandbox really listens on
    assert len(host_hint) <= 60  # a longer placeholder is cut off in the field
    assert "Base URL, if set, overrides it" in conn_type["conn-fields"]["environment"]["description"]


def test_the_providers_page_description_links_to_the_confirma_api_docs():
    """The Providers page shows the description with Airflow's RST clean-up (which drops every
    `` ` _ < > ``) and turns its URLs into links: the API reference must come through intact."""
    try:
        from airflow.api_fastapi.core_api.services.public.providers import _remove_rst_syntax
    except ImportError:  # Airflow 3.0 keeps it in the route module
        from airflow.api_fastapi.core_api.routes.public.providers import _remove_rst_syntax

    shown = _remove_rst_syntax(get_provider_info()["description"])
    assert shown.endswith("API reference: https://developer-partnerapi.confirmafinance.com/")
    assert shown.startswith("Confirma Finance Integrations API (CFIS partner API)")
