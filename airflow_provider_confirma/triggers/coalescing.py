"""Request coalescing for status triggers: one poll per (event loop, key), shared by every waiter.

A status endpoint returns every record of the client, so the waits of one triggerer on the same
connection and query need one request per interval, not one each. A :class:`SharedPoller` task polls
while it has subscribers and publishes each poll as a :class:`PollRound` (the records or the
exception); a subscriber waits on the round through its own ``asyncio.Event``, so cancelling one
never cancels the poll. A poller keeps its interval on every path (a failed poll, no HTTP session,
a replacement of a stopped poller); one that crashes hands its error to its subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_confirma.exceptions import PollerStopped
from airflow_provider_confirma.hooks.confirma import acquire_client_session, release_client_session

if sys.version_info >= (3, 11):
    timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.10: the same context manager, from the package aiohttp uses there
    from async_timeout import timeout

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_confirma.models import SyncRecord

log = logging.getLogger(__name__)

#: One status request: given the shared HTTP session, return the records by identifier.
Fetch = Callable[["aiohttp.ClientSession"], Awaitable[Mapping[str, Any]]]

#: How many times in a row a subscriber follows a stopped poller to a new one before giving up.
MAX_REJOINS = 3
#: A round wakes its subscribers in this many slices, one event-loop iteration each.
#: Stays (docs/benchmarks.md): woken at once, 5,000 waiters lagged the loop 0.44-3.2 s with 1-2
#: full GCs per run, against 48-114 ms and none in slices.
FANOUT_SLICES = 16


@dataclass(eq=False)
class PollRound:
    """The result of one poll, published to every subscriber: the records or the exception.

    A slice's event is created by its first waiter, so a round with one subscriber costs one event
    and no extra loop iteration.
    """

    index: Mapping[str, SyncRecord] | None = None
    error: BaseException | None = None
    number: int = 0
    #: every waiter is woken; a later one returns at once
    published: bool = False
    _events: dict[int, asyncio.Event] = field(default_factory=dict, repr=False)

    @property
    def slices(self) -> tuple[asyncio.Event, ...]:
        """The events of the slices waited on so far, in slice order."""
        return tuple(self._events[n] for n in sorted(self._events))

    async def wait(self, slice_no: int) -> None:
        if self.published:
            return
        key = slice_no % FANOUT_SLICES
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        await event.wait()

    def publish_now(self) -> None:
        """Wake every subscriber at once (when the poller stops, and to finish a publish)."""
        self.published = True
        for event in self._events.values():
            event.set()

    async def publish(self) -> None:
        """Wake the subscribers slice by slice, yielding to the event loop in between."""
        try:
            for position, key in enumerate(sorted(self._events)):
                if position:
                    await asyncio.sleep(0)
                self._events[key].set()
        finally:  # cancelled half-way: nobody may be left waiting
            self.publish_now()


_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


class SharedPoller:
    """Polls ``fetch`` every ``min(interval of its subscribers)`` seconds while it has subscribers.

    The interval runs from the end of one poll to the start of the next, errors included, so a
    slow API is never hit back to back; a replacement of a stopped poller (``previous``) first
    waits out the interval of its last poll.
    """

    def __init__(
        self,
        key: Hashable,
        fetch: Fetch,
        registry: dict[Hashable, SharedPoller],
        previous: SharedPoller | None = None,
    ) -> None:
        self.key = key
        self._fetch = fetch
        self._registry = registry
        self._subscribers: dict[Subscription, float] = {}
        self._next = PollRound(number=1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: loop time at which the last poll ended (of ``previous`` until this one polled)
        self._last_end: float | None = previous._last_end if previous is not None else None
        self.closed = False
        #: number of rounds polled
        self.polls = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _add(self, sub: Subscription) -> None:
        self._subscribers[sub] = sub.interval
        self._wake.set()  # a shorter interval may shorten the current sleep
        if self._task is None:
            # A fresh context: the poll belongs to no single trigger, so it must not log into
            # (or carry the log context of) whichever trigger happened to start it.
            loop = asyncio.get_running_loop()
            self._task = contextvars.Context().run(loop.create_task, self._run(), name=f"confirma-poller-{self.key!r}")

    def _remove(self, sub: Subscription) -> None:
        del self._subscribers[sub]
        if self._subscribers:
            self._wake.set()
            return
        self._close()  # the last one left: stop now (cancelling an in-flight GET is harmless)
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        session: aiohttp.ClientSession | None = None
        try:
            await self._sleep()  # a replacement keeps the interval of the poller it replaces
            while self._subscribers:
                current = self._next
                try:
                    if session is None:  # fails, e.g., on a bad [confirma] max_concurrent_requests
                        session = await acquire_client_session()
                    current.index = await self._fetch(session)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    current.error = exc
                self.polls += 1
                self._last_end = loop.time()
                self._next = PollRound(number=current.number + 1)
                await current.publish()
                del current  # the round's records are its subscribers' now, not kept through the sleep
                await self._sleep()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug: fetch and session errors are published above
            log.exception("Confirma shared poller %r crashed", self.key)
            # Its subscribers get the cause (not a PollerStopped to rejoin on), and a replacement
            # still waits an interval: a crash never turns into a hot loop.
            self._last_end = loop.time()
            self._close(exc)
        finally:
            self._close()
            if session is not None:
                await release_client_session(session)

    async def _sleep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._subscribers and self._last_end is not None:
            delay = self._last_end + min(self._subscribers.values()) - loop.time()
            if delay <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                async with timeout(delay):
                    await self._wake.wait()

    def _close(self, error: BaseException | None = None) -> None:
        """Deregister, and publish the pending round with ``error`` (default: a :class:`PollerStopped`,
        on which its waiters rejoin); idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._registry.get(self.key) is self:
            del self._registry[self.key]
        self._next.error = error if error is not None else PollerStopped("the shared status poller stopped")
        self._next.publish_now()


class Subscription:
    """One waiter's membership in the poller of ``key`` on the running loop (created if none).

    ``fetch`` is used only by the call that creates the poller, so the key must hold everything the
    request uses (connection, endpoint, query, retry policy), secrets only as hashes (it names the
    poller's task).
    """

    _serial = itertools.count()

    def __init__(self, key: Hashable, fetch: Fetch, interval: float) -> None:
        self.key, self._fetch, self.interval = key, fetch, interval
        self._slice = next(self._serial) % FANOUT_SLICES
        self.closed = False
        self.poller: SharedPoller = self._join()

    def _join(self, previous: SharedPoller | None = None) -> SharedPoller:
        """The live poller of the key (``previous``: the stopped one it replaces)."""
        registry = _REGISTRY.setdefault(asyncio.get_running_loop(), {})
        found = registry.get(self.key)
        if found is None or found.closed:
            found = registry[self.key] = SharedPoller(self.key, self._fetch, registry, previous)
        found._add(self)
        return found

    async def next_round(self) -> PollRound:
        """The next round published after this call; rejoins a stopped poller.

        A poller that crashed tells each of its subscribers its error once, also one that was not
        waiting then; the subscriber then follows a replacement (which keeps the interval).
        """
        rejoins = 0
        while True:
            current = self.poller._next
            crashed = current.error is not None and not isinstance(current.error, PollerStopped)
            if self.poller.closed and not crashed:
                self.poller = self._join(self.poller)
                current = self.poller._next
            await current.wait(self._slice)
            if isinstance(current.error, PollerStopped) and not self.closed and rejoins < MAX_REJOINS:
                rejoins += 1
                continue
            if current is self.poller._next and self.poller.closed and not self.closed:
                self.poller = self._join(self.poller)  # that was the poller's last round: follow a live one
            return current

    def close(self) -> None:
        """Leave the poller (idempotent); the poller stops when its last subscriber leaves."""
        if not self.closed:
            self.closed = True
            self.poller._remove(self)


#: Join (or start) the poller of a key: ``subscribe(key, fetch, interval)``.
subscribe = Subscription


def active_pollers() -> dict[Hashable, SharedPoller]:
    """The registered pollers of the running loop (for tests and diagnostics)."""
    return dict(_REGISTRY.get(asyncio.get_running_loop(), {}))
