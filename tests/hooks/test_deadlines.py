"""Request deadlines on one watchdog timer per event loop (hooks/deadlines.py)."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_confirma.hooks import deadlines
from airflow_provider_confirma.hooks.deadlines import TICK, deadline, watchdog

pytestmark = pytest.mark.skipif(not deadlines.supported(), reason="needs asyncio.timeout (Python 3.11+)")


async def test_an_overdue_request_ends_with_timeout_error_at_most_one_tick_late():
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError):
        async with deadline(0.3):
            await asyncio.sleep(5)
    elapsed = loop.time() - began
    assert 0.3 <= elapsed <= 0.3 + TICK + 0.15
    assert watchdog().pending == {}


async def test_a_request_that_finishes_in_time_leaves_nothing_and_the_watchdog_stops():
    async with deadline(5):
        await asyncio.sleep(0.01)
        assert len(watchdog().pending) == 1 and watchdog().ticking
    assert watchdog().pending == {}
    await asyncio.sleep(TICK + 0.05)  # the tick finds nothing in flight and does not re-arm
    assert not watchdog().ticking


async def test_many_requests_share_one_timer_and_expire_independently():
    async def attempt(seconds: float, work: float) -> str:
        try:
            async with deadline(seconds):
                await asyncio.sleep(work)
            return "done"
        except TimeoutError:
            return "timeout"

    tasks = [asyncio.create_task(attempt(0.2, 1.0 if i % 2 else 0.01)) for i in range(200)]
    await asyncio.sleep(0)
    assert watchdog().ticking  # one recurring handle, whatever the number in flight
    results = await asyncio.gather(*tasks)
    assert results.count("timeout") == 100 and results.count("done") == 100


async def test_cancellation_from_outside_stays_a_cancellation():
    started = asyncio.Event()

    async def attempt() -> None:
        async with deadline(5):
            started.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(attempt())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert watchdog().pending == {}


async def test_errors_inside_pass_through_unchanged():
    with pytest.raises(ValueError, match="boom"):
        async with deadline(5):
            raise ValueError("boom")
    assert watchdog().pending == {}
