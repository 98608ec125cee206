"""Request coalescing for status triggers: one poll per (event loop, key) shared by every waiter.

The sync status endpoints return every record of the client, so concurrent waits in one
triggerer on the same connection and the same query need one request per interval, not one each.
A :class:`SharedPoller` is a dedicated task that polls while it has subscribers and stops when the
last one leaves. Each poll is published as a :class:`PollRound` (the indexed records or the
exception) to every subscriber, woken in slices so the loop stays responsive; each subscriber waits
on an ``asyncio.Event`` of the round through its own waiter, so cancelling one subscriber never
cancels the poll or disturbs the others.
Nothing is shared across event loops or keys (the caller puts everything its request uses into the
key). A poller keeps its interval on every path: after a failed poll, when it cannot open its HTTP
session, and when it replaces a poller that stopped under its subscribers; one that crashes hands
its error to its subscribers. Without coalescing there is nothing to share: the trigger polls in
its own task.
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
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_confirma.exceptions import PollerStopped
from airflow_provider_confirma.hooks.confirma import acquire_client_session, release_client_session

if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.10: the same context manager, from the package aiohttp uses there
    from async_timeout import timeout as _timeout

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_confirma.models import SyncRecord

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: One status request: given the shared HTTP session, return the records by identifier.
Fetch = Callable[["aiohttp.ClientSession"], Awaitable[Mapping[str, Any]]]

#: How many times in a row a subscriber follows a stopped poller to a new one before giving up.
MAX_REJOINS = 3
#: A round wakes its subscribers in this many slices, one event-loop iteration each, so thousands
#: of waiters judging a response never block the loop in one go.
#: Stays (docs/benchmarks.md): woken at once, 5,000 waiters lagged the loop 0.44-3.2 s with 1-2
#: full GCs per run, against 48-114 ms and none in slices.
FANOUT_SLICES = 16


async def within(awaitable: Awaitable[_T], seconds: float) -> _T:
    """``awaitable``, or ``asyncio.TimeoutError`` after ``seconds``, run in the caller's task.

    In the caller's task, not a new one (``asyncio.wait_for`` on Python 3.10): a waiter that just
    subscribed must reach its first round before the poller's task can publish it.
    """
    async with _timeout(seconds):
        return await awaitable


@dataclass(eq=False)
class PollRound:
    """The result of one poll, published to every subscriber: records or an exception.

    A slice's event is created by its first waiter, so a round with one subscriber costs one
    event and no extra loop iteration.
    """

    index: Mapping[str, SyncRecord] | None = None
    error: BaseException | None = None
    number: int = 0
    #: set once the result is final
    published: bool = False
    _events: dict[int, asyncio.Event] = field(default_factory=dict, repr=False)
    _complete: bool = field(default=False, repr=False)

    @property
    def slices(self) -> tuple[asyncio.Event, ...]:
        """The events of the slices waited on so far, in slice order."""
        return tuple(self._events[n] for n in sorted(self._events))

    async def wait(self, slice_no: int) -> None:
        if self._complete:
            return
        key = slice_no % FANOUT_SLICES
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        await event.wait()

    def publish_now(self) -> None:
        """Wake every subscriber at once (used when the poller stops, and to finish a publish)."""
        self.published = True
        self._complete = True
        for event in self._events.values():
            event.set()

    async def publish(self) -> None:
        """Wake the subscribers slice by slice, yielding to the event loop in between."""
        self.published = True
        try:
            for position, key in enumerate(sorted(self._events)):
                if position:
                    await asyncio.sleep(0)
                self._events[key].set()
        finally:  # cancelled half-way: nobody may be left waiting on a published round
            self.publish_now()


_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedPoller]] = (
    weakref.WeakKeyDictionary()
)


class SharedPoller:
    """Polls ``fetch`` every ``min(interval of its subscribers)`` seconds while it has subscribers.

    The interval is measured from the end of one poll to the start of the next, so the poller
    sleeps on every path, errors included, and a slow API is never hit back to back. A poller
    that replaces a stopped one (``previous``) first waits out the interval of its last poll.
    """

    def __init__(
        self,
        key: Hashable,
        fetch: Fetch,
        registry: dict[Hashable, SharedPoller] | None = None,
        previous: SharedPoller | None = None,
    ) -> None:
        self.key = key
        self._fetch = fetch
        self._registry = registry
        self._subscribers: dict[Subscription, float] = {}
        self._next = PollRound(number=1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: the loop's shared HTTP session, once opened (released when the poller stops)
        self._session: aiohttp.ClientSession | None = None
        #: loop time at which the last poll ended (of ``previous`` until this one polled)
        self._last_end: float | None = previous._last_end if previous is not None else None
        self.closed = False
        #: number of rounds polled (one request each, unless the session could not be opened)
        self.polls = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # -- subscribers ---------------------------------------------------------------------------
    def _add(self, sub: Subscription, interval: float) -> None:
        if self.closed:
            raise RuntimeError("cannot subscribe to a closed poller")
        self._subscribers[sub] = interval
        self._wake.set()  # a shorter interval may shorten the current sleep
        if self._task is None:
            # A fresh context: the poll belongs to no single trigger, so it must not log into
            # (or carry the log context of) whichever trigger happened to start it.
            loop = asyncio.get_running_loop()
            self._task = contextvars.Context().run(loop.create_task, self._run(), name=f"confirma-poller-{self.key!r}")

    def _remove(self, sub: Subscription) -> None:
        if self._subscribers.pop(sub, None) is None:
            return
        if not self._subscribers:
            # The last one left: stop now (cancelling an in-flight GET is harmless).
            self._close()
            if self._task is not None and not self._task.done():
                self._task.cancel()
        else:
            self._wake.set()

    # -- polling -------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._poll_loop()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug: the loop itself captures fetch and session errors
            log.exception("Confirma shared poller %r crashed", self.key)
            # Its subscribers get the cause (not a PollerStopped to rejoin on), and a replacement
            # still waits an interval (see ``previous``): a crash never turns into a hot loop.
            self._last_end = asyncio.get_running_loop().time()
            self._close(exc)
        finally:
            self._close()
            if self._session is not None:
                session, self._session = self._session, None
                await release_client_session(session)

    async def _poll_loop(self) -> None:
        loop = asyncio.get_running_loop()
        await self._sleep()  # a replacement's first poll keeps the interval of the poller it replaces
        while self._subscribers:
            current = self._next
            try:
                if self._session is None:  # fails, e.g., on a bad [confirma] max_concurrent_requests
                    self._session = await acquire_client_session()
                current.index = await self._fetch(self._session)
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

    async def _sleep(self) -> None:
        loop = asyncio.get_running_loop()
        while self._subscribers and self._last_end is not None:
            delay = self._last_end + min(self._subscribers.values()) - loop.time()
            if delay <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await within(self._wake.wait(), delay)

    def _close(self, error: BaseException | None = None) -> None:
        """Deregister and release waiters of the unpublished round with ``error`` (default: a
        :class:`PollerStopped`, on which they rejoin); idempotent, synchronous."""
        if self.closed:
            return
        self.closed = True
        if self._registry is not None and self._registry.get(self.key) is self:
            del self._registry[self.key]
        pending = self._next
        if not pending.published:
            pending.error = error if error is not None else PollerStopped("the shared status poller stopped")
            pending.publish_now()


def _crashed(current: PollRound) -> bool:
    """Whether ``current`` is the last round of a poller that crashed (its error, not a stop)."""
    return current.published and current.error is not None and not isinstance(current.error, PollerStopped)


class Subscription:
    """One waiter's membership in a poller; :meth:`next_round` waits for the next published poll."""

    _serial = itertools.count()

    def __init__(self, key: Hashable, fetch: Fetch, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"poll interval must be > 0, got {interval!r}")
        self.key, self._fetch, self.interval = key, fetch, interval
        self._slice = next(self._serial) % FANOUT_SLICES
        self.closed = False
        self.poller: SharedPoller = self._join()

    def _join(self, previous: SharedPoller | None = None) -> SharedPoller:
        """The live poller of the key (created if none; ``previous``: the stopped one it replaces)."""
        registry = _REGISTRY.setdefault(asyncio.get_running_loop(), {})
        found = registry.get(self.key)
        if found is None or found.closed:
            found = registry[self.key] = SharedPoller(self.key, self._fetch, registry, previous)
        found._add(self, self.interval)
        return found

    async def next_round(self) -> PollRound:
        """The next round published after this call (records or error); rejoins a stopped poller.

        A poller that crashed tells each of its subscribers its error once, also one that was not
        waiting at that moment; the subscriber then follows a replacement (which keeps the interval).
        """
        if self.closed:
            raise RuntimeError("subscription is closed")
        rejoins = 0
        while True:
            current = self.poller._next
            if self.poller.closed and not _crashed(current):
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
        if self.closed:
            return
        self.closed = True
        self.poller._remove(self)


def subscribe(key: Hashable, fetch: Fetch, interval: float) -> Subscription:
    """Join the poller of ``key`` on the running loop (created by the first subscriber).

    ``fetch`` is used only if this call creates the poller, so every caller of one key must pass
    an equivalent request: the key must hold everything the request uses (resolved connection,
    endpoint, query, retry policy), secrets only as hashes (it names the poller's task).
    """
    return Subscription(key, fetch, interval)


def active_pollers() -> dict[Hashable, SharedPoller]:
    """The registered pollers of the running loop (for tests and diagnostics)."""
    return dict(_REGISTRY.get(asyncio.get_running_loop(), {}))
