"""Issue 13, the transport: where a failure happened decides "never sent" (item 1), one proxy rule for
the sync and async paths (item 7), and no unbounded read of a response (item 12).

Real loopback servers throughout: a TLS server with a throwaway certificate that reads the whole
request and then answers with a bad TLS record (or closes during the handshake), a forward proxy
that tunnels any host to the loopback TLS server and records what it saw, and a server streaming
far more than the size cap while counting the bytes it managed to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.exceptions import (
    ConfirmaConfigError,
    ConfirmaResponseError,
    ConfirmaServerError,
    ConfirmaTransportError,
)
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.connection import proxy_for
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import deserialize, serialize
from tests.reliability.helpers import Reply, ShapeServer, conn_json, payment, policy, record
from tests.tls_helpers import write_self_signed
from tests.triggers.fake_status_api import first_event

KEY = "ck_transport_SECRET_5d1e9a"
API_HOST = "api.confirma.test"  # not resolvable: only the test proxy knows where it is
ATTEMPTS = 5
CAP = 1024 * 1024  # [confirma] max_response_bytes in the size tests
HUGE = 96 * 1024 * 1024  # what the streaming server offers: 96 times the cap
#: bytes the server may send beyond what the client read: kernel socket buffers of both ends
SLACK = 8 * 1024 * 1024
PROXY_VARS = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)
INVOICE = {"invoiceNumber": "900001", "amount": "12.30", "currency": "EUR"}


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def make_hook(confirma_conn_env: Any, host: str, attempts: int = ATTEMPTS, **extra: Any) -> ConfirmaHook:
    confirma_conn_env("confirma_transport", conn_json(host, KEY, **extra))
    return ConfirmaHook("confirma_transport", retry_policy=policy(attempts))


# -- a throwaway certificate (also valid for api.confirma.test) ---------------------------------------
@dataclass(frozen=True)
class Cert:
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return Cert(*write_self_signed(tmp_path_factory.mktemp("transport-tls"), "confirma-transport-test", [API_HOST]))


# -- a raw socket server: one handler call per connection ---------------------------------------------
class RawServer:
    def __init__(self, handler: Callable[[socket.socket, RawServer], None]) -> None:
        self.handler = handler
        self.lock = threading.Lock()
        self.accepted = 0
        self.requests: list[tuple[str, str, int]] = []  # method, path, body bytes read
        self.sent: list[int] = []  # body bytes each connection managed to send
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.handler(conn, self)

    def record(self, method: str, path: str, body: int) -> None:
        with self.lock:
            self.requests.append((method, path, body))

    def posts(self) -> int:
        return sum(1 for method, _, _ in self.requests if method == "POST")

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self.thread.join(5)


def read_request(conn: Any) -> tuple[str, str, dict[str, str], bytes]:
    """One HTTP/1.1 request off ``conn`` (a socket or TLS socket): method, path, headers, whole body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a request")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return method, path, headers, body


def bad_record_after_the_request(cert: Cert) -> Callable[[socket.socket, RawServer], None]:
    """TLS handshake, read the whole request, then a TLS record no key decrypts, then close."""
    ctx = cert.server_context()

    def handle(conn: socket.socket, server: RawServer) -> None:
        tls = ctx.wrap_socket(conn, server_side=True)
        method, path, _, body = read_request(tls)
        server.record(method, path, len(body))
        os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + b"\x5a" * 32)  # application data, garbage inside
        time.sleep(0.2)  # let the client read it before the close

    return handle


def close_during_the_handshake(conn: socket.socket, server: RawServer) -> None:
    conn.recv(65536)  # the ClientHello, then nothing


@pytest.fixture
def bad_record_server(cert: Cert) -> Iterator[RawServer]:
    with RawServer(bad_record_after_the_request(cert)) as server:
        yield server


@pytest.fixture
def handshake_closing_server() -> Iterator[RawServer]:
    with RawServer(close_during_the_handshake) as server:
        yield server


# -- item 1: a TLS error after the POST was written is uncertain, not "never sent" ------------------------
@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda hook: hook.submit_payments({"payments": [payment("tls-1")]}), Endpoint.SUBMIT_PAYMENTS.full_path),
        (lambda hook: hook.create_invoice(INVOICE), Endpoint.CREATE_INVOICE.full_path),
    ],
    ids=["payments", "invoice"],
)
def test_a_bad_tls_record_after_the_post_is_uncertain_and_sent_once(
    confirma_conn_env, bad_record_server, cert, call, path
):
    hook = make_hook(confirma_conn_env, f"https://127.0.0.1:{bad_record_server.port}", ca_bundle=str(cert.cert_path))
    with pytest.raises(ConfirmaTransportError) as info:
        call(hook)
    assert info.value.kind == "tls"
    assert not info.value.never_sent
    assert str(info.value).endswith("failed: tls (TLS error after the request was sent)")
    assert bad_record_server.posts() == 1
    ((method, seen_path, body),) = bad_record_server.requests
    assert (method, seen_path) == ("POST", path) and body > 0  # the server read the whole POST


def test_a_bad_tls_record_after_a_get_is_retried_as_a_get(confirma_conn_env, bad_record_server, cert):
    hook = make_hook(confirma_conn_env, f"https://127.0.0.1:{bad_record_server.port}", ca_bundle=str(cert.cert_path))
    with pytest.raises(ConfirmaTransportError, match="failed: tls"):
        hook.get_payment_sync_status()
    assert len(bad_record_server.requests) == ATTEMPTS


def test_a_tls_handshake_failure_is_never_sent_and_the_post_is_retried(
    confirma_conn_env, handshake_closing_server, cert
):
    hook = make_hook(
        confirma_conn_env, f"https://127.0.0.1:{handshake_closing_server.port}", ca_bundle=str(cert.cert_path)
    )
    with pytest.raises(ConfirmaTransportError) as info:
        hook.submit_payments({"payments": [payment("tls-2")]})
    assert info.value.kind == "connect" and info.value.never_sent
    assert handshake_closing_server.accepted == ATTEMPTS
    assert handshake_closing_server.requests == []


def test_a_wrong_certificate_is_never_sent_and_the_post_is_retried(confirma_conn_env, bad_record_server):
    hook = make_hook(confirma_conn_env, f"https://127.0.0.1:{bad_record_server.port}")  # no ca_bundle: unknown CA
    with pytest.raises(ConfirmaTransportError) as info:
        hook.submit_payments({"payments": [payment("tls-3")]})
    assert str(info.value).endswith("failed: connect (TLS handshake failed)")
    assert bad_record_server.accepted == ATTEMPTS
    assert bad_record_server.requests == []


def test_a_refused_connection_is_never_sent(confirma_conn_env):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    hook = make_hook(confirma_conn_env, f"http://127.0.0.1:{port}")
    with pytest.raises(ConfirmaTransportError, match=r"failed: connect \(connection refused or unreachable\)"):
        hook.submit_payments({"payments": [payment("tls-4")]})


# aiohttp (the triggers' reads): the same classification by where it failed
async def test_async_a_bad_tls_record_after_the_request_is_not_never_sent(confirma_conn_env, bad_record_server, cert):
    hook = make_hook(confirma_conn_env, f"https://127.0.0.1:{bad_record_server.port}", 1, ca_bundle=str(cert.cert_path))
    with pytest.raises(ConfirmaTransportError) as info:
        await hook.aget_payment_sync_status()
    assert info.value.kind in {"tls", "reset"} and not info.value.never_sent
    assert {m for m, _, _ in bad_record_server.requests} == {"GET"}  # aiohttp itself resends a GET once


async def test_async_a_tls_handshake_failure_is_never_sent(confirma_conn_env, handshake_closing_server, cert):
    hook = make_hook(
        confirma_conn_env, f"https://127.0.0.1:{handshake_closing_server.port}", 1, ca_bundle=str(cert.cert_path)
    )
    with pytest.raises(ConfirmaTransportError) as info:
        await hook.aget_payment_sync_status()
    assert info.value.never_sent
    assert handshake_closing_server.requests == []


async def test_async_a_wrong_certificate_is_never_sent(confirma_conn_env, bad_record_server):
    hook = make_hook(confirma_conn_env, f"https://127.0.0.1:{bad_record_server.port}", 1)
    with pytest.raises(ConfirmaTransportError, match="failed: connect"):
        await hook.aget_payment_sync_status()
    assert bad_record_server.requests == []


CONNECTION_KEY: Any = SimpleNamespace(host=API_HOST, port=443, ssl=True)
STATUS_URL = f"https://{API_HOST}{API_PREFIX}{Endpoint.PAYMENT_SYNC_STATUS.path}"


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (aiohttp.ClientConnectorDNSError(CONNECTION_KEY, OSError(-2, "no such host")), "connect"),
        (aiohttp.ConnectionTimeoutError("connect timed out"), "connect"),
        (aiohttp.ServerDisconnectedError(), "reset"),
        (aiohttp.ClientPayloadError("truncated"), "reset"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "reset"),
        (ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]"), "tls"),
        (asyncio.TimeoutError(), "timeout"),
    ],
    ids=["dns", "connect-timeout", "disconnected", "payload", "os-error", "ssl-after-send", "timeout"],
)
async def test_async_failures_are_classified_by_phase(confirma_conn_env, failure, kind):
    hook = make_hook(confirma_conn_env, f"https://{API_HOST}", 1)
    with aioresponses() as mocked:
        mocked.get(STATUS_URL, exception=failure)
        with pytest.raises(ConfirmaTransportError) as info:
            await hook.aget_payment_sync_status()
    assert info.value.kind == kind


# -- item 7: one proxy rule for both paths ------------------------------------------------------------
@dataclass
class Proxy:
    port: int
    seen: list[tuple[str, str, bool]] = field(default_factory=list)  # method, target, Proxy-Authorization sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def tls_api(cert: Cert) -> Iterator[ShapeServer]:
    """A JSON API over TLS (the reliability ShapeServer, wrapped), for any host name in the cert."""
    server = ShapeServer()
    server.httpd.socket = cert.server_context().wrap_socket(server.httpd.socket, server_side=True)
    with server:
        yield server


@pytest.fixture
def proxy(tls_api: ShapeServer) -> Iterator[Proxy]:
    """A forward proxy: CONNECT to any host reaches ``tls_api``; an absolute-URI request gets a 502."""
    state = Proxy(port=0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def do_CONNECT(self) -> None:
            state.seen.append(("CONNECT", self.path, "Proxy-Authorization" in self.headers))
            upstream = socket.create_connection(("127.0.0.1", tls_api.port))
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.wfile.flush()
            pipe(self.connection, upstream)
            self.close_connection = True

        def _absolute(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            state.seen.append((self.command, self.path, "Proxy-Authorization" in self.headers))
            body = b"proxy: not forwarded"
            self.send_response(502)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _absolute

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def pipe(a: socket.socket, b: socket.socket) -> None:
    with b:
        while True:
            readable, _, _ = select.select([a, b], [], [], 5)
            if not readable:
                return
            for src in readable:
                data = src.recv(65536)
                if not data:
                    return
                (b if src is a else a).sendall(data)


def synced(tls_api: ShapeServer, scenario: str) -> str:
    return tls_api.script(scenario, Reply(200, {"payments": [record("p-1")]})).replace("http://", "https://")


def make_trigger(conn_id: str) -> ConfirmaPaymentSyncTrigger:
    """A trigger as the triggerer gets it: serialized, through serde, rebuilt from its kwargs."""
    trigger = ConfirmaPaymentSyncTrigger(
        confirma_conn_id=conn_id,
        source_identifiers=["p-1"],
        poll_interval=0.02,
        end_time=time.time() + 20,
        http_retry_policy=policy(1),
        max_consecutive_errors=1,
    )
    classpath, kwargs = trigger.serialize()
    return import_string(classpath)(**deserialize(json.loads(json.dumps(serialize(kwargs)))))


def test_a_remote_api_is_reached_through_the_proxy_sync(confirma_conn_env, monkeypatch, tls_api, proxy, cert):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    base = synced(tls_api, "via-proxy-sync").replace("127.0.0.1", API_HOST)
    hook = make_hook(confirma_conn_env, base, 1, ca_bundle=str(cert.cert_path))
    assert [r.source_identifier for r in hook.get_payment_sync_status()] == ["p-1"]
    assert proxy.seen == [("CONNECT", f"{API_HOST}:{tls_api.port}", False)]
    assert tls_api.requests["via-proxy-sync"] == 1


async def test_a_remote_api_is_reached_through_the_proxy_async_and_by_the_trigger(
    confirma_conn_env, monkeypatch, tls_api, proxy, cert
):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    base = synced(tls_api, "via-proxy-async").replace("127.0.0.1", API_HOST)
    hook = make_hook(confirma_conn_env, base, 1, ca_bundle=str(cert.cert_path))
    assert [r.source_identifier for r in await hook.aget_payment_sync_status()] == ["p-1"]
    assert proxy.seen == [("CONNECT", f"{API_HOST}:{tls_api.port}", False)]
    event = await first_event(make_trigger("confirma_transport"), within=20)
    assert event["status"] == "success", event
    assert len(proxy.seen) >= 2 and {s[1] for s in proxy.seen} == {f"{API_HOST}:{tls_api.port}"}
    assert tls_api.requests["via-proxy-async"] == len(proxy.seen)  # every request went through it


async def test_proxy_credentials_are_sent_to_the_proxy_and_never_logged(
    confirma_conn_env, monkeypatch, tls_api, proxy, cert, caplog
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("https_proxy", f"http://corp-user:proxy-PASS-77@127.0.0.1:{proxy.port}")
    base = synced(tls_api, "via-proxy-auth").replace("127.0.0.1", API_HOST)
    hook = make_hook(confirma_conn_env, base, 1, ca_bundle=str(cert.cert_path))
    hook.get_payment_sync_status()
    await hook.aget_payment_sync_status()
    assert [s[2] for s in proxy.seen] == [True, True]
    assert "proxy-PASS-77" not in caplog.text


def test_a_dead_proxy_fails_before_sending_without_its_credentials(confirma_conn_env, monkeypatch, caplog):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://corp-user:proxy-PASS-77@127.0.0.1:{port}")
    hook = make_hook(confirma_conn_env, f"https://{API_HOST}:8443")
    caplog.set_level(logging.WARNING)
    with pytest.raises(ConfirmaTransportError) as info:
        hook.submit_payments({"payments": [payment("proxy-1")]})
    assert info.value.never_sent  # so the POST was retried: nothing reached any server
    assert len([r for r in caplog.records if "retrying in" in r.getMessage()]) == ATTEMPTS - 1
    assert "proxy-PASS-77" not in str(info.value) + caplog.text


@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_a_loopback_api_never_goes_through_the_proxy(
    confirma_conn_env, monkeypatch, tls_api, shape_server, proxy, cert, scheme
):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    reply = Reply(200, {"payments": [record("p-1")]})
    base = synced(tls_api, "loopback") if scheme == "https" else shape_server.script("loopback-plain", reply)
    hook = make_hook(confirma_conn_env, base, 1, ca_bundle=str(cert.cert_path))
    assert len(hook.get_payment_sync_status()) == 1
    assert len(await hook.aget_payment_sync_status()) == 1
    assert proxy.seen == []


@pytest.mark.parametrize("no_proxy", [API_HOST, ".confirma.test", "confirma.test", "*", f"other.example, {API_HOST}"])
async def test_no_proxy_is_honoured_on_both_paths(confirma_conn_env, monkeypatch, proxy, no_proxy):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_for(f"https://{API_HOST}:8443/x") is None
    hook = make_hook(confirma_conn_env, f"https://{API_HOST}:8443", 1)
    with pytest.raises(ConfirmaTransportError, match="failed: connect"):  # direct: the name does not resolve
        hook.get_payment_sync_status()
    with pytest.raises(ConfirmaTransportError, match="failed: connect"):
        await hook.aget_payment_sync_status()
    assert proxy.seen == []


def test_the_proxy_rule():
    env = {"https_proxy": "proxy.corp:3128", "no_proxy": "internal.corp"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert proxy_for("https://api.example.com/x") == "http://proxy.corp:3128"
        assert proxy_for("https://a.internal.corp/x") is None
        assert proxy_for("https://localhost:8443/x") is None
        assert proxy_for("https://[::1]:8443/x") is None
        mp.setenv("https_proxy", "socks5://user:pw@proxy.corp:1080")
        with pytest.raises(ConfirmaConfigError, match="https_proxy uses scheme 'socks5'") as info:
            proxy_for("https://api.example.com/x")
        assert "pw" not in str(info.value)


# -- item 12: no unbounded reads ----------------------------------------------------------------------
def streaming(conn: socket.socket, server: RawServer) -> None:
    """Answer per the first path segment (``json-cl``, ``json``, ``html-cl``, ``html``, ``error``):
    a head, then up to :data:`HUGE` bytes in 64 KiB blocks until the client stops reading."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    method, path, _, body = read_request(conn)
    server.record(method, path, len(body))
    mode = path.lstrip("/").split("/", 1)[0]
    status = "500 Internal Server Error" if mode == "error" else "200 OK"
    content_type = "application/json" if mode.startswith("json") else "text/html"
    head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: close"]
    if mode.endswith("-cl"):
        head.append(f"Content-Length: {HUGE}")
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    block = (b'{"payments": [' if content_type == "application/json" else b"<html>") + b" " * (64 * 1024 - 15)
    sent = 0
    try:
        while sent < HUGE:
            conn.sendall(block[: min(len(block), HUGE - sent)])
            sent += min(len(block), HUGE - sent)
    finally:
        with server.lock:
            server.sent.append(sent)


@pytest.fixture
def streaming_server() -> Iterator[RawServer]:
    with RawServer(streaming) as server:
        yield server


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CONFIRMA__MAX_RESPONSE_BYTES", str(CAP))


def sent_settled(server: RawServer) -> int:
    """Bytes the server sent, once its handler ended (the client closed: it stopped reading)."""
    deadline = time.monotonic() + 10
    while not server.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    (sent,) = server.sent
    return sent


CASES = [
    ("json-cl", r"response of 100663296 bytes \(Content-Length\) is larger than \[confirma\] max_response_bytes"),
    (
        "json",
        r"response is larger than \[confirma\] max_response_bytes = 1048576 bytes; narrow the query or raise "
        r"the option \(AIRFLOW__CONFIRMA__MAX_RESPONSE_BYTES\)",
    ),
    ("html-cl", "expected JSON, got text/html"),
    ("html", "expected JSON, got text/html"),
]


@pytest.mark.parametrize(("mode", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_huge_response_is_not_read_whole_sync(confirma_conn_env, capped, streaming_server, mode, message):
    hook = make_hook(confirma_conn_env, f"http://127.0.0.1:{streaming_server.port}/{mode}", 1)
    with pytest.raises(ConfirmaResponseError, match=message):
        hook.get_payment_sync_status()
    assert sent_settled(streaming_server) < CAP + SLACK


@pytest.mark.parametrize(("mode", "message"), CASES, ids=[c[0] for c in CASES])
async def test_a_huge_response_is_not_read_whole_async(confirma_conn_env, capped, streaming_server, mode, message):
    hook = make_hook(confirma_conn_env, f"http://127.0.0.1:{streaming_server.port}/{mode}", 1)
    with pytest.raises(ConfirmaResponseError, match=message):
        await hook.aget_payment_sync_status()
    assert sent_settled(streaming_server) < CAP + SLACK


def test_a_huge_error_page_is_read_only_for_its_excerpt_sync(confirma_conn_env, streaming_server):
    hook = make_hook(confirma_conn_env, f"http://127.0.0.1:{streaming_server.port}/error", 1)
    with pytest.raises(ConfirmaServerError, match="HTTP 500: body: <html>"):
        hook.get_payment_sync_status()
    assert sent_settled(streaming_server) < SLACK  # default cap (64 MiB): only the excerpt was read


async def test_a_huge_error_page_is_read_only_for_its_excerpt_async(confirma_conn_env, streaming_server):
    hook = make_hook(confirma_conn_env, f"http://127.0.0.1:{streaming_server.port}/error", 1)
    with pytest.raises(ConfirmaServerError, match="HTTP 500: body: <html>"):
        await hook.aget_payment_sync_status()
    assert sent_settled(streaming_server) < SLACK


def body_of(size: int) -> bytes:
    """A status response of exactly ``size`` bytes."""
    shell = b'{"payments": [], "pad": ""}'
    return shell[:-2] + b"x" * (size - len(shell)) + shell[-2:]


async def test_the_cap_is_inclusive_on_both_paths(confirma_conn_env, capped, shape_server):
    exact = shape_server.script("cap-exact", Reply(200, body_of(CAP)))
    hook = make_hook(confirma_conn_env, exact, 1)
    assert hook.get_payment_sync_status() == []
    assert await hook.aget_payment_sync_status() == []
    over = shape_server.script("cap-over", Reply(200, body_of(CAP + 1)))
    hook = make_hook(confirma_conn_env, over, 1)
    with pytest.raises(ConfirmaResponseError, match="max_response_bytes"):
        hook.get_payment_sync_status()
    with pytest.raises(ConfirmaResponseError, match="max_response_bytes"):
        await hook.aget_payment_sync_status()


@pytest.mark.parametrize("raw", ["0", "1000", "-5", "lots", "2.5"])
async def test_a_bad_max_response_bytes_names_the_option(confirma_conn_env, monkeypatch, shape_server, raw):
    monkeypatch.setenv("AIRFLOW__CONFIRMA__MAX_RESPONSE_BYTES", raw)
    hook = make_hook(confirma_conn_env, shape_server.script("cap-bad", Reply(200, {"payments": []})), 1)
    pattern = r"\[confirma\] max_response_bytes must be an integer >= 1024, got"
    with pytest.raises(ConfirmaConfigError, match=pattern):
        hook.get_payment_sync_status()
    with pytest.raises(ConfirmaConfigError, match=pattern):
        await hook.aget_payment_sync_status()
    assert shape_server.requests["cap-bad"] == 0


def gzip_bomb(conn: socket.socket, server: RawServer) -> None:
    """A small gzip body (well under the cap) that decodes to 32 times the cap."""
    method, path, _, body = read_request(conn)
    server.record(method, path, len(body))
    payload = gzip.compress(b'{"payments": [' + b" " * (32 * CAP) + b"]}")
    head = [
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        "Content-Encoding: gzip",
        f"Content-Length: {len(payload)}",
        "Connection: close",
    ]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
    with server.lock:
        server.sent.append(len(payload))


async def test_the_cap_counts_decoded_bytes_on_both_paths(confirma_conn_env, capped):
    with RawServer(gzip_bomb) as server:
        hook = make_hook(confirma_conn_env, f"http://127.0.0.1:{server.port}", 1)
        with pytest.raises(ConfirmaResponseError, match="is larger than \\[confirma\\] max_response_bytes"):
            hook.get_payment_sync_status()
        with pytest.raises(ConfirmaResponseError, match="is larger than \\[confirma\\] max_response_bytes"):
            await hook.aget_payment_sync_status()
    assert max(server.sent) < CAP  # the Content-Length was under the cap: the decoded size decided
