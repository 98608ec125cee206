"""The requests transport of :class:`~airflow_provider_confirma.hooks.confirma.ConfirmaHook`.

It knows *where* an attempt failed: its urllib3 connections record, per attempt, whether they were
used at all (``reached``) and whether a byte of the request was written (``written``). A request is
"never sent" only when the connection was reached and nothing was written (DNS, refused, connect
timeout, TLS handshake, a proxy refusing the tunnel); the proxy's ``CONNECT`` is not the request.
Imported on first use only: DAG files import the operators and sensors, not the transport.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Attempt:
    """What one attempt's connection did; see the module docstring."""

    __slots__ = ("reached", "written")

    def __init__(self) -> None:
        self.reached = False
        self.written = False


_CURRENT: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar("confirma_attempt", default=None)


@contextlib.contextmanager
def attempt() -> Iterator[Attempt]:
    """Record what the requests made in this block (one attempt) did on the wire."""
    record = Attempt()
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


if TYPE_CHECKING:
    _Base = HTTPConnection
else:
    _Base = object


class _MarksWrites(_Base):
    """Marks the current :class:`Attempt` when connecting starts and when request bytes are written."""

    _confirma_connecting = False

    def connect(self) -> None:
        current = _CURRENT.get()
        if current is not None:
            current.reached = True
        self._confirma_connecting = True  # a proxy CONNECT is sent from here: not the request
        try:
            super().connect()
        finally:
            self._confirma_connecting = False

    def send(self, data: Any) -> None:
        if self.sock is None:  # http.client connects lazily in send (plain http): not a write yet
            self.connect()
        current = _CURRENT.get()
        if current is not None and not self._confirma_connecting:
            current.reached = current.written = True
        super().send(data)


class _HTTPConnection(_MarksWrites, HTTPConnection):
    pass


class _HTTPSConnection(_MarksWrites, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, Any] = {"http": _HTTPPool, "https": _HTTPSPool}


class MarkingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections (direct or through a proxy) mark :class:`Attempt`.

    Keeps requests' default of no urllib3-level retries: an attempt is one request on the wire.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
