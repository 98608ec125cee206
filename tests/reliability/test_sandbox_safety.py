"""The sandbox's admin API and keys, against real running sandboxes (the pytest plugin's session
server and a ``SandboxProcess``): admin calls need the sandbox key, never show the keys, take JSON
bodies only and answer only their own ``Host``; the keys never go on a command line."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.sandbox import SandboxAdmin, SandboxAdminError, SandboxConfig, SandboxProcess
from airflow_provider_confirma.sandbox.admin import ADMIN_PREFIX
from airflow_provider_confirma.sandbox.cli import build_parser, config_from_args
from airflow_provider_confirma.sandbox.config import DEFAULT_API_KEY, DEFAULT_PROVISIONING_TOKEN
from tests.reliability.helpers import store_payments

#: where the CLI reads the keys (literal here: the contract, not the implementation's constant)
API_KEY_ENV, PROVISIONING_TOKEN_ENV = "CONFIRMA_SANDBOX_API_KEY", "CONFIRMA_SANDBOX_PROVISIONING_TOKEN"
#: every admin endpoint, with a body that would change the sandbox if it were obeyed
ADMIN_CALLS = [
    ("GET", "/health", None),
    ("GET", "/stats", None),
    ("GET", "/records", None),
    ("GET", "/config", None),
    ("PUT", "/config", {"sync_delay": 99}),
    ("POST", "/config", {"sync_delay": 99}),
    ("GET", "/chaos", None),
    ("PUT", "/chaos", {"error_500": 1.0}),
    ("DELETE", "/chaos", None),
    ("POST", "/sync", {}),
    ("POST", "/reset", {}),
    ("GET", "/unknown", None),
]
CLIENT_BODY = {
    "service": {"type": "LIFECYCLE", "partnerCode": "PARTNER1"},
    "client": {"name": "Example Client Oy", "businessCode": "7654321-0", "countryCode": "FI"},
}


def admin_request(
    sandbox: Any, method: str, path: str, *, key: str | None = "sandbox", **kwargs: Any
) -> requests.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["X-Api-Key"] = sandbox.api_key if key == "sandbox" else key
    return requests.request(method, sandbox.url + ADMIN_PREFIX + path, headers=headers, timeout=10, **kwargs)


def assert_untouched(sandbox: Any, stored: int = 1) -> None:
    """Nothing an admin call could change has changed (in-process view of the live server)."""
    state = sandbox.state
    assert state.config == sandbox.config
    assert not state.config.chaos.active
    assert state.stats()["stored"]["payments"] == stored


# -- admin calls need the sandbox key ---------------------------------------------------------------
@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["no-key", "wrong-key"])
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS, ids=lambda v: v if isinstance(v, str) else None)
def test_admin_call_without_the_sandbox_key_is_401(confirma_sandbox, method, path, body, key):
    store_payments(confirma_sandbox, ["adm-1"])
    response = admin_request(confirma_sandbox, method, path, key=key, json=body)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized: the sandbox admin API needs the sandbox's X-Api-Key"}
    assert_untouched(confirma_sandbox)


def new_client_key(sandbox) -> str:
    """The API key of a client created with the provisioning token (a valid key, not an admin key)."""
    return requests.post(
        sandbox.api_url + Endpoint.CREATE_CLIENT.path,
        json=CLIENT_BODY,
        headers={"X-Api-Key": DEFAULT_PROVISIONING_TOKEN},
        timeout=10,
    ).json()["apiKey"]


def test_renewed_and_client_keys_are_not_admin_keys(confirma_sandbox):
    api = confirma_sandbox.api_url
    headers = {"X-Api-Key": confirma_sandbox.api_key}
    renewed = requests.get(api + Endpoint.RENEW.path, headers=headers, timeout=10).json()["Message"]
    client_key = new_client_key(confirma_sandbox)
    for key in (renewed, client_key):  # valid API keys...
        assert requests.get(api + Endpoint.VALIDATE.path, headers={"X-Api-Key": key}, timeout=10).ok
    for key in (renewed, client_key, DEFAULT_PROVISIONING_TOKEN):  # ...but not admin keys
        assert admin_request(confirma_sandbox, "POST", "/reset", key=key, json={}).status_code == 401
    assert confirma_sandbox.state.stats()["stored"]["clients"] == 1  # not reset
    assert admin_request(confirma_sandbox, "GET", "/stats").status_code == 200


def test_admin_client_sends_the_key_and_json(confirma_sandbox):
    admin = SandboxAdmin(confirma_sandbox.url, confirma_sandbox.api_key)
    assert admin.health()
    assert admin.configure(sync_delay=5)["sync_delay"] == 5
    assert admin.set_chaos(error_503=0.5, seed=3)["error_503"] == 0.5
    assert admin.clear_chaos()["error_503"] == 0.0
    store_payments(confirma_sandbox, ["adm-2"])
    assert admin.sync_now() == 1
    admin.reset(keep_config=True)
    assert admin.stats()["stored"]["payments"] == 0 and admin.config()["sync_delay"] == 5

    wrong = SandboxAdmin(confirma_sandbox.url, "ck_wrong_SECRET_admin")
    assert not wrong.health()
    with pytest.raises(SandboxAdminError, match="HTTP 401") as error:
        wrong.stats()
    assert "ck_wrong_SECRET_admin" not in str(error.value) + repr(wrong)
    assert confirma_sandbox.api_key not in repr(admin) + repr(confirma_sandbox.config)


# -- the admin API never shows the keys -------------------------------------------------------------
def test_admin_responses_never_show_the_keys(confirma_sandbox):
    client_key = new_client_key(confirma_sandbox)
    secrets = (DEFAULT_API_KEY, DEFAULT_PROVISIONING_TOKEN, client_key)
    answers = [
        admin_request(confirma_sandbox, "GET", "/config"),
        admin_request(confirma_sandbox, "PUT", "/config", json={"sync_delay": 3}),
        admin_request(confirma_sandbox, "GET", "/stats"),
        admin_request(confirma_sandbox, "GET", "/records"),
        admin_request(confirma_sandbox, "POST", "/reset", json={"keep_config": True}),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert not [secret for secret in secrets if secret in response.text], response.request.url
    config = answers[0].json()
    assert "api_key" not in config and "provisioning_token" not in config
    assert config["sync_delay"] == 0.0  # the rest is there
    assert confirma_sandbox.admin.configure(**confirma_sandbox.admin.config())["sync_delay"] == 3  # round-trips


# -- admin bodies: JSON only ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "content_type", "data"),
    [
        ("POST", "/reset", "text/plain", b"{}"),
        ("POST", "/reset", "text/plain;charset=UTF-8", b'{"keep_config": false}'),
        ("POST", "/chaos", "application/x-www-form-urlencoded", b"error_500=1"),
        ("PUT", "/chaos", "text/plain", b'{"error_500": 1.0}'),
        ("POST", "/config", "multipart/form-data; boundary=x", b'--x\r\n\r\n{"sync_delay": 99}\r\n--x--'),
        ("POST", "/sync", None, b""),
    ],
    ids=["reset-text", "reset-text-charset", "chaos-form", "chaos-put-text", "config-multipart", "sync-none"],
)
def test_admin_body_that_is_not_json_is_415(confirma_sandbox, method, path, content_type, data):
    store_payments(confirma_sandbox, ["adm-3"])
    headers = {"Content-Type": content_type} if content_type else {}
    response = admin_request(confirma_sandbox, method, path, data=data, headers=headers)
    assert response.status_code == 415
    assert response.json()["message"].startswith("Content-Type must be application/json")
    assert_untouched(confirma_sandbox)


# -- only the bound host ----------------------------------------------------------------------------
def _foreign_hosts(port: int) -> list[str]:
    return ["evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", f"127.0.0.2:{port}"]


@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("target", ["admin", "api"])
def test_foreign_host_header_is_400(confirma_sandbox, which, target):
    host = _foreign_hosts(confirma_sandbox.port)[which]
    headers = {"Host": host, "X-Api-Key": confirma_sandbox.api_key}
    if target == "admin":
        url = confirma_sandbox.url + ADMIN_PREFIX + "/reset"
        response = requests.post(url, json={}, headers=headers, timeout=10)
    else:
        url = confirma_sandbox.api_url + Endpoint.SUBMIT_PAYMENTS.path
        payment = {
            "paymentIdentifier": "rebound-1",
            "invoiceNumber": "1",
            "paymentDate": "2026-01-01",
            "amount": 1,
            "currency": "EUR",
        }
        response = requests.post(url, json={"payments": [payment]}, headers=headers, timeout=10)
    assert response.status_code == 400
    assert response.json()["message"].startswith("Invalid Host header")
    assert confirma_sandbox.state.stats()["total_requests"] == 0  # not even counted


def test_request_without_a_host_header_is_400(confirma_sandbox):
    request = f"GET {ADMIN_PREFIX}/stats HTTP/1.0\r\nX-Api-Key: {confirma_sandbox.api_key}\r\n\r\n".encode()
    with socket.create_connection((confirma_sandbox.host, confirma_sandbox.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")


def test_localhost_forms_of_the_bound_address_are_answered(confirma_sandbox):
    port = confirma_sandbox.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}", f"[::1]:{port}"):
        headers = {"Host": host, "X-Api-Key": confirma_sandbox.api_key}
        assert requests.get(confirma_sandbox.url + ADMIN_PREFIX + "/health", headers=headers, timeout=10).ok, host
        assert requests.get(confirma_sandbox.api_url + Endpoint.VALIDATE.path, headers=headers, timeout=10).ok, host


# -- the key never on a command line ----------------------------------------------------------------
PROCESS_KEY = "ck_proc_SECRET_7d41c2"
PROCESS_TOKEN = "pt_proc_SECRET_93b0ae"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_sandbox_process_keeps_the_keys_off_its_command_line():
    config = SandboxConfig(api_key=PROCESS_KEY, provisioning_token=PROCESS_TOKEN, sync_delay=0)
    with SandboxProcess(config) as sandbox:
        assert sandbox.process is not None
        cmdline = Path(f"/proc/{sandbox.process.pid}/cmdline").read_bytes().decode()
        assert "airflow_provider_confirma.sandbox" in cmdline
        assert PROCESS_KEY not in cmdline and PROCESS_TOKEN not in cmdline
        # the keys still arrived: the API and admin take them
        assert sandbox.admin.config()["sync_delay"] == 0.0
        headers = {"X-Api-Key": PROCESS_KEY}
        assert requests.get(sandbox.api_url + Endpoint.VALIDATE.path, headers=headers, timeout=10).ok
        created = requests.post(
            sandbox.api_url + Endpoint.CREATE_CLIENT.path,
            json=CLIENT_BODY,
            headers={"X-Api-Key": PROCESS_TOKEN},
            timeout=10,
        )
        assert created.ok, created.text
        assert sandbox._tmp is not None
        ready = Path(sandbox._tmp.name) / "ready.json"
        assert stat.S_IMODE(os.stat(ready).st_mode) == 0o600  # it holds the key


@pytest.mark.parametrize(
    "argv",
    [
        ["--api-key", "ck_cli_SECRET_1"],
        ["--provisioning-token", "ck_cli_SECRET_1"],
        ["--config-json", '{"api_key": "ck_cli_SECRET_1"}'],
    ],
    ids=["api-key", "provisioning-token", "config-json"],
)
def test_cli_refuses_a_key_on_the_command_line(argv):
    args = build_parser().parse_args(argv)
    with pytest.raises(ValueError, match=f"\\${API_KEY_ENV}|\\${PROVISIONING_TOKEN_ENV}") as error:
        config_from_args(args, environ={})
    assert "ck_cli_SECRET_1" not in str(error.value)
    assert "readable by any local user" in str(error.value)


def test_cli_reads_the_keys_from_the_environment_or_a_file(tmp_path):
    environ = {API_KEY_ENV: "env-key", PROVISIONING_TOKEN_ENV: "env-token"}
    config = config_from_args(build_parser().parse_args([]), environ=environ)
    assert (config.api_key, config.provisioning_token) == ("env-key", "env-token")
    (tmp_path / "key").write_text("file-key\n")
    (tmp_path / "token").write_text("file-token\n")
    argv = ["--api-key-file", str(tmp_path / "key"), "--provisioning-token-file", str(tmp_path / "token")]
    config = config_from_args(build_parser().parse_args(argv), environ=environ)  # a file beats the variable
    assert (config.api_key, config.provisioning_token) == ("file-key", "file-token")
    assert config_from_args(build_parser().parse_args([]), environ={}).api_key == DEFAULT_API_KEY
    with pytest.raises(ValueError, match="cannot read --api-key-file"):
        config_from_args(build_parser().parse_args(["--api-key-file", str(tmp_path / "missing")]), environ={})
