"""The public-import promise: every path a DAG, a user's test, a connection or a running deployment
names today still imports from there, and is the same kind of thing.

The lists below are the promise, gathered from README.md, docs/*.md, example_dags/, pyproject.toml's
entry points, get_provider_info() and the public modules' ``__all__``. Trigger classpaths are stored in
the metadata DB of running deployments (a deferred task's trigger row): they must keep importing, and
rebuild the same trigger from the kwargs they stored. A name moved elsewhere stays importable here
with a DeprecationWarning naming its new spelling (``DEPRECATED``); removing a name from these lists
is a breaking change to say in the changelog.

Helper modules' ``__all__`` (``hooks.http_policy``, ``compat``, ``validation``) are internal: of them,
only what the docs name is promised (``RetryPolicy``, the ``validation`` module).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_confirma.get_provider_info import get_provider_info
from tests.airflow_compat import deserialize, serialize

ROOT = Path(__file__).resolve().parents[1]
P = "airflow_provider_confirma"

#: Modules a DAG, a test or the docs name (the provider info's lists are checked to be among them).
MODULES = [
    P,
    f"{P}.assets",
    f"{P}.endpoints",
    f"{P}.exceptions",
    f"{P}.get_provider_info",
    f"{P}.hooks",
    f"{P}.hooks.confirma",
    f"{P}.hooks.http_policy",
    f"{P}.models",
    f"{P}.operators",
    f"{P}.operators.accounting",
    f"{P}.operators.base",
    f"{P}.operators.invoices",
    f"{P}.operators.payments",
    f"{P}.sandbox",
    f"{P}.sandbox.cli",
    f"{P}.sandbox.pytest_plugin",
    f"{P}.sensors",
    f"{P}.sensors.base",
    f"{P}.sensors.ledger_sync",
    f"{P}.sensors.payment_sync",
    f"{P}.sync_wait",
    f"{P}.triggers",
    f"{P}.triggers.base",
    f"{P}.triggers.ledger_sync",
    f"{P}.triggers.payment_sync",
    f"{P}.validation",
]

#: (module, name, kind): "class", "exception" (a class of Exception), "callable", "str", "asset",
#: "fixture" (a pytest fixture of the plugin).
NAMES: list[tuple[str, str, str]] = [
    (P, "__version__", "str"),
    # the hook and the connection type (get_provider_info's hook-class-name)
    (f"{P}.hooks.confirma", "ConfirmaHook", "class"),
    (f"{P}.hooks.http_policy", "RetryPolicy", "class"),
    # operators
    (f"{P}.operators.accounting", "ConfirmaSubmitPaymentsOperator", "class"),
    (f"{P}.operators.accounting", "ConfirmaSubmitLedgerOperator", "class"),
    (f"{P}.operators.accounting", "ConfirmaGetPaymentSyncStatusOperator", "class"),
    (f"{P}.operators.accounting", "ConfirmaGetLedgerSyncStatusOperator", "class"),
    (f"{P}.operators.accounting", "ConfirmaSubmissionConflictError", "exception"),
    (f"{P}.operators.invoices", "ConfirmaCreateInvoiceOperator", "class"),
    (f"{P}.operators.invoices", "ConfirmaCreateInvoiceActionOperator", "class"),
    (f"{P}.operators.invoices", "ConfirmaGetCaseDetailsOperator", "class"),
    (f"{P}.operators.invoices", "ConfirmaGetDistributionInfoOperator", "class"),
    (f"{P}.operators.payments", "ConfirmaGetPaymentsOperator", "class"),
    (f"{P}.operators.payments", "ConfirmaGetSettlementsOperator", "class"),
    (f"{P}.operators.payments", "totals_by_currency", "callable"),
    (f"{P}.operators.base", "ConfirmaBaseOperator", "class"),
    (f"{P}.operators.base", "ConfirmaWindowedOperator", "class"),
    (f"{P}.operators.base", "ConfirmaSubmissionUncertainError", "exception"),
    # sensors
    (f"{P}.sensors.base", "ConfirmaSyncStatusSensor", "class"),
    (f"{P}.sensors.payment_sync", "ConfirmaPaymentSyncSensor", "class"),
    (f"{P}.sensors.payment_sync", "ERROR_STREAK_KEY", "str"),
    (f"{P}.sensors.ledger_sync", "ConfirmaLedgerSyncSensor", "class"),
    # triggers
    (f"{P}.triggers.base", "ConfirmaSyncStatusTrigger", "class"),
    (f"{P}.triggers.payment_sync", "ConfirmaPaymentSyncTrigger", "class"),
    (f"{P}.triggers.ledger_sync", "ConfirmaLedgerSyncTrigger", "class"),
    (f"{P}.triggers.payment_sync", "ConfirmaPaymentSyncEventTrigger", "class"),
    (f"{P}.triggers.ledger_sync", "ConfirmaLedgerSyncEventTrigger", "class"),
    # assets
    (f"{P}.assets", "ASSET_SCHEME", "str"),
    (f"{P}.assets", "PAYMENT_SYNC_ASSET", "asset"),
    (f"{P}.assets", "PAYMENT_SYNC_ASSET_URI", "str"),
    (f"{P}.assets", "LEDGER_SYNC_ASSET", "asset"),
    (f"{P}.assets", "LEDGER_SYNC_ASSET_URI", "str"),
    (f"{P}.assets", "sync_asset", "callable"),
    (f"{P}.assets", "sync_asset_extra", "callable"),
    (f"{P}.assets", "ASSET_EXTRA_IDENTIFIERS", "int"),
    # what a user's test reads: the verdict and the endpoints
    (f"{P}.models", "StatusSets", "class"),
    (f"{P}.models", "evaluate_sync", "callable"),
    (f"{P}.endpoints", "Endpoint", "class"),
    # exceptions a DAG or a test catches
    (f"{P}.exceptions", "ConfirmaError", "exception"),
    (f"{P}.exceptions", "ConfirmaConfigError", "exception"),
    (f"{P}.exceptions", "ConfirmaArgumentError", "exception"),
    (f"{P}.exceptions", "ConfirmaTransportError", "exception"),
    (f"{P}.exceptions", "ConfirmaAPIError", "exception"),
    (f"{P}.exceptions", "ConfirmaAuthError", "exception"),
    (f"{P}.exceptions", "ConfirmaClientError", "exception"),
    (f"{P}.exceptions", "ConfirmaRateLimitError", "exception"),
    (f"{P}.exceptions", "ConfirmaServerError", "exception"),
    (f"{P}.exceptions", "ConfirmaResponseError", "exception"),
    # the sandbox, its CLI and its pytest plugin
    (f"{P}.sandbox", "ConfirmaSandbox", "class"),
    (f"{P}.sandbox", "SandboxProcess", "class"),
    (f"{P}.sandbox", "SandboxConfig", "class"),
    (f"{P}.sandbox", "ChaosConfig", "class"),
    (f"{P}.sandbox", "SandboxAdmin", "class"),
    (f"{P}.sandbox", "SandboxAdminError", "exception"),
    (f"{P}.sandbox", "SandboxEndpoint", "class"),
    (f"{P}.sandbox.cli", "main", "callable"),
    (f"{P}.sandbox.pytest_plugin", "confirma_sandbox", "fixture"),
    (f"{P}.sandbox.pytest_plugin", "confirma_sandbox_conn", "fixture"),
    (f"{P}.sandbox.pytest_plugin", "confirma_sandbox_server", "fixture"),
    (f"{P}.sandbox.pytest_plugin", "confirma_sandbox_config", "fixture"),
    (f"{P}.get_provider_info", "get_provider_info", "callable"),
]

#: Trigger classpaths stored with deferred tasks, and the sensor that defers to each.
TRIGGERS: dict[str, str] = {
    f"{P}.triggers.payment_sync.ConfirmaPaymentSyncTrigger": f"{P}.sensors.payment_sync.ConfirmaPaymentSyncSensor",
    f"{P}.triggers.ledger_sync.ConfirmaLedgerSyncTrigger": f"{P}.sensors.ledger_sync.ConfirmaLedgerSyncSensor",
}

#: pyproject.toml's entry points: group -> {name: target}.
ENTRY_POINTS: dict[str, dict[str, str]] = {
    "apache_airflow_provider": {"provider_info": f"{P}.get_provider_info:get_provider_info"},
    "pytest11": {"confirma_sandbox": f"{P}.sandbox.pytest_plugin"},
    "console_scripts": {"confirma-sandbox": f"{P}.sandbox.cli:main"},
}

#: Names that moved: (old module, name, new module). Importing from the old module warns.
DEPRECATED: list[tuple[str, str, str]] = [
    (f"{P}.triggers.sync_wait", name, f"{P}.sync_wait")
    for name in (
        "SyncWait",
        "SyncVerdict",
        "SyncEvent",
        "read_event",
        "EVENT_SUCCESS",
        "EVENT_FAILED",
        "EVENT_TIMEOUT",
        "EVENT_ERROR",
        "EVENT_STATUSES",
        "OUTCOME_SUCCESS",
        "OUTCOME_FAILED",
        "OUTCOME_WAITING",
    )
]

#: Modules whose ``__all__`` is public: every name it lists is in NAMES (so the promise is written out).
PUBLIC_ALL = [
    f"{P}.assets",
    f"{P}.operators.accounting",
    f"{P}.operators.invoices",
    f"{P}.operators.payments",
    f"{P}.sandbox",
    f"{P}.sensors.ledger_sync",
    f"{P}.sensors.payment_sync",
    f"{P}.triggers.ledger_sync",
    f"{P}.triggers.payment_sync",
]


def is_fixture(value: Any) -> bool:
    """A pytest fixture definition (pytest >= 8.4 wraps it in an object; before, it marks the function)."""
    return type(value).__name__ == "FixtureFunctionDefinition" or hasattr(value, "_pytestfixturefunction")


KINDS = {
    "class": inspect.isclass,
    "exception": lambda v: inspect.isclass(v) and issubclass(v, Exception),
    "callable": lambda v: callable(v) and not inspect.isclass(v),
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "asset": lambda v: type(v).__name__ == "Asset" and isinstance(v.uri, str),
    "fixture": is_fixture,
}


@pytest.mark.parametrize("module", MODULES)
def test_every_public_module_imports(module: str):
    assert isinstance(importlib.import_module(module), ModuleType)


@pytest.mark.parametrize(("module", "name", "kind"), NAMES, ids=[f"{m}.{n}" for m, n, _ in NAMES])
def test_every_public_name_imports_and_is_what_it_was(module: str, name: str, kind: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # a promised name is not a deprecated one
        value = getattr(importlib.import_module(module), name)
    assert KINDS[kind](value), f"{module}.{name} is no longer a {kind}: {value!r}"


def test_the_lists_cover_the_public_all_and_the_provider_info():
    listed = {(module, name) for module, name, _ in NAMES}
    for module in PUBLIC_ALL:
        missing = {name for name in importlib.import_module(module).__all__ if (module, name) not in listed}
        assert not missing, f"{module}.__all__ lists {sorted(missing)}, not written in NAMES"
    info = get_provider_info()
    provider_modules = {
        module
        for section in ("hooks", "operators", "sensors", "triggers")
        for entry in info[section]
        for module in entry["python-modules"]
    }
    assert provider_modules <= set(MODULES)
    hook_class = {conn["hook-class-name"] for conn in info["connection-types"]}
    assert hook_class == {f"{P}.hooks.confirma.ConfirmaHook"}
    assert all(cls.rpartition(".")[::2] in listed for cls in hook_class)
    trigger_modules = {path.rpartition(".")[0] for path in TRIGGERS}
    assert trigger_modules == {m for e in info["triggers"] for m in e["python-modules"]}


def test_the_docs_and_example_dags_import_only_listed_names():
    """Each ``from airflow_provider_confirma... import X`` in the README, docs and example DAGs is promised."""
    listed = {(module, name) for module, name, _ in NAMES}
    pattern = re.compile(r"^\s*from (airflow_provider_confirma[\w.]*) import ([\w, ]+)$", re.MULTILINE)
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "example_dags").glob("*.py"))]
    seen = set()
    for path in texts:
        for module, names in pattern.findall(path.read_text()):
            for name in (n.strip() for n in names.split(",")):
                seen.add((module, name))
                assert (module, name) in listed, f"{path.name} imports {module}.{name}, not in NAMES"
    assert (f"{P}.sensors.payment_sync", "ConfirmaPaymentSyncSensor") in seen  # the pattern still finds them


def test_entry_points_resolve_to_what_they_name():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the test extra installs tomli on Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {group: dict(names) for group, names in project["entry-points"].items()}
    declared["console_scripts"] = dict(project["scripts"])
    assert declared == ENTRY_POINTS
    for group, names in ENTRY_POINTS.items():
        for target in names.values():
            module, _, attr = target.partition(":")
            value = importlib.import_module(module)
            if attr:
                value = getattr(value, attr)
                assert callable(value), f"{group} entry point {target} is not callable"


def test_the_pytest_plugin_is_registered_under_its_entry_point_name(request: pytest.FixtureRequest):
    plugin = request.config.pluginmanager.get_plugin("confirma_sandbox")
    assert plugin is not None and plugin.__name__ == f"{P}.sandbox.pytest_plugin"
    config = request.getfixturevalue("confirma_sandbox_config")  # cheap: no server is started
    assert type(config).__name__ == "SandboxConfig"


def trigger_kwargs() -> dict[str, Any]:
    """Kwargs of a deferred wait as a sensor stores them (no secrets: the connection id only)."""
    now = time.time()
    return {
        "confirma_conn_id": "confirma_default",
        "source_identifiers": ["id-1", "id-2"],
        "success_statuses": [1],
        "pending_statuses": [0],
        "query_params": {"fromDate": "2026-02-01"},
        "poll_interval": 30,
        "started_at": now,
        "end_time": now + 3600,
    }


@pytest.mark.parametrize("classpath", TRIGGERS)
def test_trigger_classpaths_round_trip(classpath: str):
    """serialize() -> import the classpath -> construct from the kwargs (through serde, as the
    triggerer reads them from the DB) -> the same serialize()."""
    trigger = import_string(classpath)(**trigger_kwargs())
    stored_path, kwargs = trigger.serialize()
    assert stored_path == classpath
    decoded: dict[str, Any] = deserialize(serialize(kwargs))  # type: ignore[assignment]
    rebuilt = import_string(stored_path)(**decoded)
    assert type(rebuilt) is type(trigger)
    assert rebuilt.serialize() == (stored_path, kwargs)


@pytest.mark.parametrize(("classpath", "sensor_path"), TRIGGERS.items())
def test_each_sensor_defers_to_its_listed_trigger_classpath(classpath: str, sensor_path: str):
    sensor_class = import_string(sensor_path)
    trigger_class = sensor_class.get_trigger_class()
    assert f"{trigger_class.__module__}.{trigger_class.__qualname__}" == classpath


@pytest.mark.parametrize(("old", "name", "new"), DEPRECATED, ids=[f"{o}.{n}" for o, n, _ in DEPRECATED])
def test_moved_names_still_import_from_the_old_place_and_warn(old: str, name: str, new: str):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old}.{name} moved to {new}")):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


def test_the_deprecated_module_still_supports_from_imports():
    with pytest.warns(DeprecationWarning, match=r"moved to airflow_provider_confirma\.sync_wait"):
        from airflow_provider_confirma.triggers.sync_wait import SyncWait  # noqa: F401
    with pytest.raises(AttributeError):
        importlib.import_module(f"{P}.triggers.sync_wait").NeverExisted  # noqa: B018
