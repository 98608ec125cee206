"""Event triggers for ``AssetWatcher``: one event per batch of records that newly reached a final state.

A trigger remembers what it reported (its *watermark*: identifier -> state, while the response lists
the record in that state) in the process and, on Airflow 3.3+, in the watched asset's state store,
written :data:`WATERMARK_LAG` after the event (a crash repeats a batch, never loses one). Every watcher
of a connection and query shares one poll: Airflow 3.3's shared streams, our :mod:`.coalescing` before.
Events carry counts, a stable ``batch_key`` and bounded identifiers, never records (docs/events.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Collection, Hashable, Iterable, Mapping
from functools import cached_property
from typing import Any, cast

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_confirma.arguments import DEFAULT_CONN_ID, is_template
from airflow_provider_confirma.exceptions import ConfirmaConfigError, describe_error
from airflow_provider_confirma.hooks.confirma import ConfirmaHook, shared_client_session
from airflow_provider_confirma.models import StatusIndex, StatusSets, SyncState, decisive_record
from airflow_provider_confirma.triggers.base import StatusPollTrigger, query_key
from airflow_provider_confirma.triggers.coalescing import subscribe

log = logging.getLogger(__name__)

#: An event lists identifiers up to this many JSON characters (about 1,000); ``omitted`` counts the rest.
EVENT_IDENTIFIER_CHARS = 16_000
#: The stored watermark's identifiers, in JSON characters: under ``[state_store] max_value_storage_bytes``.
WATERMARK_CHARS = 48_000
#: Seconds between handing an event to the triggerer and storing the watermark that covers it.
WATERMARK_LAG = 10.0
#: The asset state store key of a watermark: this prefix and a digest of what defines the reports.
WATERMARK_KEY = "confirma_reported_"
REPORTED = (SyncState.SYNCED.value, SyncState.FAILED.value)


class Snapshot(dict[str, str]):
    """One poll's final records (identifier -> ``"synced"`` / ``"failed"``) and their digest, built
    once for every watcher of the poll: an unchanged response is judged without a look at the records."""

    def __init__(self, finals: dict[str, str]) -> None:
        super().__init__(finals)
        joined = "\n".join(sorted(f"{ident}\t{state}" for ident, state in finals.items()))
        self.digest = hashlib.sha256(joined.encode()).hexdigest()


def snapshot(index: StatusIndex, status_sets: StatusSets) -> Snapshot:
    """The final records of a status response, each identifier in its decided state."""
    finals: dict[str, str] = {}
    for ident, raw in index.raw.items():
        group = index.duplicates.get(ident)
        state = status_sets.classify((decisive_record(group, status_sets) if group else raw).get("status"))
        if state.value in REPORTED:
            finals[ident] = state.value
    return Snapshot(finals)


def fit(items: Iterable[str], budget: int) -> list[str]:
    """The leading ``items`` whose JSON text (quotes, comma, escapes) fits in ``budget`` characters."""
    out: list[str] = []
    for item in items:
        budget -= len(json.dumps(item)) + 2
        if budget < 0:
            break
        out.append(item)
    return out


def batch_event(noun: str, state: str, identifiers: Collection[str]) -> TriggerEvent:
    """The event of one batch: a key stable for the same records, counts, identifiers (bounded)."""
    ordered = sorted(identifiers)
    digest = hashlib.sha256("\n".join([state, *ordered]).encode()).hexdigest()[:24]
    listed = fit(ordered, EVENT_IDENTIFIER_CHARS)
    return TriggerEvent(
        {
            "batch_key": f"{noun}-{state}-{digest}",
            "kind": noun,
            "state": state,
            "count": len(ordered),
            "identifiers": listed,
            "omitted": len(ordered) - len(listed),
        }
    )


class ConfirmaSyncEventTrigger(StatusPollTrigger, BaseEventTrigger):
    """Fire one event for each batch of records that newly reached a final state (for ``AssetWatcher``).

    Not used directly: a subclass sets :attr:`status_endpoint` and :attr:`noun`. Arguments are
    fixed when the DAG is parsed (a watcher renders no template) and checked then.

    :param confirma_conn_id: the ``confirma`` connection.
    :param poll_interval: seconds between the end of one poll and the start of the next.
    :param query_params: query parameters of the status request (plain values, no templates).
    :param include_failed: also fire (separate) events for records that newly failed.
    :param success_statuses: status codes meaning synced.
    :param pending_statuses: status codes meaning still queued; any other code is a failure.
    """

    def __init__(
        self,
        *,
        confirma_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        query_params: Mapping[str, Any] | None = None,
        include_failed: bool = False,
        success_statuses: Collection[int] | None = None,
        pending_statuses: Collection[int] | None = None,
    ) -> None:
        super().__init__(confirma_conn_id, query_params, poll_interval, success_statuses, pending_statuses)
        name = type(self).__name__
        if is_template(query_params) or is_template(confirma_conn_id):
            raise ConfirmaConfigError(
                f"{name}: a watcher's trigger renders no template (it has no task context); "
                f"pass plain values, got confirma_conn_id={confirma_conn_id!r}, query_params={query_params!r}"
            )
        if not isinstance(include_failed, bool):
            raise ConfirmaConfigError(f"{name}: include_failed must be True or False, got {include_failed!r}")
        self.include_failed = include_failed
        self.states = REPORTED if include_failed else REPORTED[:1]
        #: run state: what was reported (ident -> state), the digest judged last, unsaved watermarks
        self._memory: dict[str, str] | None = None
        self._digest: str | None = None
        self._unsaved: list[tuple[float, dict[str, Any]]] = []

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """JSON-safe primitives, the same after a round trip (else Airflow recreates the watcher at each parse)."""
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "confirma_conn_id": self.confirma_conn_id,
            "poll_interval": self.poll_interval,
            "query_params": self.query_kwarg(),
            "include_failed": self.include_failed,
            **{f"{k}_statuses": v for k, v in self.status_sets.to_primitives().items()},
        }

    # -- one poll for all watchers of a connection and query -----------------------------------
    def shared_stream_key(self) -> Hashable:
        """What a poll depends on (Airflow 3.3 shares one poll among the triggers of one key)."""
        codes = tuple(tuple(codes) for codes in self.status_sets.to_primitives().values())
        query = query_key(self.query_params)
        return ("confirma-events", self.status_endpoint.value, self.confirma_conn_id, query, self.poll_interval, codes)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Snapshot]:
        """Airflow 3.3: the group's one poll loop; yields a :class:`Snapshot` per good poll, forever."""
        poller = cls(**kwargs)
        async with shared_client_session() as session:
            while True:
                try:
                    found: Snapshot | None = await poller.fetch(session)
                except Exception:  # logged by fetch; the next poll may succeed
                    found = None
                if found is not None:
                    yield found
                await asyncio.sleep(poller.poll_interval)

    async def fetch(self, session: Any) -> Snapshot:
        """One status request as a :class:`Snapshot`; a failure is logged (once per poll, not per
        watcher) and the connection is read again for the next poll (a rotated key, a new host)."""
        try:
            index = await self.hook.aget_status_index(self.status_endpoint, self.query_params, session=session)
            return snapshot(index, self.status_sets)
        except Exception as exc:
            log.warning("Confirma %s events: poll failed, polling on: %s", self.noun, describe_error(exc))
            self.__dict__.pop("hook", None)
            raise

    @cached_property
    def hook(self) -> ConfirmaHook:
        return ConfirmaHook(self.confirma_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Airflow < 3.3 (no shared streams): the same judgement over our coalesced poll."""
        subscription = subscribe(self.shared_stream_key(), self.fetch, self.poll_interval)
        try:
            while True:
                polled = await subscription.next_round()
                if polled.error is None:  # an error was logged by the poll's fetch
                    for event in await self.judge(cast("Snapshot", polled.index)):
                        yield event
        finally:
            subscription.close()

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Airflow 3.3: this watcher's events from the group's polls."""
        async for polled in shared_stream:
            for event in await self.judge(polled):
                yield event

    # -- what is new, and the watermark ----------------------------------------------------------
    async def judge(self, polled: Snapshot) -> list[TriggerEvent]:
        """The events of one poll (none when nothing newly reached a reported state)."""
        await self._save_due()
        if self._memory is None:
            await self._load(polled)
        if polled.digest == self._digest:
            return []
        assert self._memory is not None
        memory = {ident: state for ident, state in self._memory.items() if polled.get(ident) == state}
        new: dict[str, list[str]] = {state: [] for state in self.states}
        for ident, state in polled.items():
            if state in new and ident not in memory:
                new[state].append(ident)
                memory[ident] = state
        self._memory, self._digest = memory, polled.digest
        events = [batch_event(self.noun, state, idents) for state, idents in new.items() if idents]
        for event in events:
            batch = event.payload
            log.info(
                "Confirma %s events: %d newly %s (%s)", self.noun, batch["count"], batch["state"], batch["batch_key"]
            )
        self._unsaved.append((time.monotonic() + WATERMARK_LAG, self._watermark()))
        return events

    def _watermark(self) -> dict[str, Any]:
        """The stored form: the digest judged last and the most recently reported identifiers."""
        assert self._memory is not None
        kept = fit(reversed(self._memory), WATERMARK_CHARS)
        return {
            "digest": self._digest,
            "complete": len(kept) == len(self._memory),
            **{state: [i for i in reversed(kept) if self._memory[i] == state] for state in REPORTED},
        }

    @property
    def watermark_key(self) -> str:
        """Per endpoint, connection, query and status sets (not the poll interval): what defines the reports."""
        _, kwargs = self.serialize()
        kwargs.pop("poll_interval")
        text = json.dumps([self.status_endpoint.value, kwargs], sort_keys=True)
        return WATERMARK_KEY + hashlib.sha256(text.encode()).hexdigest()[:16]

    def _stores(self) -> list[Any]:
        """One accessor per watched asset (a trigger serves every asset whose watcher has its kwargs)."""
        store = self.asset_state_store
        if store is None:
            return []
        # AssetStateStoreAccessors has no public iteration; its single-asset methods refuse several.
        found = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
        return found or [store]

    async def _load(self, polled: Snapshot) -> None:
        """The stored watermark: the same digest means nothing changed while no one watched."""
        stores = self._stores()
        if not stores:
            log.warning(
                "Confirma %s events: no asset state store (it needs Airflow 3.3+ and a watched asset): "
                "what was reported is kept in this process only; after a restart the records final then "
                "are reported once more (delivery is at least once, see batch_key).",
                self.noun,
            )
        stored = None
        for store in stores:
            stored = stored or await store.aget(self.watermark_key)
        if not isinstance(stored, Mapping):
            stored = {}
        if stored.get("digest") == polled.digest:
            self._memory = {i: s for i, s in polled.items() if s in self.states}
            self._digest = polled.digest
        else:
            self._memory = {ident: state for state in REPORTED for ident in stored.get(state) or ()}

    async def _save_due(self) -> None:
        """Store the latest watermark whose lag is over (the ones before it are covered by it)."""
        now = time.monotonic()
        due = [value for at, value in self._unsaved if at <= now]
        if due:
            del self._unsaved[: len(due)]
            for store in self._stores():
                await store.aset(self.watermark_key, due[-1])
