"""ConfirmaPaymentSyncTrigger against a scripted aiohttp transport: events, errors, timeouts, serialization.

Every test runs with coalescing on (the default: a shared poller) and off (the trigger polls in its
own task), which are two code paths to the same events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import deserialize, serialize
from tests.triggers.fake_status_api import TRIGGER_KEY, FakeStatusAPI, first_event, payment_trigger

pytestmark = pytest.mark.usefixtures("trigger_conns")

#: The poll mode of the test running (see :func:`poll_mode`).
MODE = {"coalesce": True}


@pytest.fixture(autouse=True, params=[True, False], ids=["coalesced", "own-poll"])
def poll_mode(request: pytest.FixtureRequest) -> Iterator[bool]:
    MODE["coalesce"] = request.param
    yield request.param
    MODE["coalesce"] = True


def make_trigger(**overrides: Any) -> ConfirmaPaymentSyncTrigger:
    return payment_trigger(**{"source_identifiers": ["a", "b"], "coalesce": MODE["coalesce"], **overrides})


async def flip_after(api: FakeStatusAPI, polls: int, statuses: dict[str, int]) -> None:
    """Change the API's answers once it has served ``polls`` requests (gives up after 5 s)."""
    deadline = time.monotonic() + 5
    while len(api.calls) < polls:
        assert time.monotonic() < deadline, f"only {len(api.calls)} polls arrived"
        await asyncio.sleep(0.005)
    api.statuses.update(statuses)


# -- outcomes ------------------------------------------------------------------------------------------
async def test_success_after_pending_polls(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1, "b": 0})
    flipper = asyncio.create_task(flip_after(fake_api, 2, {"b": 1}))
    started = time.time() - 3
    payload = await first_event(make_trigger(started_at=started, query_params={"fromDate": "2026-02-01"}))
    await flipper
    assert payload["status"] == "success"
    assert payload["message"] == "2/2 synced; waiting: -; failed: -"
    summary = payload["summary"]
    assert summary["counts"] == {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["a", "b"]
    assert summary["waited_seconds"] >= 3
    assert len(fake_api.calls) in (2, 3)
    assert all(c.params == {"fromDate": "2026-02-01"} for c in fake_api.calls)
    assert all(c.api_key == TRIGGER_KEY for c in fake_api.calls)
    json.dumps(payload)  # the event payload is JSON-safe


async def test_polls_are_spaced_by_the_interval(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0, "b": 0})
    flipper = asyncio.create_task(flip_after(fake_api, 4, {"a": 1, "b": 1}))
    await first_event(make_trigger(poll_interval=0.1))
    await flipper
    gaps = [b.at - a.at for a, b in zip(fake_api.calls, fake_api.calls[1:], strict=False)]
    assert len(gaps) >= 3
    assert min(gaps) >= 0.09


async def test_missing_identifiers_count_as_pending(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1})
    flipper = asyncio.create_task(flip_after(fake_api, 2, {"b": 1}))
    payload = await first_event(make_trigger())
    await flipper
    assert payload["status"] == "success"
    assert len(fake_api.calls) >= 2


async def test_failed_payment_emits_failed_naming_it(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1, "b": 2})
    fake_api.descriptions["b"] = "Target account closed"
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert "b (status 2: Target account closed)" in payload["message"]
    assert payload["summary"]["failures"] == [
        {"sourceIdentifier": "b", "status": 2, "description": "Target account closed"}
    ]
    assert len(fake_api.calls) == 1


async def test_without_fail_on_sync_failure_keeps_waiting_until_timeout(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1, "b": 2})
    started = time.time()
    payload = await first_event(make_trigger(fail_on_sync_failure=False, started_at=started, end_time=started + 0.4))
    assert payload["status"] == "timeout"
    assert "failed: b (no description)" in payload["message"]
    assert payload["summary"]["counts"]["failed"] == 1
    assert len(fake_api.calls) >= 3


async def test_no_identifiers_waits_until_nothing_is_pending(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"x": 1, "y": 0, "z": 0})
    flipper = asyncio.create_task(flip_after(fake_api, 2, {"y": 1, "z": 1}))
    payload = await first_event(make_trigger(source_identifiers=None))
    await flipper
    assert payload["status"] == "success"
    assert payload["summary"]["counts"]["total"] == 3


async def test_timeout_event_at_end_time(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0})
    started = time.time()
    payload = await first_event(make_trigger(started_at=started, end_time=started + 0.3))
    elapsed = time.time() - started
    assert payload["status"] == "timeout"
    assert payload["message"].startswith("Timed out after 0.3s waiting for Confirma payment sync: 0/2 synced")
    assert payload["summary"]["counts"]["missing"] == 1
    assert 0.3 <= elapsed < 2


async def test_timeout_while_a_slow_poll_is_in_flight(fake_api: FakeStatusAPI):
    fake_api.delay = 5
    started = time.time()
    payload = await first_event(make_trigger(started_at=started, end_time=started + 0.3))
    assert payload["status"] == "timeout"
    assert "no successful poll yet" in payload["message"]
    assert payload["summary"] is None
    assert time.time() - started < 2


async def test_end_time_in_the_past_times_out_without_a_request(fake_api: FakeStatusAPI):
    payload = await first_event(make_trigger(started_at=time.time() - 10, end_time=time.time() - 1))
    assert payload["status"] == "timeout"
    assert fake_api.calls == []


# -- errors --------------------------------------------------------------------------------------------
async def test_auth_error_is_an_error_event_at_once(fake_api: FakeStatusAPI):
    fake_api.failures.append(401)
    payload = await first_event(make_trigger(http_retry_policy=RetryPolicy()))  # even with retries on
    assert payload["status"] == "error"
    assert "HTTP 401" in payload["message"]
    assert TRIGGER_KEY not in json.dumps(payload)
    assert len(fake_api.calls) == 1


async def test_malformed_response_is_an_error_event_at_once(fake_api: FakeStatusAPI):
    fake_api.failures.append((200, "text/html", "<html>maintenance</html>"))
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert "expected JSON" in payload["message"]
    assert len(fake_api.calls) == 1


async def test_unexpected_body_shape_is_an_error_event(fake_api: FakeStatusAPI):
    fake_api.failures.append((200, "application/json", json.dumps({"payments": {"not": "a list"}})))
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert "'payments' is not a list" in payload["message"]


async def test_a_record_the_event_shows_that_cannot_be_read_is_an_error_event(fake_api: FakeStatusAPI):
    good = {"sourceIdentifier": "a", "status": 1, "paymentDate": "2026-02-02"}
    bad = {"sourceIdentifier": "b", "status": 1, "paymentDate": "yesterday-ish"}
    fake_api.failures.append((200, "application/json", json.dumps({"payments": [good, bad]})))
    payload = await first_event(make_trigger(source_identifiers=["a", "b"]))
    assert payload["status"] == "error"
    assert "payments record 'b': paymentDate is not a date" in payload["message"]


async def test_a_malformed_record_nobody_waits_for_does_not_matter(fake_api: FakeStatusAPI):
    good = {"sourceIdentifier": "a", "status": 1, "paymentDate": "2026-02-02"}
    other = {"sourceIdentifier": "zz", "status": 0, "paymentDate": "yesterday-ish"}
    fake_api.failures.append((200, "application/json", json.dumps({"payments": [good, other]})))
    payload = await first_event(make_trigger(source_identifiers=["a"]))
    assert payload["status"] == "success"
    assert payload["summary"]["records"][0]["paymentDate"] == "2026-02-02"


async def test_transient_errors_end_after_the_bounded_run(fake_api: FakeStatusAPI):
    fake_api.failures.extend([503] * 10)
    payload = await first_event(make_trigger(max_consecutive_errors=3, poll_interval=0.05))
    assert payload["status"] == "error"
    assert "failed 3 times in a row" in payload["message"]
    assert "HTTP 503" in payload["message"]
    assert len(fake_api.calls) == 3
    gaps = [b.at - a.at for a, b in zip(fake_api.calls, fake_api.calls[1:], strict=False)]
    assert min(gaps) >= 0.045  # it sleeps after errors too


async def test_transient_errors_reset_after_a_good_poll(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 0, "b": 0})
    fake_api.failures.extend([503, 429])
    flipper = asyncio.create_task(flip_after(fake_api, 4, {"a": 1, "b": 1}))
    # 2 errors, a good poll, then another error would make 3 in a row only without the reset.
    payload = await first_event(make_trigger(max_consecutive_errors=3))
    await flipper
    assert payload["status"] == "success"


async def test_hook_retries_run_inside_one_poll(fake_api: FakeStatusAPI):
    fake_api.statuses.update({"a": 1, "b": 1})
    fake_api.failures.extend([503, 503])
    retrying = RetryPolicy(max_attempts=3, max_total_seconds=5, backoff_initial=0.01, backoff_max=0.01, jitter=0.01)
    payload = await first_event(make_trigger(http_retry_policy=retrying, max_consecutive_errors=1))
    assert payload["status"] == "success"
    assert len(fake_api.calls) == 3


async def test_unknown_connection_is_an_error_event(fake_api: FakeStatusAPI):
    payload = await first_event(make_trigger(confirma_conn_id="confirma_nope"))
    assert payload["status"] == "error"
    assert "confirma_nope" in payload["message"]
    assert fake_api.calls == []


async def test_never_uses_sync_io(fake_api: FakeStatusAPI, monkeypatch: pytest.MonkeyPatch):
    """No blocking call on the event loop's thread: before Airflow 3.3.2 the connection is read with
    the sync API in a worker thread (compat.has_async_secrets_api), from 3.3.2 with the async one."""
    loop_thread = threading.current_thread()
    sync_lookup = ConfirmaHook.get_connection.__func__  # type: ignore[attr-defined]

    def on_loop_thread_forbidden(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is loop_thread:
                raise AssertionError("sync I/O on the event loop")
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(ConfirmaHook, "get_connection", classmethod(on_loop_thread_forbidden(sync_lookup)))
    monkeypatch.setattr(requests.Session, "request", on_loop_thread_forbidden(requests.Session.request))
    fake_api.statuses.update({"a": 1, "b": 1})
    assert (await first_event(make_trigger()))["status"] == "success"


# -- serialization -------------------------------------------------------------------------------------
def test_serialize_round_trips_through_serde_without_the_key():
    trigger = make_trigger(
        source_identifiers=["pay-1", "pay-2"],
        success_statuses={3, 1},
        pending_statuses=[0, 5],
        query_params={"fromDate": "2026-02-01", "status": ["0", "2"], "skip": None},
        started_at=1_760_000_000.5,
        end_time=1_760_003_600.5,
        coalesce=False,
        max_xcom_records=50,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_confirma.triggers.payment_sync.ConfirmaPaymentSyncTrigger"
    encoded = serialize(kwargs)
    wire = json.dumps(encoded)
    assert TRIGGER_KEY not in wire
    assert "SECRET" not in wire
    decoded = deserialize(json.loads(wire))
    assert decoded == kwargs
    rebuilt = import_string(classpath)(**decoded)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["success_statuses"] == [1, 3]
    assert kwargs["pending_statuses"] == [0, 5]
    assert kwargs["query_params"] == {"fromDate": "2026-02-01", "status": ["0", "2"]}
    assert kwargs["end_time"] == 1_760_003_600.5
    assert kwargs["http_retry_policy"]["max_attempts"] == 1
    # Only JSON primitives: serde leaves them as they are.
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert TRIGGER_KEY not in repr(trigger)


def test_constructor_validates_kwargs():
    with pytest.raises(ValueError, match="overlap"):
        make_trigger(success_statuses=[1], pending_statuses=[1])
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        make_trigger(poll_interval=0)
    with pytest.raises(ValueError, match="source_identifiers is empty"):
        make_trigger(source_identifiers=[])
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        make_trigger(max_consecutive_errors=0)


async def test_progress_is_logged_when_it_changes(fake_api: FakeStatusAPI, capsys: pytest.CaptureFixture[str]):
    fake_api.statuses.update({"a": 1})
    flipper = asyncio.create_task(flip_after(fake_api, 4, {"b": 1}))
    assert (await first_event(make_trigger()))["status"] == "success"
    await flipper
    out = capsys.readouterr().out
    assert out.count("Confirma payment sync: 1/2 synced; waiting: b; failed: -; not yet listed: b") == 1
    assert out.count("Confirma payment sync: 2/2 synced") == 1
    assert len(fake_api.calls) >= 5


class ContextRecorder(logging.Handler):
    """Each record's message with the structlog context variables current when it was logged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        import structlog

        self.seen.append((record.getMessage(), structlog.contextvars.get_contextvars()))


async def test_an_unchanged_progress_is_logged_again_every_few_minutes(
    fake_api: FakeStatusAPI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from airflow_provider_confirma.triggers import base

    monkeypatch.setattr(base, "PROGRESS_LOG_SECONDS", 0.3)  # 300 s in a triggerer
    fake_api.statuses.update({"a": 0})
    started = time.time()
    payload = await first_event(make_trigger(source_identifiers=["a"], end_time=started + 1.0, started_at=started))
    assert payload["status"] == "timeout"
    lines = [line for line in capsys.readouterr().out.splitlines() if "Confirma payment sync:" in line]
    assert "still" not in lines[0] and "0/1 synced; waiting: a" in lines[0]
    again = [line for line in lines if "Confirma payment sync: still 0/1 synced; waiting: a" in line]
    assert 2 <= len(again) <= 4, lines  # at about 0.3, 0.6 and 0.9 s of a 1 s wait, not every poll
    polls = [int(line.split("(after ")[1].split(" polls")[0]) for line in again]
    assert polls == sorted(polls) and polls[0] >= 3 and "s)" in again[0]


def test_wait_durations_read_as_a_person_says_them():
    from airflow_provider_confirma.triggers.base import _duration

    assert [_duration(s) for s in (4.2, 59, 60, 361, 3600, 7500)] == [
        "4 s",
        "59 s",
        "1 min",
        "6 min",
        "1 h 00 min",
        "2 h 05 min",
    ]


async def test_waiters_share_one_logger_and_keep_their_log_context(
    fake_api: FakeStatusAPI, capsys: pytest.CaptureFixture[str]
):
    import structlog

    first, second = make_trigger(source_identifiers=["a"]), make_trigger(source_identifiers=["b"])
    assert first.shared_log is second.shared_log  # not one logger object per waiting task
    fake_api.statuses.update({"a": 1, "b": 1})

    async def run_bound(trigger: ConfirmaPaymentSyncTrigger, trigger_id: int) -> dict[str, Any]:
        # the triggerer binds each trigger's ids around its run; that, not the logger, routes its lines
        structlog.contextvars.bind_contextvars(trigger_id=trigger_id)
        return await first_event(trigger)

    # Before Airflow 3.3 the logger is a stdlib one here: the triggerer's structlog formatter adds the
    # bound context to its records (foreign_pre_chain), so the context current at emit is what counts.
    stdlib_logger = first.shared_log if isinstance(first.shared_log, logging.Logger) else None
    handler = ContextRecorder()
    if stdlib_logger is not None:
        stdlib_logger.addHandler(handler)
    try:
        events = await asyncio.gather(
            asyncio.create_task(run_bound(first, 11)), asyncio.create_task(run_bound(second, 12))
        )
    finally:
        if stdlib_logger is not None:
            stdlib_logger.removeHandler(handler)
    assert [e["status"] for e in events] == ["success", "success"]
    if stdlib_logger is not None:
        lines = [f"{msg} trigger_id={ctx.get('trigger_id')}" for msg, ctx in handler.seen if "1/1 synced" in msg]
    else:
        lines = [line for line in capsys.readouterr().out.splitlines() if "Confirma payment sync: 1/1 synced" in line]
    assert len(lines) == 2
    assert {("trigger_id=11" in line, "trigger_id=12" in line) for line in lines} == {(True, False), (False, True)}
