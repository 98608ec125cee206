"""Deadlines of in-flight async requests on one timer per event loop, not one timer per request.

An aiohttp ``ClientTimeout`` schedules a timer for every request (two, with a connect timeout)
and cancels it when the response arrives. A cancelled timer stays in the event loop's heap until
the loop rebuilds it, so a triggerer making a thousand requests a second keeps a thousand dead
timers alive at a time and frees them in bulk: churn that drives the garbage collector into the
full collections that block the loop (see docs/benchmarks.md). Here a request runs inside an
``asyncio.timeout(None)`` (which schedules nothing) registered with its loop's :class:`Watchdog`.
The watchdog ticks every :data:`TICK` seconds while requests are in flight and expires the
overdue ones through ``Timeout.reschedule``, so asyncio's own cancellation applies and the
request ends with ``TimeoutError`` at most one tick late. Needs Python 3.11 (``asyncio.timeout``);
:func:`supported` says whether it is available.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from types import TracebackType
from typing import Any

#: How often the watchdog checks the deadlines of in-flight requests (seconds): the most a
#: request can overrun its timeout.
TICK = 0.25


def supported() -> bool:
    """Whether this Python has ``asyncio.timeout`` (3.11+); else callers keep aiohttp's timers."""
    return sys.version_info >= (3, 11)


class Watchdog:
    """The deadlines of one event loop's in-flight requests, checked on one recurring timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[Any, float] = {}  # asyncio.Timeout -> loop time of its deadline
        self._handle: asyncio.TimerHandle | None = None

    def add(self, timeout: Any, deadline: float) -> None:
        self.pending[timeout] = deadline
        if self._handle is None:
            self._handle = self.loop.call_later(TICK, self._tick)

    def discard(self, timeout: Any) -> None:
        self.pending.pop(timeout, None)

    @property
    def ticking(self) -> bool:
        return self._handle is not None

    def _tick(self) -> None:
        self._handle = None
        now = self.loop.time()
        overdue = [timeout for timeout, deadline in self.pending.items() if deadline <= now]
        for timeout in overdue:
            del self.pending[timeout]
            timeout.reschedule(now)  # asyncio cancels the task now and raises TimeoutError on exit
        if self.pending:
            self._handle = self.loop.call_later(TICK, self._tick)


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = weakref.WeakKeyDictionary()


def watchdog() -> Watchdog:
    """The running loop's watchdog (created on first use)."""
    loop = asyncio.get_running_loop()
    found = _WATCHDOGS.get(loop)
    if found is None:
        found = _WATCHDOGS[loop] = Watchdog(loop)
    return found


class deadline:
    """``async with deadline(seconds):`` raises ``TimeoutError`` once ``seconds`` have passed
    (checked every :data:`TICK` seconds by the loop's :class:`Watchdog`)."""

    __slots__ = ("_seconds", "_timeout", "_watchdog")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def __aenter__(self) -> None:
        self._watchdog = watchdog()
        self._timeout = asyncio.timeout(None)  # type: ignore[attr-defined,unused-ignore]
        await self._timeout.__aenter__()
        self._watchdog.add(self._timeout, self._watchdog.loop.time() + self._seconds)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        self._watchdog.discard(self._timeout)
        return await self._timeout.__aexit__(exc_type, exc, tb)  # type: ignore[func-returns-value]
