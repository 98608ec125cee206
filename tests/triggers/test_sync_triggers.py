"""ConfirmaPaymentSyncTrigger and ConfirmaLedgerSyncTrigger against a scripted aiohttp transport:
events, errors, timeouts, serialization, logging. Every test runs on both triggers (the ``variant``
fixture, see ``tests/sync_variants.py``) unless it names one, and with coalescing on (the default: a
shared poller) and off (the trigger polls in its own task), which are two code paths to the same events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from aioresponses import aioresponses
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.connection import ConfirmaConnectionSettings
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.ledger_sync import ConfirmaLedgerSyncTrigger
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import deserialize, serialize
from tests.sync_variants import VARIANT_PARAMS, SyncVariant, other_variant
from tests.triggers.fake_status_api import (
    HOST,
    TRIGGER_KEY,
    FakeStatusAPI,
    first_event,
    flip_after,
    serving,
    status_url,
    sync_trigger,
)

pytestmark = pytest.mark.usefixtures("trigger_conns")

MakeTrigger = Callable[..., Any]


@pytest.fixture(params=VARIANT_PARAMS)
def variant(request: pytest.FixtureRequest) -> SyncVariant:
    return request.param


@pytest.fixture(params=[True, False], ids=["coalesced", "own-poll"])
def coalesce(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def status_api(variant: SyncVariant) -> Iterator[FakeStatusAPI]:
    """The variant's status endpoint, scripted (the other variant's endpoint does not answer)."""
    with serving(variant) as api:
        yield api


@pytest.fixture
def make_trigger(variant: SyncVariant, coalesce: bool) -> MakeTrigger:
    """A trigger of the variant in the poll mode of the test, waiting for ``a`` and ``b``."""

    def make(**overrides: Any) -> Any:
        return sync_trigger(variant, **{"source_identifiers": ["a", "b"], "coalesce": coalesce, **overrides})

    return make


# -- outcomes ------------------------------------------------------------------------------------------
async def test_success_after_pending_polls_of_its_endpoint(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    status_api.statuses.update({"a": 1, "b": 0})
    flipper = asyncio.create_task(flip_after(status_api, 2, {"b": 1}))
    started = time.time() - 3
    payload = await first_event(make_trigger(started_at=started, query_params={"fromDate": "2026-02-01"}))
    await flipper
    assert payload["status"] == "success"
    assert payload["message"] == "2/2 synced; waiting: -; failed: -"
    summary = payload["summary"]
    assert summary["counts"] == {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    assert "records" not in summary  # counts only: the sensor reads the records when it resumes
    assert summary["waited_seconds"] >= 3
    assert len(status_api.calls) in (2, 3)
    assert all(c.params == {"fromDate": "2026-02-01"} for c in status_api.calls)
    assert all(c.api_key == TRIGGER_KEY for c in status_api.calls)
    json.dumps(payload)  # the event payload is JSON-safe


async def test_polls_are_spaced_by_the_interval(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.statuses.update({"a": 0, "b": 0})
    flipper = asyncio.create_task(flip_after(status_api, 4, {"a": 1, "b": 1}))
    await first_event(make_trigger(poll_interval=0.1))
    await flipper
    gaps = [b.at - a.at for a, b in zip(status_api.calls, status_api.calls[1:], strict=False)]
    assert len(gaps) >= 3
    assert min(gaps) >= 0.09


async def test_missing_identifiers_count_as_pending(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.statuses.update({"a": 1})
    flipper = asyncio.create_task(flip_after(status_api, 2, {"b": 1}))
    payload = await first_event(make_trigger())
    await flipper
    assert payload["status"] == "success"
    assert len(status_api.calls) >= 2


async def test_a_failed_record_emits_failed_naming_it(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    status_api.statuses.update({"a": 1, "b": 2})
    status_api.descriptions["b"] = "Target account closed"
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert payload["message"] == (
        f"Confirma {variant.noun} sync failed for 1 of 2 record(s): b (status 2: Target account closed)"
    )
    assert payload["summary"]["counts"]["failed"] == 1
    assert "records" not in payload["summary"]  # counts only: the sensor fails with the message
    assert len(status_api.calls) == 1


async def test_without_fail_on_sync_failure_keeps_waiting_until_timeout(
    status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    status_api.statuses.update({"a": 1, "b": 2})
    started = time.time()
    payload = await first_event(make_trigger(fail_on_sync_failure=False, started_at=started, end_time=started + 0.4))
    assert payload["status"] == "timeout"
    assert "failed: b (no description)" in payload["message"]
    assert payload["summary"]["counts"]["failed"] == 1
    assert len(status_api.calls) >= 3


async def test_no_identifiers_waits_until_nothing_is_pending(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.statuses.update({"x": 1, "y": 0, "z": 0})
    flipper = asyncio.create_task(flip_after(status_api, 2, {"y": 1, "z": 1}))
    payload = await first_event(make_trigger(source_identifiers=None))
    await flipper
    assert payload["status"] == "success"
    assert payload["summary"]["counts"]["total"] == 3


async def test_timeout_event_at_end_time_names_the_sync(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    status_api.statuses.update({"a": 0})
    started = time.time()
    payload = await first_event(make_trigger(started_at=started, end_time=started + 0.3))
    elapsed = time.time() - started
    assert payload["status"] == "timeout"
    assert payload["message"].startswith(f"Timed out after 0.3s waiting for Confirma {variant.noun} sync: 0/2 synced")
    assert payload["summary"]["counts"]["missing"] == 1
    assert payload["summary"]["counts"]["pending"] == 1
    assert 0.3 <= elapsed < 2


async def test_timeout_while_a_slow_poll_is_in_flight(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.delay = 5
    started = time.time()
    payload = await first_event(make_trigger(started_at=started, end_time=started + 0.3))
    assert payload["status"] == "timeout"
    assert "no successful poll yet" in payload["message"]
    assert payload["summary"] is None
    assert time.time() - started < 2


async def test_end_time_in_the_past_times_out_without_a_request(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    payload = await first_event(make_trigger(started_at=time.time() - 10, end_time=time.time() - 1))
    assert payload["status"] == "timeout"
    assert status_api.calls == []


# -- errors --------------------------------------------------------------------------------------------
async def test_auth_error_is_an_error_event_at_once(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.failures.append(401)
    payload = await first_event(make_trigger(http_retry_policy=RetryPolicy()))  # even with retries on
    assert payload["status"] == "error"
    assert "HTTP 401" in payload["message"]
    assert TRIGGER_KEY not in json.dumps(payload)
    assert len(status_api.calls) == 1


async def test_malformed_response_is_an_error_event_at_once(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.failures.append((200, "text/html", "<html>maintenance</html>"))
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert "expected JSON" in payload["message"]
    assert len(status_api.calls) == 1


async def test_unexpected_body_shape_is_an_error_event(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    status_api.failures.append((200, "application/json", json.dumps({variant.list_key: {"not": "a list"}})))
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert f"'{variant.list_key}' is not a list" in payload["message"]


async def test_a_record_the_event_shows_that_cannot_be_read_is_an_error_event(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    good = {"sourceIdentifier": "a", "status": 1, variant.date_field: "2026-02-02"}
    bad = {"sourceIdentifier": "b", "status": 1, variant.date_field: "yesterday-ish"}
    status_api.failures.append((200, "application/json", json.dumps({variant.list_key: [good, bad]})))
    payload = await first_event(make_trigger(source_identifiers=["a", "b"]))
    assert payload["status"] == "error"
    assert f"{variant.list_key} record 'b': {variant.date_field} is not a date" in payload["message"]


async def test_a_malformed_record_nobody_waits_for_does_not_matter(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger
):
    good = {"sourceIdentifier": "a", "status": 1, variant.date_field: "2026-02-02"}
    other = {"sourceIdentifier": "zz", "status": 0, variant.date_field: "yesterday-ish"}
    status_api.failures.append((200, "application/json", json.dumps({variant.list_key: [good, other]})))
    payload = await first_event(make_trigger(source_identifiers=["a"]))
    assert payload["status"] == "success"
    assert payload["summary"]["counts"] == {"total": 1, "synced": 1, "pending": 0, "failed": 0, "missing": 0}


async def test_transient_errors_end_after_the_bounded_run(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.failures.extend([503] * 10)
    payload = await first_event(make_trigger(max_consecutive_errors=3, poll_interval=0.05))
    assert payload["status"] == "error"
    assert "failed 3 times in a row" in payload["message"]
    assert "HTTP 503" in payload["message"]
    assert len(status_api.calls) == 3
    gaps = [b.at - a.at for a, b in zip(status_api.calls, status_api.calls[1:], strict=False)]
    assert min(gaps) >= 0.045  # it sleeps after errors too


async def test_transient_errors_reset_after_a_good_poll(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.statuses.update({"a": 0, "b": 0})
    status_api.failures.extend([503, 429])
    flipper = asyncio.create_task(flip_after(status_api, 4, {"a": 1, "b": 1}))
    # 2 errors, a good poll, then another error would make 3 in a row only without the reset.
    payload = await first_event(make_trigger(max_consecutive_errors=3))
    await flipper
    assert payload["status"] == "success"


async def test_hook_retries_run_inside_one_poll(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    status_api.statuses.update({"a": 1, "b": 1})
    status_api.failures.extend([503, 503])
    retrying = RetryPolicy(max_attempts=3, max_total_seconds=5, backoff_initial=0.01, backoff_max=0.01, jitter=0.01)
    payload = await first_event(make_trigger(http_retry_policy=retrying, max_consecutive_errors=1))
    assert payload["status"] == "success"
    assert len(status_api.calls) == 3


async def test_unknown_connection_is_an_error_event(status_api: FakeStatusAPI, make_trigger: MakeTrigger):
    payload = await first_event(make_trigger(confirma_conn_id="confirma_nope"))
    assert payload["status"] == "error"
    assert "confirma_nope" in payload["message"]
    assert status_api.calls == []


async def test_never_uses_sync_io(
    status_api: FakeStatusAPI, make_trigger: MakeTrigger, monkeypatch: pytest.MonkeyPatch
):
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
    status_api.statuses.update({"a": 1, "b": 1})
    assert (await first_event(make_trigger()))["status"] == "success"


# -- serialization -------------------------------------------------------------------------------------
def test_serialize_round_trips_through_serde_to_its_classpath_without_the_key(
    variant: SyncVariant, make_trigger: MakeTrigger
):
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
    assert classpath == variant.trigger_classpath
    encoded = serialize(kwargs)
    wire = json.dumps(encoded)
    assert TRIGGER_KEY not in wire
    assert "SECRET" not in wire
    decoded: dict[str, Any] = deserialize(json.loads(wire))  # type: ignore[assignment]
    assert decoded == kwargs
    rebuilt = import_string(classpath)(**decoded)
    assert type(rebuilt) is variant.trigger
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["success_statuses"] == [1, 3]
    assert kwargs["pending_statuses"] == [0, 5]
    assert kwargs["query_params"] == {"fromDate": "2026-02-01", "status": ["0", "2"]}
    assert kwargs["end_time"] == 1_760_003_600.5
    assert kwargs["http_retry_policy"]["max_attempts"] == 1
    # Only JSON primitives: serde leaves them as they are.
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert TRIGGER_KEY not in repr(trigger)


def test_constructor_validates_kwargs(make_trigger: MakeTrigger):
    with pytest.raises(ValueError, match="overlap"):
        make_trigger(success_statuses=[1], pending_statuses=[1])
    with pytest.raises(ValueError, match="poll_interval must be a positive number"):
        make_trigger(poll_interval=0)
    with pytest.raises(ValueError, match="source_identifiers is empty"):
        make_trigger(source_identifiers=[])
    with pytest.raises(ValueError, match="max_consecutive_errors"):
        make_trigger(max_consecutive_errors=0)


async def test_progress_is_logged_when_it_changes(
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger, capsys: pytest.CaptureFixture[str]
):
    status_api.statuses.update({"a": 1})
    flipper = asyncio.create_task(flip_after(status_api, 4, {"b": 1}))
    assert (await first_event(make_trigger()))["status"] == "success"
    await flipper
    out = capsys.readouterr().out
    assert out.count(f"Confirma {variant.noun} sync: 1/2 synced; waiting: b; failed: -; not yet listed: b") == 1
    assert out.count(f"Confirma {variant.noun} sync: 2/2 synced") == 1
    assert len(status_api.calls) >= 5


class ContextRecorder(logging.Handler):
    """Each record's message with the structlog context variables current when it was logged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        import structlog

        self.seen.append((record.getMessage(), structlog.contextvars.get_contextvars()))


async def test_an_unchanged_progress_is_logged_again_every_few_minutes(
    variant: SyncVariant,
    status_api: FakeStatusAPI,
    make_trigger: MakeTrigger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    from airflow_provider_confirma.triggers import base

    monkeypatch.setattr(base, "PROGRESS_LOG_SECONDS", 0.3)  # 300 s in a triggerer
    status_api.statuses.update({"a": 0})
    started = time.time()
    payload = await first_event(make_trigger(source_identifiers=["a"], end_time=started + 1.0, started_at=started))
    assert payload["status"] == "timeout"
    lines = [line for line in capsys.readouterr().out.splitlines() if f"Confirma {variant.noun} sync:" in line]
    assert "still" not in lines[0] and "0/1 synced; waiting: a" in lines[0]
    again = [line for line in lines if f"Confirma {variant.noun} sync: still 0/1 synced; waiting: a" in line]
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
    variant: SyncVariant, status_api: FakeStatusAPI, make_trigger: MakeTrigger, capsys: pytest.CaptureFixture[str]
):
    import structlog

    first, second = make_trigger(source_identifiers=["a"]), make_trigger(source_identifiers=["b"])
    assert first.shared_log is second.shared_log  # not one logger object per waiting task
    status_api.statuses.update({"a": 1, "b": 1})

    async def run_bound(trigger: ConfirmaSyncStatusTrigger, trigger_id: int) -> dict[str, Any]:
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
        wanted = f"Confirma {variant.noun} sync: 1/1 synced"
        lines = [line for line in capsys.readouterr().out.splitlines() if wanted in line]
    assert len(lines) == 2
    assert {("trigger_id=11" in line, "trigger_id=12" in line) for line in lines} == {(True, False), (False, True)}


# -- what keeps the two waits apart --------------------------------------------------------------------
async def test_the_other_kinds_answer_is_never_read(variant: SyncVariant, make_trigger: MakeTrigger):
    """Only the variant's path is polled: the other endpoint, which would say "synced", is not asked."""
    other = other_variant(variant)
    with aioresponses() as mocked:
        mocked.get(status_url(HOST, other), payload=other.body({"a": 1}), repeat=True)
        mocked.get(status_url(HOST, variant), status=401, body="bad key", repeat=True)
        payload = await first_event(make_trigger(source_identifiers=["a"]))
        paths = {key[1].path for key in mocked.requests}
    assert payload["status"] == "error"
    assert payload["message"].startswith(f"Confirma {variant.noun} sync status poll failed: ConfirmaAuthError")
    assert paths == {variant.endpoint.full_path}


def test_ledger_and_payment_waits_never_share_a_poll():
    same: dict[str, Any] = {
        "confirma_conn_id": "confirma_test",
        "query_params": {"fromDate": "2026-02-01"},
        "end_time": time.time(),
    }
    ledger = ConfirmaLedgerSyncTrigger(**same)
    payment = ConfirmaPaymentSyncTrigger(**same)
    conn = ConfirmaConnectionSettings(conn_id="confirma_test", base_url=HOST + API_PREFIX, api_key=TRIGGER_KEY)
    assert ledger.poll_key(conn) != payment.poll_key(conn)
    assert ledger.poll_key(conn)[0] == Endpoint.LEDGER_SYNC_STATUS.value
    assert payment.poll_key(conn)[0] == Endpoint.PAYMENT_SYNC_STATUS.value
    assert ledger.poll_key(conn) == ConfirmaLedgerSyncTrigger(**same).poll_key(conn)


def test_the_base_trigger_needs_an_endpoint_subclass():
    with pytest.raises(TypeError, match="sets no sync status endpoint"):
        ConfirmaSyncStatusTrigger(end_time=time.time() + 10)
