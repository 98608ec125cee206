"""Request coalescing: concurrent waits on one connection and query share one poll per interval."""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import pytest

from airflow_provider_confirma.exceptions import PollerStopped
from airflow_provider_confirma.triggers.coalescing import FANOUT_SLICES, PollRound, active_pollers, subscribe
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.triggers.fake_status_api import (
    HOST,
    OTHER_HOST,
    FakeStatusAPI,
    events,
    first_event,
    flip_after,
    payment_trigger,
    resolved,
    wait_for_calls,
)

pytestmark = pytest.mark.usefixtures("trigger_conns")


def make_trigger(ids: list[str] | None, **overrides: Any) -> ConfirmaPaymentSyncTrigger:
    return payment_trigger(source_identifiers=ids, **overrides)


async def test_thousands_of_waiters_share_one_request_per_round(fake_api: FakeStatusAPI):
    # 200 payments (aioresponses cannot serve bodies over 64 KiB), ten waiters on each.
    ids = [f"pay-{i}" for i in range(200)]
    waits = [[ids[i % len(ids)]] for i in range(2000)]
    fake_api.statuses.update(dict.fromkeys(ids, 0))
    triggers = await resolved(*(make_trigger(wait) for wait in waits))  # seconds on Airflow < 3.3.2
    flipper = asyncio.create_task(flip_after(fake_api, 2, dict.fromkeys(ids, 1)))
    results = await events(*triggers)
    await flipper
    # Two pending rounds and one synced round (one more if the event loop lagged a round).
    assert 3 <= len(fake_api.calls) <= 4
    assert all(e["status"] == "success" for e in results)
    # Each waiter judged its one identifier (the event carries counts; the sensor reads the records).
    assert all(
        e["summary"]["counts"] == {"total": 1, "synced": 1, "pending": 0, "failed": 0, "missing": 0} for e in results
    )
    assert active_pollers() == {}


async def test_each_waiter_gets_its_own_verdict_from_the_shared_round(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"ok-1": 1, "ok-2": 1, "bad-1": 2, "slow-1": 0})
    fake_api.descriptions["bad-1"] = "Rejected by target"
    started = time.time()
    results = await events(
        make_trigger(["ok-1", "ok-2"]),
        make_trigger(["ok-1", "bad-1"]),
        make_trigger(["slow-1"], started_at=started, end_time=started + 0.3),
        make_trigger(["bad-1"], fail_on_sync_failure=False, started_at=started, end_time=started + 0.3),
    )
    assert [r["status"] for r in results] == ["success", "failed", "timeout", "timeout"]
    assert "bad-1 (status 2: Rejected by target)" in results[1]["message"]
    # The two quick waiters finished in round one; the rest kept one shared poll going.
    rounds = len(fake_api.calls)
    assert 4 <= rounds <= 8  # about 0.3 s / 0.05 s, never one per waiter per round


async def test_cancelling_one_waiter_does_not_disturb_the_others(fake_api: FakeStatusAPI):
    ids = ["a", "b", "c"]
    fake_api.statuses.update(dict.fromkeys(ids, 0))
    tasks = [asyncio.create_task(first_event(t)) for t in await resolved(*(make_trigger([i]) for i in ids))]
    await wait_for_calls(fake_api, 1)
    (poller,) = active_pollers().values()
    assert poller.subscriber_count == 3
    tasks[0].cancel()  # the waiter that created the poller
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert poller.subscriber_count == 2
    calls_at_cancel = len(fake_api.calls)
    await wait_for_calls(fake_api, calls_at_cancel + 2)  # the shared poll goes on
    fake_api.statuses.update({"b": 1, "c": 1})
    results = await asyncio.gather(tasks[1], tasks[2])
    assert [r["status"] for r in results] == ["success", "success"]
    assert active_pollers() == {}


async def test_the_poller_stops_when_the_last_waiter_leaves(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0})
    task = asyncio.create_task(first_event(make_trigger(["a"])))
    await wait_for_calls(fake_api, 2)
    (poller,) = active_pollers().values()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.01)
    assert poller.closed
    assert active_pollers() == {}
    calls = len(fake_api.calls)
    await asyncio.sleep(0.2)  # four intervals: no orphan poll
    assert len(fake_api.calls) == calls


async def test_different_queries_and_connections_poll_separately(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1})
    results = await events(
        make_trigger(["a"], query_params={"fromDate": "2026-01-01"}),
        make_trigger(["a"], query_params={"fromDate": "2026-01-01"}),
        make_trigger(["a"], query_params={"fromDate": "2026-02-01"}),
        make_trigger(["a"]),
        make_trigger(["a"], confirma_conn_id="confirma_other"),
    )
    assert all(r["status"] == "success" for r in results)
    seen = sorted((c.host, tuple(sorted(c.params.items()))) for c in fake_api.calls)
    assert seen == [
        (OTHER_HOST, ()),
        (HOST, ()),
        (HOST, (("fromDate", "2026-01-01"),)),
        (HOST, (("fromDate", "2026-02-01"),)),
    ]


async def test_coalesce_false_polls_per_waiter(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1})
    results = await asyncio.gather(*(first_event(make_trigger(["a"], coalesce=False)) for _ in range(5)))
    assert all(r["status"] == "success" for r in results)
    assert len(fake_api.calls) == 5
    assert active_pollers() == {}


async def test_a_shared_error_round_reaches_every_waiter(fake_api: FakeStatusAPI):
    fake_api.failures.append(401)
    results = await events(*(make_trigger([f"p{i}"]) for i in range(50)))
    assert {r["status"] for r in results} == {"error"}
    assert len(fake_api.calls) == 1


async def test_transient_errors_are_counted_per_waiter(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1})
    fake_api.failures.extend([503, 503])
    results = await events(
        make_trigger(["a"], max_consecutive_errors=2),
        make_trigger(["a"], max_consecutive_errors=5),
    )
    assert results[0]["status"] == "error"
    assert "failed 2 times in a row" in results[0]["message"]
    assert results[1]["status"] == "success"
    assert len(fake_api.calls) == 3


async def test_the_shortest_interval_of_the_subscribers_drives_the_poll(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0})
    slow = asyncio.create_task(first_event(make_trigger(["a"], poll_interval=30)))
    await wait_for_calls(fake_api, 1)
    fast = asyncio.create_task(first_event(make_trigger(["a"], poll_interval=0.05)))
    await wait_for_calls(fake_api, 3)  # the slow waiter alone would wait 30 s for the second
    fake_api.statuses["a"] = 1
    results = await asyncio.gather(slow, fast)
    assert [r["status"] for r in results] == ["success", "success"]


async def test_waiters_rejoin_when_the_poller_is_stopped_under_them(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0, "b": 0})
    tasks = [asyncio.create_task(first_event(make_trigger([i]))) for i in ("a", "b")]
    await wait_for_calls(fake_api, 1)
    (poller,) = active_pollers().values()
    assert poller._task is not None
    poller._task.cancel()  # e.g. torn down by someone else
    await wait_for_calls(fake_api, 3)
    (replacement,) = active_pollers().values()
    assert replacement is not poller
    assert poller.closed
    fake_api.statuses.update({"a": 1, "b": 1})
    results = await asyncio.gather(*tasks)
    assert [r["status"] for r in results] == ["success", "success"]


async def test_subscription_rounds_carry_records_or_the_exception():
    polls = 0

    async def fetch(session: Any) -> dict[str, Any]:
        nonlocal polls
        polls += 1
        if polls == 2:
            raise RuntimeError("second poll breaks")
        return {}

    first = subscribe(("k",), fetch, 0.01)
    second = subscribe(("k",), fetch, 0.01)
    try:
        assert first.poller is second.poller
        round_one: PollRound = await first.next_round()
        assert round_one.index == {} and round_one.error is None
        round_two = await first.next_round()
        assert isinstance(round_two.error, RuntimeError)
        assert round_two.number == round_one.number + 1
    finally:
        first.close()
        second.close()
    assert first.poller is not None and first.poller.closed
    assert polls in (2, 3)


async def test_the_poll_does_not_run_in_the_first_subscribers_context():
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")
    seen: list[str] = []

    async def fetch(session: Any) -> list[Any]:
        seen.append(marker.get())
        return []

    marker.set("trigger-1")  # e.g. the triggerer binds a trigger's log context like this
    subscription = subscribe(("ctx",), fetch, 0.01)
    try:
        await subscription.next_round()
    finally:
        subscription.close()
    assert seen == ["none"]


async def test_a_round_wakes_every_slice_even_if_publishing_is_cancelled_half_way():
    current = PollRound(index={})
    waiters = [asyncio.create_task(current.wait(n)) for n in range(FANOUT_SLICES)]
    await asyncio.sleep(0)
    publisher = asyncio.create_task(current.publish())
    await asyncio.sleep(0)  # the first slice is set, then the publisher yields
    assert not all(event.is_set() for event in current.slices)
    publisher.cancel()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert all(event.is_set() for event in current.slices)


async def test_a_round_wakes_its_waiters_one_slice_per_loop_iteration():
    current = PollRound(index={})
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await current.wait(n)
        woken.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(FANOUT_SLICES * 2)]
    await asyncio.sleep(0)
    publisher = asyncio.create_task(current.publish())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert 0 < len(woken) < len(tasks)  # some slices woke, not yet all
    await publisher
    await asyncio.gather(*tasks)
    assert sorted(woken) == list(range(FANOUT_SLICES * 2))


async def test_a_round_with_one_waiter_creates_one_event_and_publishes_without_yielding():
    # a shared poller with one waiter (its first, or its last) pays no fan-out cost per poll
    current = PollRound(index={})
    waiter = asyncio.create_task(current.wait(5))
    await asyncio.sleep(0)
    assert len(current.slices) == 1
    publishing = current.publish()
    with pytest.raises(StopIteration):
        publishing.send(None)  # finished at once: no event-loop iteration spent
    await asyncio.wait_for(waiter, 1)


async def test_waiting_on_a_published_round_returns_at_once_for_any_slice():
    current = PollRound(index={})
    await current.publish()
    await asyncio.wait_for(asyncio.gather(*(current.wait(n) for n in range(FANOUT_SLICES + 3))), 1)
    stopped = PollRound()
    stopped.publish_now()
    await asyncio.wait_for(stopped.wait(7), 1)


def test_a_stopped_poller_is_a_transient_poll_error_of_the_trigger():
    """Past its rejoins a waiter gets the PollerStopped itself: one more error of its streak, not an end."""
    trigger = make_trigger(["a"], max_consecutive_errors=2)
    assert trigger._judge_error(PollerStopped("the shared status poller stopped")) is None
    ended = trigger._judge_error(PollerStopped("the shared status poller stopped"))
    assert ended is not None and ended["status"] == "error"
    assert "PollerStopped" in ended["message"]
