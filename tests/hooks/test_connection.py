"""Reading ``confirma`` connections (JSON and URI forms, as Airflow parses them) into settings."""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from airflow.providers.common.compat.sdk import BaseHook
from conftest import TEST_API_KEY  # tests/conftest.py, already imported by pytest

from airflow_provider_confirma.endpoints import API_PREFIX, ENVIRONMENT_HOSTS
from airflow_provider_confirma.exceptions import ConfirmaConfigError
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.connection import (
    DEFAULT_TIMEOUT,
    ConfirmaConnectionSettings,
    extra_field,
    is_loopback,
)

STAGING = "https://staging-integrations.confirmafinance.com" + API_PREFIX
PRODUCTION = "https://integrations.confirmafinance.com" + API_PREFIX


@pytest.fixture
def settings_for(confirma_conn_env):
    """Put a connection in the environment (JSON dict or URI string) and read it back as settings."""

    def read(value: dict | str, conn_id: str = "confirma_default") -> ConfirmaConnectionSettings:
        confirma_conn_env(conn_id, value if isinstance(value, str) else json.dumps(value))
        return ConfirmaConnectionSettings.from_connection(BaseHook.get_connection(conn_id))

    return read


def conn_json(extra: dict | None = None, **fields) -> dict:
    fields.setdefault("password", TEST_API_KEY)
    return {"conn_type": "confirma", **fields, "extra": extra or {}}


# -- environments and hosts ------------------------------------------------------------------------
def test_documented_hosts():
    assert ENVIRONMENT_HOSTS == {
        "staging": "https://staging-integrations.confirmafinance.com",
        "production": "https://integrations.confirmafinance.com",
    }
    assert API_PREFIX == "/api/v1/partner"


@pytest.mark.parametrize(("environment", "base_url"), [("staging", STAGING), ("production", PRODUCTION)])
def test_json_form_environment_selects_base_url(settings_for, environment, base_url):
    settings = settings_for(conn_json({"environment": environment}))
    assert settings.base_url == base_url
    assert settings.api_key == TEST_API_KEY
    assert settings.environment == environment
    assert settings.timeout == DEFAULT_TIMEOUT
    assert settings.verify is True
    assert settings.provisioning_token is None
    assert settings.url("/accounting/payment") == base_url + "/accounting/payment"


def test_environment_is_case_and_space_insensitive(settings_for):
    assert settings_for(conn_json({"environment": " Production "})).base_url == PRODUCTION


def test_uri_form_with_string_extras_is_coerced(settings_for):
    key = "ck/with+odd=chars@1"
    uri = f"confirma://:{quote(key, safe='')}@/?environment=production&timeout=12&ca_bundle=%2Fetc%2Fssl%2Fcorp.pem"
    settings = settings_for(uri, conn_id="confirma_uri")
    assert settings.conn_id == "confirma_uri"
    assert settings.base_url == PRODUCTION
    assert settings.api_key == key
    assert settings.timeout == 12.0 and isinstance(settings.timeout, float)
    assert settings.verify == "/etc/ssl/corp.pem"


def test_uri_form_with_loopback_host_and_port(settings_for):
    settings = settings_for(f"confirma://:{TEST_API_KEY}@127.0.0.1:8780")
    assert settings.base_url == "http://127.0.0.1:8780" + API_PREFIX
    assert settings.environment is None


def test_uri_form_with_remote_host_defaults_to_https(settings_for):
    settings = settings_for(f"confirma://:{TEST_API_KEY}@sandbox.example.com:8443/?environment=staging")
    assert settings.base_url == "https://sandbox.example.com:8443" + API_PREFIX


def test_older_prefixed_extra_form(settings_for):
    settings = settings_for(
        conn_json(
            {
                "extra__confirma__environment": "production",
                "extra__confirma__timeout": "7.5",
                "extra__confirma__partner_provisioning_token": "pp_token_123456",
                "extra__confirma__ca_bundle": "/opt/ca.pem",
            }
        )
    )
    assert settings.base_url == PRODUCTION
    assert settings.timeout == 7.5
    assert settings.provisioning_token == "pp_token_123456"
    assert settings.verify == "/opt/ca.pem"


def test_plain_key_wins_over_prefixed_and_empty_plain_falls_back():
    assert extra_field({"environment": "production", "extra__confirma__environment": "staging"}, "environment") == (
        "production"
    )
    assert extra_field({"environment": "", "extra__confirma__environment": "staging"}, "environment") == "staging"
    assert extra_field({"extra__confirma__timeout": ""}, "timeout") is None
    assert extra_field({}, "timeout") is None


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("sandbox.example.com", "https://sandbox.example.com"),
        ("https://proxy.corp.example:8443/confirma/", "https://proxy.corp.example:8443/confirma"),
        (
            "https://staging-integrations.confirmafinance.com/api/v1/partner",
            "https://staging-integrations.confirmafinance.com",
        ),
        ("HTTPS://Example.COM", "https://example.com"),
    ],
)
def test_host_overrides_environment(settings_for, host, base):
    settings = settings_for(conn_json({"environment": "production"}, host=host))
    assert settings.base_url == base + API_PREFIX
    assert settings.environment == "production"


def test_port_field_applies_to_a_bare_host(settings_for):
    assert (
        settings_for(conn_json(host="proxy.example", port=8443)).base_url == "https://proxy.example:8443" + API_PREFIX
    )


@pytest.mark.parametrize(
    ("fields", "base"),
    [
        # 0 is what Airflow 3.3.2's UI sends for an empty port: the URL's own port.
        ({"host": "proxy.example", "port": 0}, "https://proxy.example"),
        ({"host": "http://127.0.0.1:8765", "port": 0}, "http://127.0.0.1:8765"),
        ({"host": "http://127.0.0.1:8765", "port": 8765}, "http://127.0.0.1:8765"),
        ({"host": "http://[::1]", "port": 8765}, "http://[::1]:8765"),
        ({"extra": {"environment": "production"}, "port": 0}, "https://integrations.confirmafinance.com"),
        ({"extra": {"environment": "staging"}, "port": 8443}, "https://staging-integrations.confirmafinance.com:8443"),
    ],
)
def test_port_field_supplies_the_urls_port(settings_for, fields, base):
    extra = fields.pop("extra", None)
    assert settings_for(conn_json(extra, **fields)).base_url == base + API_PREFIX


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        (9000, "field 'port' is 9000 but the Base URL names port 8765; set one of them"),
        (70000, "field 'port' must be between 0 and 65535 (0: the URL's own port), got 70000"),
        (-1, "field 'port' must be between 0 and 65535"),
    ],
)
def test_port_field_that_cannot_apply(port, problem):
    conn = SimpleNamespace(
        conn_id="ported", password=TEST_API_KEY, host="http://127.0.0.1:8765", port=port, extra_dejson={}
    )
    with pytest.raises(ConfirmaConfigError, match=r"^Confirma connection 'ported': ") as info:
        ConfirmaConnectionSettings.from_connection(conn)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("http://127.0.0.1:8780", "http://127.0.0.1:8780"),
        ("http://127.45.6.7", "http://127.45.6.7"),
        ("http://localhost:8780", "http://localhost:8780"),
        ("http://LOCALHOST", "http://localhost"),
        ("http://[::1]:8780", "http://[::1]:8780"),
        ("127.0.0.1:8780", "http://127.0.0.1:8780"),
        ("localhost", "http://localhost"),
        ("::1", "http://[::1]"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_plain_http_is_allowed_on_loopback(settings_for, host, base):
    assert settings_for(conn_json(host=host)).base_url == base + API_PREFIX


@pytest.mark.parametrize(
    "host",
    [
        "http://sandbox.example.com",
        "http://10.0.0.5:8780",
        "http://192.168.1.10",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://[::2]",
        "http://0.0.0.0:8780",
    ],
)
def test_plain_http_is_refused_elsewhere(settings_for, host):
    with pytest.raises(ConfirmaConfigError) as info:
        settings_for(conn_json(host=host), conn_id="remote_http")
    message = str(info.value)
    assert "'remote_http'" in message
    assert "must use https" in message
    assert "field 'host'" in message


@pytest.mark.parametrize("name", ["127.0.0.1", "127.255.0.9", "::1", "[::1]", "localhost", "LocalHost"])
def test_is_loopback(name):
    assert is_loopback(name)


@pytest.mark.parametrize("name", ["10.0.0.1", "::2", "0.0.0.0", "localhost.evil", "example.com", ""])
def test_is_not_loopback(name):
    assert not is_loopback(name)


# -- TLS verification ------------------------------------------------------------------------------
@pytest.mark.parametrize("verify", [False, "false", "False", "0", 0, "no"])
def test_turning_tls_verification_off_is_refused(settings_for, verify):
    with pytest.raises(ConfirmaConfigError, match="cannot turn TLS verification off; use 'ca_bundle'"):
        settings_for(conn_json({"environment": "staging", "verify": verify}))


def test_turning_tls_verification_off_is_refused_in_uri_form(settings_for):
    with pytest.raises(ConfirmaConfigError, match=r"'confirma_uri_noverify'.*'verify'"):
        settings_for(f"confirma://:{TEST_API_KEY}@/?environment=staging&verify=false", conn_id="confirma_uri_noverify")


def test_verify_true_and_ca_bundle(settings_for):
    assert settings_for(conn_json({"environment": "staging", "verify": True})).verify is True
    assert settings_for(conn_json({"environment": "staging", "ca_bundle": "/srv/ca.pem"})).verify == "/srv/ca.pem"


# -- timeouts --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [(12, 12.0), ("12", 12.0), ("0.5", 0.5), (None, DEFAULT_TIMEOUT)])
def test_timeout_from_extra(settings_for, value, expected):
    assert settings_for(conn_json({"environment": "staging", "timeout": value})).timeout == expected


@pytest.mark.parametrize("value", ["abc", "0", -1, "nan", "inf", [5]])
def test_bad_timeout_is_named(settings_for, value):
    with pytest.raises(ConfirmaConfigError) as info:
        settings_for(conn_json({"environment": "staging", "timeout": value}), conn_id="conf_timeout")
    assert "Confirma connection 'conf_timeout': extra 'timeout'" in str(info.value)


# -- errors name the connection and the field ------------------------------------------------------
@pytest.mark.parametrize("password", [None, "", "   "])
def test_missing_api_key(settings_for, password):
    value = {"conn_type": "confirma", "extra": {"environment": "staging"}}
    if password is not None:
        value["password"] = password
    with pytest.raises(ConfirmaConfigError) as info:
        settings_for(value, conn_id="no_key")
    assert str(info.value) == (
        "Confirma connection 'no_key': field 'password' (API key) is empty; put the client API key there"
    )


def test_unknown_environment(settings_for):
    with pytest.raises(ConfirmaConfigError) as info:
        settings_for(conn_json({"environment": "prod"}), conn_id="typo_env")
    assert str(info.value) == (
        "Confirma connection 'typo_env': extra 'environment' is 'prod'; expected one of ['production', 'staging']"
    )


def test_unknown_environment_is_refused_even_with_a_host(settings_for):
    with pytest.raises(ConfirmaConfigError, match="extra 'environment' is 'sandbox'"):
        settings_for(conn_json({"environment": "sandbox"}, host="http://127.0.0.1:8780"))


def test_neither_environment_nor_host(settings_for):
    with pytest.raises(ConfirmaConfigError) as info:
        settings_for(conn_json(), conn_id="nowhere")
    assert str(info.value) == (
        "Confirma connection 'nowhere': set extra 'environment' (staging or production) or field 'host' (base URL)"
    )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"host": "ftp://files.example.com"}, "field 'host' uses scheme 'ftp'"),
        ({"host": "https://"}, "field 'host' 'https://' is not a valid host or URL"),
        ({"host": "https://example.com:99999"}, "field 'host' 'https://example.com:99999' has an invalid port"),
    ],
)
def test_bad_host_or_port(settings_for, fields, problem):
    with pytest.raises(ConfirmaConfigError) as info:
        settings_for(conn_json(**fields), conn_id="bad_host")
    assert str(info.value).startswith("Confirma connection 'bad_host': ")
    assert problem in str(info.value)


def test_bad_port_field():
    # Airflow's own parsers refuse a non-numeric port; a custom secrets backend might not.
    conn = SimpleNamespace(conn_id="bad_port", password=TEST_API_KEY, host="example.com", port="abc", extra_dejson={})
    with pytest.raises(ConfirmaConfigError, match=r"^Confirma connection 'bad_port': field 'port' must be a number"):
        ConfirmaConnectionSettings.from_connection(conn)


def test_config_errors_are_value_errors_and_never_show_the_key(settings_for):
    with pytest.raises(ValueError) as info:
        settings_for(conn_json({"environment": "nope", "timeout": "x"}))
    assert TEST_API_KEY not in str(info.value)


# -- secrets ---------------------------------------------------------------------------------------
def test_settings_and_hook_reprs_hide_secrets(settings_for, confirma_conn_env):
    token = "pp_PROVISIONING_9d8c7b"
    settings = settings_for(conn_json({"environment": "staging", "partner_provisioning_token": token}))
    assert settings.provisioning_token == token
    for text in (repr(settings), str(settings)):
        assert TEST_API_KEY not in text
        assert token not in text
        assert "confirma_default" in text
    hook = ConfirmaHook()
    assert hook.settings == settings
    assert TEST_API_KEY not in repr(hook)
    assert repr(hook) == "ConfirmaHook(confirma_conn_id='confirma_default')"
