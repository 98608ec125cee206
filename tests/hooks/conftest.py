"""Fixtures of the hook tests: a staging connection, a hook with a tiny retry policy, and real
loopback servers (keep-alive HTTP, HTTPS with a throwaway CA, and raw sockets that reset or hang)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import responses
from conftest import TEST_API_KEY  # tests/conftest.py, already imported by pytest

from airflow_provider_confirma.endpoints import API_PREFIX
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy

STAGING_BASE = "https://staging-integrations.confirmafinance.com" + API_PREFIX
CONN_TIMEOUT = 12.0
PROVISIONING_TOKEN = "pp_PROVISIONING_TOKEN_81f3"

#: Three attempts, millisecond waits: retry paths run in a few ms.
TINY_POLICY = RetryPolicy(
    max_attempts=3,
    max_total_seconds=5.0,
    backoff_initial=0.001,
    backoff_max=0.005,
    jitter=0.001,
    retry_after_cap=0.01,
)


def conn_value(extra: dict[str, Any] | None = None, **fields: Any) -> str:
    fields.setdefault("password", TEST_API_KEY)
    return json.dumps({"conn_type": "confirma", **fields, "extra": extra or {}})


@pytest.fixture
def staging_conn(confirma_conn_env) -> None:
    """``confirma_default``: staging, timeout 12 s, with a provisioning token."""
    confirma_conn_env(
        "confirma_default",
        conn_value(
            {"environment": "staging", "timeout": CONN_TIMEOUT, "partner_provisioning_token": PROVISIONING_TOKEN}
        ),
    )


@pytest.fixture
def hook(staging_conn) -> ConfirmaHook:
    return ConfirmaHook(retry_policy=TINY_POLICY)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def loopback_hook(confirma_conn_env) -> Callable[..., ConfirmaHook]:
    """A hook whose connection points at ``base`` (a loopback server); extra fields as keywords."""

    def make(base: str, conn_id: str = "confirma_loopback", hook_timeout: float | None = None, **extra: Any):
        confirma_conn_env(conn_id, conn_value(extra, host=base))
        return ConfirmaHook(conn_id, retry_policy=TINY_POLICY, timeout=hook_timeout)

    return make


# -- a keep-alive JSON server ----------------------------------------------------------------------
@dataclass
class Seen:
    method: str
    path: str
    client: tuple[str, int]
    headers: dict[str, str]


@dataclass
class JsonServer:
    base: str
    seen: list[Seen] = field(default_factory=list)
    #: path (with query) -> (status, JSON body); unknown paths get 404
    routes: dict[str, tuple[int, Any]] = field(default_factory=dict)


def _serve(tls: ssl.SSLContext | None) -> Iterator[JsonServer]:
    server_state = JsonServer(base="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_GET(self) -> None:
            server_state.seen.append(Seen("GET", self.path, self.client_address, dict(self.headers)))
            status, body = server_state.routes.get(self.path.split("?")[0], (404, {"error": "not found"}))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if tls else "http"
    server_state.base = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def json_server() -> Iterator[JsonServer]:
    yield from _serve(None)


@dataclass(frozen=True)
class TestCA:
    cert_path: Path  # self-signed, so it is its own CA bundle
    key_path: Path


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> TestCA:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost."""
    from tests.tls_helpers import write_self_signed

    return TestCA(*write_self_signed(tmp_path_factory.mktemp("tls"), "confirma-test-local"))


@pytest.fixture
def tls_server(test_ca: TestCA) -> Iterator[JsonServer]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(test_ca.cert_path, test_ca.key_path)
    yield from _serve(ctx)


# -- raw sockets that misbehave --------------------------------------------------------------------
@dataclass
class RawServer:
    base: str
    accepted: int = 0

    def accepted_settled(self, expected: int, timeout: float = 2.0) -> int:
        """The accept count once it reaches ``expected`` (the kernel completes a connect before the
        server thread accepts it), or after ``timeout``; a short grace period catches extra ones."""
        deadline = time.monotonic() + timeout
        while self.accepted < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        return self.accepted


def _raw_server(behaviour: str) -> Iterator[RawServer]:
    """Accept, read the request, then ``reset`` (RST, no response) or ``hang`` (never answer)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    state = RawServer(base=f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            state.accepted += 1
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            if behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def resetting_server() -> Iterator[RawServer]:
    yield from _raw_server("reset")


@pytest.fixture
def hanging_server() -> Iterator[RawServer]:
    yield from _raw_server("hang")


@pytest.fixture
def closed_port_base() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
