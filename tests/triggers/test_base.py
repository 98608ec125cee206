"""The base trigger's own polling (``coalesce=False``): spacing, the shared session, the wait's end
cutting a request off, and what a sleeping wait keeps alive (no poller task, one timer)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_confirma.hooks import confirma as hook_module
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


async def test_an_own_poll_starts_one_interval_after_the_previous_one_ended(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0})
    fake_api.delay = 0.05  # the request itself takes a while
    task = asyncio.create_task(first_event(own_poll_trigger(["a"])))
    await wait_for_calls(fake_api, 4)
    fake_api.statuses["a"] = 1
    assert (await task)["status"] == "success"
    gaps = [b.at - a.at for a, b in zip(fake_api.calls, fake_api.calls[1:], strict=False)]
    assert min(gaps) >= 0.05 + 0.1 - 0.005  # 0.05 s request + 0.1 s interval


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
    # each wait's sleep, plus at most the session's keep-alive cleanup; no timer per wait for its
    # end time (a request's own timers end with the request)
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
    assert time.time() - started < 0.5 + 2  # cut off at the wait's end, not at the request's own 30 s timeout
