"""The shared wait logic: the verdict of one poll, the summary and the event vocabulary."""

from __future__ import annotations

import json

import pytest

from airflow_provider_confirma.models import PaymentSyncRecord, StatusSets
from airflow_provider_confirma.sync_wait import (
    EVENT_STATUSES,
    OUTCOME_FAILED,
    OUTCOME_SUCCESS,
    OUTCOME_WAITING,
    SyncWait,
    error_event,
    index_records,
    read_event,
    timeout_event,
    verdict_event,
    with_records,
)


def rec(ident: str, status: int | None, description: str | None = None) -> PaymentSyncRecord:
    return PaymentSyncRecord.from_api(
        {
            "sourceIdentifier": ident,
            "status": status,
            "description": description,
            "invoiceNumber": "10001",
            "paymentDate": "2026-02-02",
            "syncDate": "2026-02-03" if status == 1 else None,
        }
    )


# -- verdict -----------------------------------------------------------------------------------------
def test_judge_with_identifiers_waits_for_missing_and_pending():
    wait = SyncWait(("a", "b", "c"))
    verdict = wait.judge(index_records([rec("a", 1), rec("b", 0), rec("zzz", 0)]))
    assert verdict.outcome == OUTCOME_WAITING
    assert verdict.progress.synced == ["a"]
    assert verdict.progress.pending == ["b"]
    assert verdict.progress.missing == ["c"]
    assert verdict.describe() == "1/3 synced; waiting: b, c; failed: -; not yet listed: c"


def test_judge_success_only_when_every_identifier_is_synced():
    wait = SyncWait(("a", "b"))
    assert wait.judge(index_records([rec("a", 1), rec("b", 1), rec("other", 0)])).outcome == OUTCOME_SUCCESS


def test_duplicates_are_judged_by_state_not_by_order():
    for records in ([rec("a", 0), rec("a", 1)], [rec("a", 1), rec("a", 0)]):
        assert SyncWait(("a",)).judge(index_records(records)).outcome == OUTCOME_WAITING
    for records in ([rec("a", 2, "Rejected"), rec("a", 1)], [rec("a", 1), rec("a", 2, "Rejected")]):
        verdict = SyncWait(("a",)).judge(index_records(records))
        assert verdict.outcome == OUTCOME_FAILED
        assert verdict.failure_message().endswith("a (status 2: Rejected)")


def test_failed_record_fails_at_once_or_keeps_waiting():
    index = index_records([rec("a", 1), rec("b", 2, "Account missing"), rec("c", 0)])
    failed = SyncWait(("a", "b", "c")).judge(index)
    assert failed.outcome == OUTCOME_FAILED
    assert failed.failure_message() == (
        "Confirma payment sync failed for 1 of 3 record(s): b (status 2: Account missing)"
    )
    tolerant = SyncWait(("a", "b"), fail_on_sync_failure=False).judge(index)
    assert tolerant.outcome == OUTCOME_WAITING  # b may still sync


def test_unknown_and_non_integer_statuses_are_failures():
    index = index_records([rec("a", 7), rec("b", None)])
    verdict = SyncWait(("a", "b")).judge(index)
    assert verdict.outcome == OUTCOME_FAILED
    assert verdict.progress.failed == ["a", "b"]


def test_custom_status_sets():
    wait = SyncWait(("a", "b"), StatusSets.build(success=[1, 3], pending=[0, 5]))
    assert wait.judge(index_records([rec("a", 3), rec("b", 5)])).outcome == OUTCOME_WAITING
    assert wait.judge(index_records([rec("a", 3), rec("b", 1)])).outcome == OUTCOME_SUCCESS


def test_without_identifiers_waits_until_nothing_is_pending():
    wait = SyncWait(None)
    assert wait.judge(index_records([rec("a", 1), rec("b", 0)])).outcome == OUTCOME_WAITING
    assert wait.judge(index_records([rec("a", 1), rec("b", 1)])).outcome == OUTCOME_SUCCESS
    assert wait.judge({}).outcome == OUTCOME_SUCCESS  # 204 / no records: nothing pending
    # A failed record neither fails nor holds a "nothing pending" wait, with or without fail_on_sync_failure.
    for fail in (True, False):
        verdict = SyncWait(None, fail_on_sync_failure=fail).judge(index_records([rec("a", 1), rec("b", 2, "Old")]))
        assert verdict.outcome == OUTCOME_SUCCESS
        assert verdict.summary(0)["failures"] == [{"sourceIdentifier": "b", "status": 2, "description": "Old"}]


def test_failure_message_is_bounded():
    index = index_records([rec(f"p{i}", 2, "bad") for i in range(25)])
    message = SyncWait(tuple(f"p{i}" for i in range(25))).judge(index).failure_message()
    assert "for 25 of 25" in message
    assert "p9 (status 2: bad)" in message
    assert "p10 " not in message
    assert message.endswith("(+15 more)")


# -- summary -----------------------------------------------------------------------------------------
def test_summary_is_json_safe_and_capped():
    ids = tuple(f"p{i}" for i in range(8))
    index = index_records([rec(f"p{i}", 1) for i in range(6)])
    verdict = SyncWait(ids, max_xcom_records=4).judge(index)
    summary = verdict.summary(12.34567)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["outcome"] == OUTCOME_WAITING
    assert summary["counts"] == {"total": 8, "synced": 6, "pending": 0, "failed": 0, "missing": 2}
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["p0", "p1", "p2", "p3"]
    assert summary["records_omitted"] == 2
    assert summary["missing"] == ["p6", "p7"]
    assert summary["missing_omitted"] == 0
    assert summary["waited_seconds"] == 12.346
    assert summary["records"][0] == {
        "sourceIdentifier": "p0",
        "invoiceNumber": "10001",
        "paymentDate": "2026-02-02",
        "syncDate": "2026-02-03",
        "status": 1,
        "description": None,
    }


def test_summary_lists_failures():
    verdict = SyncWait(("a", "b")).judge(index_records([rec("a", 1), rec("b", 4, "Rejected")]))
    assert verdict.summary(0)["failures"] == [{"sourceIdentifier": "b", "status": 4, "description": "Rejected"}]


# -- events ------------------------------------------------------------------------------------------
def test_events_round_trip_through_read_event():
    done = SyncWait(("a",)).judge(index_records([rec("a", 1)]))
    failed = SyncWait(("a",)).judge(index_records([rec("a", 2, "x")]))
    waiting = SyncWait(("a",)).judge({})
    events = [
        verdict_event(done, 1.0),
        verdict_event(failed, 1.0),
        timeout_event("payment", 5.0, waiting, 5.0),
        timeout_event("payment", 5.0, None, 5.0),
        error_event("boom"),
    ]
    assert [read_event(e).status for e in events] == ["success", "failed", "timeout", "timeout", "error"]
    assert read_event(events[0]).summary["outcome"] == "success"  # type: ignore[index]
    assert "Timed out after 5.0s" in events[2]["message"]
    assert "not yet listed: a" in events[2]["message"]
    assert "no successful poll yet" in events[3]["message"]
    with pytest.raises(ValueError, match="not an event"):
        verdict_event(waiting, 0)


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (None, "without a trigger event"),
        ("success", "not a dict"),
        ({"status": "done", "message": "x"}, "unknown trigger event status 'done'"),
        ({"message": "x"}, "unknown trigger event status None"),
        ({"status": "failed"}, "has no message"),
        ({"status": "success", "message": "x"}, "has no summary"),
        ({"status": "timeout", "message": "x", "summary": [1]}, "not a dict"),
    ],
)
def test_read_event_rejects_anything_outside_the_vocabulary(event, fragment):
    with pytest.raises(ValueError) as err:
        read_event(event)
    assert fragment in str(err.value)


def test_vocabulary_is_closed():
    assert frozenset({"success", "failed", "timeout", "error"}) == EVENT_STATUSES


# -- events stay small ------------------------------------------------------------------------------
EVENT_BYTES = 1024


@pytest.mark.parametrize("outcome", ["success", "failed", "timeout"])
def test_an_event_stays_about_1_kb_whatever_the_number_of_records(outcome: str):
    """The triggerer logs and stores every fired event in full: 100,000 records with long
    identifiers and descriptions still make an event of at most 1 KB (counts, no records)."""
    long = "x" * 200
    ids = [f"{long}-{i:06d}" for i in range(100_000)]
    status = {"success": 1, "failed": 2, "timeout": 0}[outcome]
    verdict = SyncWait(tuple(ids)).judge(index_records([rec(i, status, "d" * 5000) for i in ids]))
    event = timeout_event("payment", 600.0, verdict, 600.0) if outcome == "timeout" else verdict_event(verdict, 3.0)
    assert len(json.dumps(event)) <= EVENT_BYTES
    assert event["summary"]["counts"]["total"] == 100_000
    assert "records" not in event["summary"]
    read_event(event)  # the sensor accepts it


def test_an_error_event_stays_small():
    assert len(json.dumps(error_event("boom " * 10_000))) <= EVENT_BYTES


def test_with_records_keeps_the_triggers_verdict_and_adds_the_records_read_on_resume():
    wait = SyncWait(("a", "b"))
    ended = wait.judge(index_records([rec("a", 1), rec("b", 1)]))
    event = verdict_event(ended, 7.0)
    fresh = wait.judge(index_records([rec("a", 1), rec("b", 1), rec("c", 0)]))
    summary = with_records(event["summary"], fresh)
    assert summary["outcome"] == "success" and summary["waited_seconds"] == 7.0
    assert summary["counts"] == ended.progress.counts()
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["a", "b"]
