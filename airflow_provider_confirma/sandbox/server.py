"""Running the sandbox: a real uvicorn server in a background thread (:class:`ConfirmaSandbox`) or in
a subprocess started through the CLI (:class:`SandboxProcess`).

Owns the uvicorn set-up shared with the CLI (:func:`build_server`): httptools and uvloop when
installed (``h11``/asyncio otherwise), no access log, no logging reconfiguration, and an HTTP
protocol subclass that remembers each connection's transport so chaos can reset it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from airflow_provider_confirma.sandbox.admin import SandboxEndpoint
from airflow_provider_confirma.sandbox.config import API_KEY_ENV, PROVISIONING_TOKEN_ENV, SandboxConfig

DEFAULT_HOST = "127.0.0.1"
STARTUP_TIMEOUT = 15.0


class TransportRegistry:
    """Open connections by client address, so a request's connection can be reset (RST)."""

    def __init__(self) -> None:
        self._transports: dict[Any, asyncio.Transport] = {}

    def add(self, client: Any, transport: asyncio.Transport) -> None:
        if client is not None:
            self._transports[client] = transport

    def discard(self, client: Any, transport: asyncio.BaseTransport) -> None:
        if client is not None and self._transports.get(client) is transport:
            del self._transports[client]

    def abort(self, client: Any) -> bool:
        """Reset the connection of ``client`` (a ``(host, port)`` tuple): RST, no response."""
        if client is not None and not isinstance(client, tuple):
            client = tuple(client)
        transport = self._transports.pop(client, None)
        if transport is None:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return True


def http_protocol_class(http: str, registry: TransportRegistry) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``auto`` = httptools if installed, else h11) that registers transports."""
    base: type[Any]
    if http == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    elif http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    elif http == "auto":
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol
    else:
        raise ValueError(f"http must be auto, httptools or h11, got {http!r}")

    class SandboxHTTPProtocol(base):
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._sandbox_transport = transport
            registry.add(self.client, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            registry.discard(self.client, self._sandbox_transport)
            super().connection_lost(exc)

    return SandboxHTTPProtocol


def bind_socket(host: str = DEFAULT_HOST, port: int = 0) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (no race between choosing and binding)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else Nagle adds ~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(
    config: SandboxConfig,
    *,
    host: str,
    port: int,
    allowed_hosts: Sequence[str] = (),
    http: str = "auto",
    loop: str = "auto",
    log_level: str = "warning",
    on_ready: Callable[[], None] | None = None,
) -> Any:
    """A ``uvicorn.Server`` serving the sandbox app on the socket bound to ``host:port``;
    ``server.sandbox_state`` is its state.

    Requests whose ``Host`` header is not that address (or a localhost form of it, or one of
    ``allowed_hosts``) get 400: see :func:`~.app.allowed_hosts`.
    """
    import uvicorn

    from airflow_provider_confirma.sandbox import app
    from airflow_provider_confirma.sandbox.state import SandboxState

    state = SandboxState(config)
    registry = TransportRegistry()
    uv_config = uvicorn.Config(
        app.create_app(state, app.allowed_hosts(host, port, allowed_hosts), registry),
        http=http_protocol_class(http, registry),
        loop=loop,
        lifespan="off",
        log_config=None,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_ready is not None:
                on_ready()

    server = _Server(uv_config)
    server.sandbox_state = state  # type: ignore[attr-defined]
    return server


class ConfirmaSandbox(SandboxEndpoint):
    """The sandbox in a background thread of this process; a context manager.

    >>> with ConfirmaSandbox(SandboxConfig(sync_delay=0)) as sandbox:  # doctest: +SKIP
    ...     os.environ.update(sandbox.conn_env())
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        http: str = "auto",
        loop: str = "auto",
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.api_key = self.config.api_key
        self.allowed_hosts = tuple(allowed_hosts)
        self._http, self._loop = http, loop
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def state(self) -> Any:
        """The live :class:`~.state.SandboxState` (thread-safe methods)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.sandbox_state

    def start(self, timeout: float = STARTUP_TIMEOUT) -> ConfirmaSandbox:
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._server = build_server(
            self.config,
            host=self.host,
            port=self.port,
            allowed_hosts=self.allowed_hosts,
            http=self._http,
            loop=self._loop,
            on_ready=ready.set,
        )

        def run() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._error = exc
            finally:
                sock.close()
                ready.set()

        self._thread = threading.Thread(target=run, name=f"confirma-sandbox-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or not self._server.started:
            self.stop()
            raise RuntimeError(f"the Confirma sandbox did not start within {timeout}s: {self._error!r}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ConfirmaSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SandboxProcess(SandboxEndpoint):
    """The sandbox as a subprocess of the ``confirma-sandbox`` CLI; a context manager.

    Waits for the CLI's ready file, so the server accepts connections when ``start()`` returns.
    The keys go to the child in its environment (``CONFIRMA_SANDBOX_API_KEY``,
    ``CONFIRMA_SANDBOX_PROVISIONING_TOKEN``), never on its command line, which any local user can
    read (``ps``, ``/proc/<pid>/cmdline``).
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        extra_args: Sequence[str] = (),
        python: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.api_key = self.config.api_key
        self.extra_args = list(extra_args)
        self.python = python or sys.executable
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def command(self, ready_file: str) -> list[str]:
        return [
            self.python,
            "-m",
            "airflow_provider_confirma.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--config-json",
            json.dumps(self.config.public_dict()),
            "--ready-file",
            ready_file,
            *self.extra_args,
        ]

    def start(self, timeout: float = STARTUP_TIMEOUT) -> SandboxProcess:
        if self.process is not None:
            raise RuntimeError("the sandbox process is already running")
        self._tmp = tempfile.TemporaryDirectory(prefix="confirma-sandbox-")
        ready = Path(self._tmp.name) / "ready.json"
        log_path = Path(self._tmp.name) / "sandbox.log"
        began = time.monotonic()
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self.command(str(ready)),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    **(self.env or {}),
                    API_KEY_ENV: self.config.api_key,
                    PROVISIONING_TOKEN_ENV: self.config.provisioning_token,
                },
            )
        deadline = began + timeout
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"the Confirma sandbox process did not start: {output}")
            time.sleep(0.02)
        self.startup_seconds = time.monotonic() - began
        info = json.loads(ready.read_text())
        self.port = int(info["port"])
        return self

    @property
    def log_text(self) -> str:
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "sandbox.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
            self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
