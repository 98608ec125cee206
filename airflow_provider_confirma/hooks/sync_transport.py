"""The requests transport of the hook: its urllib3 connections record, per attempt, whether they
were used (``reached``) and whether a byte of the request was written (``written``). requests and
urllib3 do not tell a failure before the first byte from one after it; a POST may be resent only
then. A proxy's ``CONNECT`` is not the request.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@dataclass
class Attempt:
    reached: bool = False
    written: bool = False


_CURRENT: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar("confirma_attempt", default=None)


@contextlib.contextmanager
def attempt() -> Iterator[Attempt]:
    record = Attempt()
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


class _HTTPConnection(HTTPConnection):
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


class _HTTPSConnection(_HTTPConnection, HTTPSConnection):  # the marks above, then HTTPS's connect
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, Any] = {"http": _HTTPPool, "https": _HTTPSPool}


class MarkingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections, direct or through a proxy, mark the :class:`Attempt`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
