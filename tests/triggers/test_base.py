"""The base trigger's own polling (``coalesce=False``): spacing, jitter, the wake-up grid, the shared
session, and what a sleeping wait keeps alive (no poller task, one timer)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import pytest

from airflow_provider_confirma.hooks import confirma as hook_module
from airflow_provider_confirma.hooks import deadlines
from airflow_provider_confirma.triggers import base
from airflow_provider_confirma.triggers.coalescing import active_pollers
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.triggers.fake_status_api import FakeStatusAPI, first_event, payment_trigger, wait_for_calls

pytestmark = pytest.mark.usefixtures("trigger_conns")


def own_poll_trigger(ids: list[str], **overrides: Any) -> ConfirmaPaymentSyncTrigger:
    return payment_trigger(**{"source_identifiers": ids, "poll_interval": 0.1, "coalesce": False, **overrides})


async def run_once(trigger: ConfirmaPaymentSyncTrigger) -> dict[str, Any]:
    """The trigger's event, as a triggerer runs it: in one task, no extra timer or task."""
    gen = trigger.run()
    try:
        return (await gen.__anext__()).payload
    finally:
        await gen.aclose()


def test_jitter_keeps_the_interval_on_average_within_bounds():
    random.seed(7)
    factors = [base.jittered() for _ in range(20_000)]
    half = base.POLL_JITTER / 2
    assert min(factors) >= 1 - half and max(factors) <= 1 + half
    assert min(factors) < 1 - 0.9 * half and max(factors) > 1 + 0.9 * half  # the whole range is used
    assert statistics.fmean(factors) == pytest.approx(1.0, abs=0.002)


async def test_an_own_poll_starts_one_interval_after_the_previous_one_ended(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0})
    fake_api.delay = 0.05  # the request itself takes a while
    task = asyncio.create_task(first_event(own_poll_trigger(["a"])))
    await wait_for_calls(fake_api, 4)
    fake_api.statuses["a"] = 1
    assert (await task)["status"] == "success"
    gaps = [b.at - a.at for a, b in zip(fake_api.calls, fake_api.calls[1:], strict=False)]
    # 0.05 s request + 0.1 s interval, less the jitter
    assert min(gaps) >= 0.05 + 0.1 * (1 - base.POLL_JITTER / 2) - 0.005


async def test_every_own_poll_sleep_is_jittered_so_waits_started_together_fall_out_of_step(
    fake_api: FakeStatusAPI, monkeypatch: pytest.MonkeyPatch
):
    pauses: list[float] = []
    real_sleep = base.sleep_on_grid

    async def recording_sleep(seconds: float) -> None:
        pauses.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(base, "sleep_on_grid", recording_sleep)
    fake_api.statuses.update({"a": 0})
    tasks = [asyncio.create_task(first_event(own_poll_trigger(["a"], poll_interval=0.05))) for _ in range(10)]
    await wait_for_calls(fake_api, 40)
    fake_api.statuses["a"] = 1
    await asyncio.gather(*tasks)
    half = base.POLL_JITTER / 2
    assert len(pauses) >= 30
    assert all(0.05 * (1 - half) <= p <= 0.05 * (1 + half) for p in pauses)
    assert max(pauses) - min(pauses) > 0.05 * half  # not one fixed pause: the waits drift apart


async def test_sleeps_wake_on_the_grid_so_waits_due_together_share_a_loop_iteration():
    loop = asyncio.get_running_loop()
    step = base.WAKE_GRID
    await asyncio.sleep((int(loop.time() / step) + 2) * step - loop.time())  # just after a grid point
    before = set(loop._scheduled)  # type: ignore[attr-defined]
    asked = loop.time()
    # due 1 ms apart, inside one grid step
    sleepers = [
        asyncio.create_task(base.sleep_on_grid(step / 5)),
        asyncio.create_task(base.sleep_on_grid(2 * step / 5)),
    ]
    await asyncio.sleep(0)
    timers = [h for h in loop._scheduled if h not in before]  # type: ignore[attr-defined]
    assert len(timers) == 2
    first, second = (h.when() for h in timers)
    assert first == second  # one timer time: both wake in the same loop iteration
    assert first >= asked + 2 * step / 5
    assert first == pytest.approx(round(first / step) * step, abs=1e-9)  # on the grid
    await asyncio.gather(*sleepers)


async def test_a_cancelled_sleep_leaves_no_live_timer():
    loop = asyncio.get_running_loop()
    sleeper = asyncio.create_task(base.sleep_on_grid(60))
    await asyncio.sleep(0)
    live = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert len([h for h in loop._scheduled if not h.cancelled()]) == len(live) - 1  # type: ignore[attr-defined]


async def test_sleeping_own_poll_waits_hold_one_timer_each_and_no_poller_task(fake_api: FakeStatusAPI):
    loop = asyncio.get_running_loop()
    fake_api.statuses.update({"a": 0})
    timers_before = len([h for h in loop._scheduled if not h.cancelled()])  # type: ignore[attr-defined]
    tasks_before = len(asyncio.all_tasks())
    waits = [asyncio.create_task(run_once(own_poll_trigger(["a"], poll_interval=0.5))) for _ in range(20)]
    await wait_for_calls(fake_api, 20)
    deadline = time.monotonic() + 5
    while True:  # until all 20 are asleep until their next poll
        timers = len([h for h in loop._scheduled if not h.cancelled()])  # type: ignore[attr-defined]
        if timers - timers_before >= 20 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks()) == tasks_before + 20  # no poller task
    assert active_pollers() == {}
    # each wait's sleep, plus at most the session's keep-alive cleanup and the request watchdog;
    # no timer per wait for its end time
    assert 20 <= timers - timers_before <= 20 + 2
    fake_api.statuses["a"] = 1
    done = await asyncio.wait_for(asyncio.gather(*waits), 10)
    assert {event["status"] for event in done} == {"success"}


async def test_own_polls_share_the_loop_session_and_the_last_one_closes_it(fake_api: FakeStatusAPI):
    loop = asyncio.get_running_loop()
    fake_api.statuses.update({"a": 0})
    first = asyncio.create_task(first_event(own_poll_trigger(["a"])))
    second = asyncio.create_task(first_event(own_poll_trigger(["a"])))
    await wait_for_calls(fake_api, 2)
    shared = hook_module._LOOP_SESSIONS[loop]
    assert shared.users == 2
    session = shared.session
    fake_api.statuses["a"] = 1
    assert [(await first)["status"], (await second)["status"]] == ["success", "success"]
    assert loop not in hook_module._LOOP_SESSIONS
    assert session.closed


@pytest.mark.skipif(not deadlines.supported(), reason="the loop's watchdog needs Python 3.11 (asyncio.timeout)")
@pytest.mark.parametrize(("seconds_left", "deadlines_per_request"), [(3600, 1), (10, 2)], ids=["far", "near"])
async def test_only_a_request_that_could_outlast_the_wait_gets_the_waits_deadline(
    fake_api: FakeStatusAPI, attempt_deadlines: list[float], seconds_left: float, deadlines_per_request: int
):
    given = attempt_deadlines
    fake_api.statuses.update({"a": 0})
    trigger = own_poll_trigger(["a"], end_time=time.time() + seconds_left, poll_interval=0.05)
    task = asyncio.create_task(first_event(trigger))
    await wait_for_calls(fake_api, 3)
    fake_api.statuses["a"] = 1
    assert (await task)["status"] == "success"
    longest = trigger.hook.longest_read_seconds()
    assert longest is not None and 10 < longest < 3600  # ONE_ATTEMPT: 2 s budget + the connection's 30 s timeout
    # the connection is resolved before the first request, so from the first one on: per request,
    # the attempt's own deadline, and the wait's end only when the request could outlast it
    assert len(given) == deadlines_per_request * len(fake_api.calls)


async def test_the_wait_ends_on_time_when_a_request_hangs(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0})
    fake_api.delay = 0.15
    started = time.time()
    task = asyncio.create_task(first_event(own_poll_trigger(["a"], started_at=started, end_time=started + 0.5)))
    await wait_for_calls(fake_api, 1)
    fake_api.delay = 30  # the next request hangs past the end of the wait
    payload = await task
    assert payload["status"] == "timeout"
    assert "0/1 synced" in payload["message"]  # the last response it had
    assert time.time() - started < 0.5 + 2  # ended by the watchdog, not by the request's own 30 s timeout
