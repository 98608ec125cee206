"""The event triggers of ``AssetWatcher`` (``triggers/events.py``): one event per batch of records that
newly reached a final state, never again for the same records, one poll for every watcher."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseEventTrigger

from airflow_provider_confirma.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_confirma.exceptions import ConfirmaConfigError
from airflow_provider_confirma.models import PaymentSyncRecord, StatusSets, index_sync_records
from airflow_provider_confirma.triggers import events as module
from airflow_provider_confirma.triggers.coalescing import active_pollers
from airflow_provider_confirma.triggers.events import (
    EVENT_IDENTIFIER_CHARS,
    WATERMARK_CHARS,
    ConfirmaSyncEventTrigger,
    snapshot,
)
from airflow_provider_confirma.triggers.ledger_sync import ConfirmaLedgerSyncEventTrigger
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncEventTrigger
from tests.airflow_compat import deserialize, serialize
from tests.sync_variants import PAYMENT
from tests.triggers.fake_status_api import TRIGGER_KEY, FakeStatusAPI, wait_for_calls

pytestmark = pytest.mark.usefixtures("trigger_conns")
CLASSES = [ConfirmaPaymentSyncEventTrigger, ConfirmaLedgerSyncEventTrigger]


class FakeStore:
    """An asset's state store (``asset_state_store`` of Airflow 3.3) in memory: JSON values only."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)


def watcher(store: FakeStore | None = None, **overrides: Any) -> ConfirmaPaymentSyncEventTrigger:
    trigger = ConfirmaPaymentSyncEventTrigger(
        **{"confirma_conn_id": "confirma_test", "poll_interval": 0.005, **overrides}
    )
    trigger.asset_state_store = store  # type: ignore[assignment]
    return trigger


async def collect(trigger: ConfirmaSyncEventTrigger, api: FakeStatusAPI, polls: int) -> list[dict[str, Any]]:
    """The payloads ``trigger.run()`` fires until ``api`` has served ``polls`` more requests."""
    fired: list[dict[str, Any]] = []

    async def consume() -> None:
        async for event in trigger.run():
            json.dumps(event.payload)
            fired.append(event.payload)

    task = asyncio.create_task(consume())
    await wait_for_calls(api, len(api.calls) + polls)
    await asyncio.sleep(0)  # the last round's verdict
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return fired


def judged(trigger: ConfirmaSyncEventTrigger, statuses: dict[str, int]) -> list[dict[str, Any]]:
    """The payloads of one poll answering ``statuses`` (no HTTP: the snapshot the poll builds)."""
    polled = snapshot(index_sync_records(PAYMENT.body(statuses), "payments", PaymentSyncRecord), trigger.status_sets)
    return [event.payload for event in asyncio.run(trigger.judge(polled))]


async def test_unchanged_polls_fire_nothing_and_a_newly_synced_record_fires_once(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"pay-1": 0, "pay-2": 0})
    trigger = watcher()
    assert await collect(trigger, fake_api, 100) == []
    fake_api.statuses["pay-1"] = 1
    fired = await collect(trigger, fake_api, 20)
    assert [(e["state"], e["count"], e["identifiers"], e["omitted"]) for e in fired] == [("synced", 1, ["pay-1"], 0)]
    assert fired[0]["batch_key"].startswith("payment-synced-") and fired[0]["kind"] == "payment"


def test_each_batch_once_in_its_state_and_failures_only_when_asked():
    quiet, loud = watcher(), watcher(include_failed=True)
    assert [(e["state"], e["identifiers"]) for e in judged(quiet, {"a": 1, "b": 2, "c": 0})] == [("synced", ["a"])]
    assert [(e["state"], e["identifiers"]) for e in judged(loud, {"a": 1, "b": 2, "c": 0})] == [
        ("synced", ["a"]),
        ("failed", ["b"]),
    ]
    # c syncs, b is resubmitted and syncs; a record that leaves the response is forgotten
    assert [(e["state"], e["identifiers"]) for e in judged(loud, {"a": 1, "b": 1, "c": 1})] == [("synced", ["b", "c"])]
    assert judged(loud, {"a": 1, "b": 1, "c": 1}) == []
    assert judged(quiet, {"a": 1, "b": 2, "c": 2}) == []


def test_the_batch_key_is_stable_for_the_same_records():
    first, second = judged(watcher(), {"x": 1, "y": 1}), judged(watcher(), {"y": 1, "x": 1})
    assert first[0]["batch_key"] == second[0]["batch_key"]
    assert judged(watcher(), {"x": 1})[0]["batch_key"] != first[0]["batch_key"]


def test_a_batch_of_100000_records_is_one_small_event_and_a_bounded_watermark():
    statuses = {f"pay-{n:06d}": 1 for n in range(100_000)}
    trigger = watcher()
    (event,) = judged(trigger, statuses)
    assert event["count"] == 100_000 and event["omitted"] == 100_000 - len(event["identifiers"])
    assert len(event["identifiers"]) > 500 and len(json.dumps(event)) < EVENT_IDENTIFIER_CHARS + 300
    assert event["identifiers"] == sorted(event["identifiers"])
    stored = trigger._watermark()
    assert len(json.dumps(stored)) < WATERMARK_CHARS + 300 and stored["complete"] is False
    assert judged(trigger, statuses) == []


async def test_the_watermark_survives_a_restart(fake_api: FakeStatusAPI, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(module, "WATERMARK_LAG", 0.0)
    store = FakeStore()
    fake_api.statuses.update({"pay-1": 1, "pay-2": 0})
    assert [e["identifiers"] for e in await collect(watcher(store), fake_api, 3)] == [["pay-1"]]
    assert len(store.values) == 1  # stored at the poll after the event
    # a new triggerer: nothing old again (the digest of the response is the stored one) ...
    assert await collect(watcher(store), fake_api, 3) == []
    # ... and with changes while no one watched, only the new records
    fake_api.statuses.update({"pay-2": 1, "pay-3": 1})
    assert [e["identifiers"] for e in await collect(watcher(store), fake_api, 3)] == [["pay-2", "pay-3"]]
    # another query has a watermark of its own
    assert [e["count"] for e in await collect(watcher(store, query_params={"q": "1"}), fake_api, 3)] == [3]


def test_an_event_not_yet_stored_is_repeated_after_a_crash_never_lost():
    store = FakeStore()
    first = judged(watcher(store), {"a": 1})
    assert store.values == {}  # within WATERMARK_LAG of the event: not stored yet
    assert judged(watcher(store), {"a": 1}) == first  # the same batch key: the consumer dedupes


@pytest.mark.parametrize("trigger_class", CLASSES)
def test_kwargs_round_trip_exactly(trigger_class: type[ConfirmaSyncEventTrigger]):
    trigger = trigger_class(
        confirma_conn_id="confirma_test",
        poll_interval=30,
        query_params={"fromDate": "2026-02-01", "ids": ("a", "b"), "none": None},
        include_failed=True,
        success_statuses={1, 3},
        pending_statuses="0",
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{trigger_class.__module__}.{trigger_class.__name__}"
    rebuilt = trigger_class(**deserialize(serialize(kwargs)))  # type: ignore[arg-type]
    assert rebuilt.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(*rebuilt.serialize()) == BaseEventTrigger.hash(classpath, kwargs)
    assert kwargs["query_params"] == {"fromDate": "2026-02-01", "ids": ["a", "b"]}
    assert json.loads(json.dumps(kwargs)) == kwargs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confirma_conn_id": " "}, "confirma_conn_id must be a non-empty string"),
        ({"poll_interval": 0}, "poll_interval must be a positive number"),
        ({"query_params": {"fromDate": "{{ ds }}"}}, "renders no template"),
        ({"query_params": ["a"]}, "query_params must be a dict"),
        ({"include_failed": "yes"}, "include_failed must be True or False"),
        ({"success_statuses": [0]}, "overlap"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str):
    with pytest.raises(ConfirmaConfigError, match=message):
        ConfirmaPaymentSyncEventTrigger(**kwargs)


async def test_many_watchers_share_one_poll(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"pay-1": 1})
    triggers = [watcher(poll_interval=30) for _ in range(100)]
    runs = [t.run() for t in triggers]
    try:
        fired = await asyncio.wait_for(asyncio.gather(*(anext(r) for r in runs)), 10)  # type: ignore[arg-type]
    finally:
        for run in runs:
            await run.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)  # the poller's task ends (the last subscriber left)
    assert active_pollers() == {}
    assert len(fake_api.calls) == 1 and {e.payload["identifiers"][0] for e in fired} == {"pay-1"}
    assert len({t.shared_stream_key() for t in triggers}) == 1
    assert watcher(query_params={"q": "1"}).shared_stream_key() != triggers[0].shared_stream_key()


@pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason="shared streams are Airflow 3.3's")
async def test_airflow_shared_streams_poll_once_for_all_watchers(fake_api: FakeStatusAPI):
    from airflow.triggers.shared_stream import SharedStreamManager

    fake_api.statuses.update({"pay-1": 0})
    manager, triggers = SharedStreamManager(), [watcher(poll_interval=0.05) for _ in range(100)]
    streams = [
        t.filter_shared_stream(manager.subscribe(trigger_id=n, trigger=t, key=t.shared_stream_key()))
        for n, t in enumerate(triggers)
    ]
    await wait_for_calls(fake_api, 2)
    fake_api.statuses["pay-1"] = 1
    fired = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 5)  # type: ignore[arg-type]
    calls = len(fake_api.calls)
    await manager.stop_all()
    assert {e.payload["identifiers"][0] for e in fired} == {"pay-1"} and calls <= 4


async def test_a_failed_poll_is_logged_once_and_polling_goes_on(fake_api: FakeStatusAPI, caplog):
    fake_api.failures.extend([401, 401])
    fake_api.statuses.update({"pay-1": 1})
    with caplog.at_level(logging.INFO):
        fired = await collect(watcher(), fake_api, 4)
    assert [e["identifiers"] for e in fired] == [["pay-1"]]
    assert len([r for r in caplog.records if "poll failed" in r.getMessage()]) == 2


async def test_the_key_is_never_in_kwargs_events_or_logs(fake_api: FakeStatusAPI, caplog):
    fake_api.statuses.update({"pay-1": 1, "pay-2": 2})
    fake_api.failures.append(401)
    trigger = watcher(include_failed=True)
    with caplog.at_level(logging.DEBUG):
        fired = await collect(trigger, fake_api, 3)
    assert len(fired) == 2 and all(call.api_key == TRIGGER_KEY for call in fake_api.calls)
    seen = json.dumps([trigger.serialize(), fired, repr(trigger), caplog.text, trigger._watermark()])
    assert TRIGGER_KEY not in seen


def test_status_sets_decide_what_is_final():
    trigger = watcher(success_statuses=[3], pending_statuses=[0, 1])
    assert trigger.status_sets == StatusSets.build([3], [0, 1])
    assert [(e["state"], e["identifiers"]) for e in judged(trigger, {"a": 1, "b": 3})] == [("synced", ["b"])]


def test_the_docs_show_the_example_dag_as_it_is():
    root = Path(__file__).resolve().parents[2]
    snippet = (root / "docs" / "events.md").read_text().split("```python\n")[1].split("```")[0]
    body = "\n".join(line for line in snippet.splitlines() if not line.startswith(("from ", "import ")))
    example = (root / "example_dags" / "example_confirma_payment_events.py").read_text()
    assert body.strip() in example and "schedule=[SYNCED_PAYMENTS]" in example
