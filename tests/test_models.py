"""Typed sync-status records, the configurable status vocabulary and ``evaluate_sync``."""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest

from airflow_provider_confirma.exceptions import ConfirmaConfigError
from airflow_provider_confirma.models import (
    DEFAULT_PENDING_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    LedgerSyncRecord,
    PaymentSyncRecord,
    StatusSets,
    SyncState,
    evaluate_index,
    evaluate_sync,
    index_sync_records,
    parse_date,
    parse_sync_records,
)

# The documented example of GET /accounting/payment (confirma-api.md §8.5).
PAYMENTS_BODY = {
    "payments": [
        {
            "sourceIdentifier": "pay-0001",
            "invoiceNumber": "10001",
            "paymentDate": "2026-02-02",
            "syncDate": None,
            "status": 0,
            "description": "Pending",
        },
        {
            "sourceIdentifier": "pay-0002",
            "invoiceNumber": "10002",
            "paymentDate": "2026-02-01",
            "syncDate": "2026-02-02",
            "status": 1,
            "description": "Successfully synced",
        },
    ]
}

# The documented example shape of GET /accounting/ledger (§8.3).
LEDGERS_BODY = {
    "ledgers": [
        {
            "sourceIdentifier": "7d1e2c44-1111-4c1a-9e55-0a7b3c2d1e00",
            "documentDate": "2026-01-31",
            "documentName": "5001",
            "documentStatus": "Approved",
            "syncDate": "2026-02-01T08:15:00Z",
            "status": 1,
            "description": "Successfully synced",
        }
    ]
}


def payment(ident: str, status: object, description: str | None = None) -> PaymentSyncRecord:
    return PaymentSyncRecord.from_api({"sourceIdentifier": ident, "status": status, "description": description})


# -- records ---------------------------------------------------------------------------------------
def test_payment_records_from_documented_example():
    records = parse_sync_records(PAYMENTS_BODY, "payments", PaymentSyncRecord)
    assert [r.source_identifier for r in records] == ["pay-0001", "pay-0002"]
    pending, synced = records
    assert pending.status == 0 and pending.sync_date is None
    assert pending.payment_date == pendulum.date(2026, 2, 2)
    assert isinstance(pending.payment_date, pendulum.Date)
    assert synced.sync_date == pendulum.date(2026, 2, 2)
    assert synced.invoice_number == "10002"
    assert synced.description == "Successfully synced"


def test_ledger_records_parse_date_time_as_date():
    (record,) = parse_sync_records(LEDGERS_BODY, "ledgers", LedgerSyncRecord)
    assert record.document_date == pendulum.date(2026, 1, 31)
    assert record.sync_date == pendulum.date(2026, 2, 1)  # date-time reduced to its date
    assert record.document_name == "5001"
    assert record.document_status == "Approved"


def test_to_xcom_is_json_safe_and_round_trips_dates():
    payments = parse_sync_records(PAYMENTS_BODY, "payments", PaymentSyncRecord)
    ledgers = parse_sync_records(LEDGERS_BODY, "ledgers", LedgerSyncRecord)
    as_json = json.loads(json.dumps([r.to_xcom() for r in payments + ledgers]))
    assert as_json[1] == {
        "sourceIdentifier": "pay-0002",
        "invoiceNumber": "10002",
        "paymentDate": "2026-02-01",
        "syncDate": "2026-02-02",
        "status": 1,
        "description": "Successfully synced",
    }
    assert as_json[2]["documentDate"] == "2026-01-31"
    assert as_json[2]["syncDate"] == "2026-02-01"


def test_unknown_fields_are_kept_aside_not_an_error():
    record = PaymentSyncRecord.from_api({"sourceIdentifier": "p1", "status": 1, "targetSystem": "Netvisor"})
    assert record.extra == {"targetSystem": "Netvisor"}
    assert "targetSystem" not in record.to_xcom()


def test_numeric_identifier_becomes_text():
    assert PaymentSyncRecord.from_api({"sourceIdentifier": 12345, "status": 1}).source_identifier == "12345"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "expected a JSON object"),
        ({"payments": {"sourceIdentifier": "x"}}, "'payments' is not a list"),
        ({"payments": [{"status": 1}]}, "payments[0]: record has no sourceIdentifier"),
        ({"payments": [{"sourceIdentifier": "a", "status": 1}, "oops"]}, "payments[1]: record is not an object"),
        ({"payments": [{"sourceIdentifier": "", "status": 1}]}, "no sourceIdentifier"),
        ({"payments": [{"sourceIdentifier": True, "status": 1}]}, "sourceIdentifier is not a string: boolean"),
        ({"payments": [None]}, "payments[0]: record is null"),
        ({"payments": [{"sourceIdentifier": "a", "paymentDate": 20260202}]}, "paymentDate is not a date string"),
        ({"payments": [{"sourceIdentifier": "a", "syncDate": "not a date"}]}, "payments[0]"),
        ({"payments": [{"sourceIdentifier": "a", "syncDate": "P1D"}]}, "syncDate is not a date"),
    ],
)
def test_bad_shapes_raise_value_error_naming_the_problem(body, problem):
    with pytest.raises(ValueError) as info:
        parse_sync_records(body, "payments", PaymentSyncRecord)
    assert problem in str(info.value)


@pytest.mark.parametrize("body", [None, {"payments": None}, {"payments": []}])
def test_empty_bodies_mean_no_records(body):
    assert parse_sync_records(body, "payments", PaymentSyncRecord) == []


@pytest.mark.parametrize("body", [{}, {"ledgers": []}, {"items": [], "page": 1}])
def test_an_object_without_the_list_is_not_an_empty_result(body):
    # Reading it as "no records" would let a submit resend what Confirma already has.
    with pytest.raises(ValueError, match="expected a JSON object with a 'payments' list, got keys"):
        parse_sync_records(body, "payments", PaymentSyncRecord)


def test_parse_date_passes_none_and_empty_through():
    assert parse_date(None, "d") is None
    assert parse_date("", "d") is None
    assert parse_date("2026-03-01T10:00:00.000Z", "d") == pendulum.date(2026, 3, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-02-01", (2026, 2, 1)), ("2024-02-29", (2024, 2, 29)), ("20260201", (2026, 2, 1))],
)
def test_parse_date_plain_dates_are_pendulum_dates(text, expected):
    parsed = parse_date(text, "d")
    assert type(parsed) is pendulum.Date
    assert parsed == pendulum.date(*expected)


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "not a date"])
def test_parse_date_rejects_impossible_dates(text):
    with pytest.raises(ValueError):
        parse_date(text, "paymentDate")


# -- status vocabulary -----------------------------------------------------------------------------
def test_default_sets_follow_the_docs():
    sets = StatusSets()
    assert sets.classify(1) is SyncState.SYNCED
    assert sets.classify(0) is SyncState.PENDING


@pytest.mark.parametrize("status", [2, 7, -1, None, "1", "0", 1.0, True, False, [1]])
def test_unknown_status_values_are_not_successful(status):
    assert StatusSets().classify(status) is SyncState.FAILED
    record = PaymentSyncRecord.from_api({"sourceIdentifier": "x", "status": status})
    assert record.state(StatusSets()) is SyncState.FAILED


def test_configurable_sets_accept_lists_and_digit_strings():
    sets = StatusSets.build(success=["1", 3], pending="0")
    assert sets.success == frozenset({1, 3})
    assert sets.pending == frozenset({0})
    assert sets.classify(3) is SyncState.SYNCED
    assert sets.classify(2) is SyncState.FAILED
    assert sets.to_primitives() == {"success": [1, 3], "pending": [0]}
    assert StatusSets.build(pending=[0, 5]).classify(5) is SyncState.PENDING
    assert StatusSets.build() == StatusSets()


def test_overlapping_sets_are_rejected():
    with pytest.raises(ConfirmaConfigError, match=r"overlap on \[1\]"):
        StatusSets.build(success=[1], pending=[0, 1])
    with pytest.raises(ConfirmaConfigError, match="overlap"):
        StatusSets.build(pending=[1])  # against the default success set


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"success": []}, "success_statuses must not be empty"),
        ({"success": ["one"]}, "success_statuses must hold integer status codes"),
        ({"pending": [1.5]}, "pending_statuses must hold integer status codes"),
        ({"pending": [True]}, "pending_statuses must hold integer status codes"),
        ({"success": "1,2"}, "success_statuses must hold integer status codes"),
    ],
)
def test_bad_status_sets_name_the_argument(kwargs, message):
    with pytest.raises(ConfirmaConfigError, match=message):
        StatusSets.build(**kwargs)


# -- evaluate_sync ---------------------------------------------------------------------------------
def test_evaluate_tracked_identifiers_with_missing_ones():
    records = [payment("a", 1), payment("b", 0), payment("c", 2, "Rejected by Netvisor"), payment("z", 1)]
    progress = evaluate_sync(records, StatusSets(), ["a", "b", "c", "d"])
    assert progress.synced == ["a"]
    assert progress.pending == ["b"]
    assert progress.failed == ["c"]
    assert progress.missing == ["d"]  # "z" is not tracked, so it is ignored
    assert progress.counts() == {"total": 4, "synced": 1, "pending": 1, "failed": 1, "missing": 1}
    assert not progress.done
    assert progress.describe() == "1/4 synced; waiting: b, d; failed: c (Rejected by Netvisor)"
    assert progress.failure_details() == [{"sourceIdentifier": "c", "status": 2, "description": "Rejected by Netvisor"}]
    assert list(progress.records) == ["a", "b", "c"]


def test_evaluate_duplicates_by_state_not_order_and_duplicate_identifiers_count_once():
    records = [payment("a", 0), payment("a", 1), payment("b", 1), payment("b", 7), payment("c", 1), payment("c", 1)]
    for ordered in (records, records[::-1]):
        progress = evaluate_sync(ordered, StatusSets(), ["a", "a", "b", "c"])
        assert progress.pending == ["a"]  # any pending record: pending
        assert progress.failed == ["b"]  # else any failed one: failed
        assert progress.synced == ["c"]
        assert progress.total == 3
        assert progress.records["b"].status == 7  # the record shown is the one that decided


def test_evaluate_without_identifiers_judges_every_record():
    progress = evaluate_sync([payment("a", 1), payment("b", 0)], StatusSets(), None)
    assert (progress.synced, progress.pending, progress.missing) == (["a"], ["b"], [])
    assert not progress.done
    assert evaluate_sync([payment("a", 1), payment("b", 1)], StatusSets(), None).done
    empty = evaluate_sync([], StatusSets(), None)
    assert empty.total == 0 and empty.done


def test_evaluate_all_synced_is_done_and_a_failure_is_not():
    assert evaluate_sync([payment("a", 1)], StatusSets(), ["a"]).done
    assert not evaluate_sync([payment("a", None)], StatusSets(), ["a"]).done
    assert not evaluate_sync([], StatusSets(), ["a"]).done


def test_evaluate_uses_the_given_status_sets():
    sets = StatusSets.build(success=[1, 3], pending=[0, 4])
    progress = evaluate_sync([payment("a", 3), payment("b", 4), payment("c", 1)], sets, ["a", "b", "c"])
    assert progress.synced == ["a", "c"]
    assert progress.pending == ["b"]


def test_describe_and_failure_details_are_bounded():
    records = [payment(f"p{i}", 2) for i in range(30)]
    progress = evaluate_sync(records, StatusSets(), [f"p{i}" for i in range(30)] + ["m1"])
    text = progress.describe(limit=3)
    assert text.startswith("0/31 synced; waiting: m1; failed: p0 (no description), p1")
    assert text.endswith("(+27 more)")
    assert len(progress.failure_details()) == 10
    assert len(progress.failure_details(limit=2)) == 2


def test_evaluate_index_judges_like_evaluate_sync():
    # what a trigger judges for each waiter: the shared index of one response
    sets = StatusSets.build(success=[1, 7], pending=[0])
    records = [payment(str(i), status) for i, status in enumerate([1, 0, 2, None, True, 7, "1", 0.0])]
    index = {r.source_identifier: r for r in records}
    for identifiers in (None, ["0", "1", "2", "3", "4", "5", "6", "7", "missing", "0"], ["5"], ["nope"]):
        expected = evaluate_sync(records, sets, identifiers)
        got = evaluate_index(index, sets, identifiers)
        assert (got.synced, got.pending, got.failed, got.missing) == (
            expected.synced,
            expected.pending,
            expected.failed,
            expected.missing,
        )
        assert list(got.records) == list(expected.records)
    progress = evaluate_index(index, sets, None)
    assert progress.synced == ["0", "5"] and progress.pending == ["1"]
    assert progress.failed == ["2", "3", "4", "6", "7"]  # True, "1" and 0.0 are not status codes


def test_records_keep_no_instance_dict_and_stay_frozen():
    # status bodies hold up to 100k records: one GC-tracked object each, not two
    record = PaymentSyncRecord.from_api(PAYMENTS_BODY["payments"][0])
    assert not hasattr(record, "__dict__")
    with pytest.raises(AttributeError):
        record.status = 1  # type: ignore[misc]
    assert record.extra == {}
    assert PaymentSyncRecord.from_api({**PAYMENTS_BODY["payments"][0], "x": 1}).extra == {"x": 1}


def test_plain_dates_are_shared_and_still_validated():
    first, second = parse_date("2026-02-01", "paymentDate"), parse_date("2026-02-01", "syncDate")
    assert first is second and first == pendulum.Date(2026, 2, 1)
    with pytest.raises(ValueError, match="syncDate"):
        parse_date("2026-02-30", "syncDate")


# -- StatusIndex: records by identifier, typed when read ---------------------------------------------
def test_status_index_judges_raw_statuses_like_typed_records():
    index = index_sync_records(PAYMENTS_BODY, "payments", PaymentSyncRecord)
    typed = {r.source_identifier: r for r in parse_sync_records(PAYMENTS_BODY, "payments", PaymentSyncRecord)}
    for identifiers in (None, ["pay-0001", "pay-0002", "nope"]):
        raw_progress = evaluate_index(index, StatusSets(), identifiers)
        typed_progress = evaluate_index(typed, StatusSets(), identifiers)
        assert raw_progress.counts() == typed_progress.counts()
        assert raw_progress.found == typed_progress.found
        assert raw_progress.records == typed_progress.records  # typed on read, equal field by field
        assert raw_progress.describe() == typed_progress.describe()


def test_status_index_reads_odd_statuses_as_failed_and_numeric_identifiers_as_text():
    body = {"payments": [{"sourceIdentifier": 7, "status": True}, {"sourceIdentifier": "s", "status": "1"}]}
    index = index_sync_records(body, "payments", PaymentSyncRecord)
    assert list(index) == ["7", "s"] and "7" in index and len(index) == 2
    progress = evaluate_index(index, StatusSets(), ["7", "s"])
    assert progress.failed == ["7", "s"]
    assert index["7"].source_identifier == "7" and index["7"].status is None


def test_status_index_keeps_every_record_of_a_duplicated_identifier():
    records = [{"sourceIdentifier": "a", "status": 0}, {"sourceIdentifier": "a", "status": 1}]
    for ordered in (records, records[::-1]):
        index = index_sync_records({"payments": ordered}, "payments", PaymentSyncRecord)
        assert len(index) == 1 and len(index.duplicates["a"]) == 2
        for identifiers in (["a"], None):
            progress = evaluate_index(index, StatusSets(), identifiers)
            assert progress.pending == ["a"] and progress.records["a"].status == 0
        assert evaluate_index(index, StatusSets.build(success=[0, 1], pending=[2]), ["a"]).synced == ["a"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"payments": "x"}, "'payments' is not a list"),
        ({"ledgers": []}, "expected a JSON object with a 'payments' list"),
    ],
)
def test_status_index_refuses_a_body_it_cannot_index(body: Any, problem: str):
    with pytest.raises(ValueError) as err:
        index_sync_records(body, "payments", PaymentSyncRecord)
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"status": 1}, "payments[1]: record has no sourceIdentifier"),
        ("x", "payments[1]: record is not an object: string"),
        (None, "payments[1]: record is null"),
        ({"sourceIdentifier": ""}, "payments[1]: record has no sourceIdentifier"),
        ({"sourceIdentifier": None}, "payments[1]: record has no sourceIdentifier"),
        ({"sourceIdentifier": True}, "payments[1]: sourceIdentifier is not a string: boolean"),
        ({"sourceIdentifier": 1.5}, "payments[1]: sourceIdentifier is not a string: number"),
        ({"sourceIdentifier": {"id": "a"}}, "payments[1]: sourceIdentifier is not a string: object"),
    ],
)
def test_status_index_sets_unreadable_records_aside_and_only_wait_for_all_refuses_them(record: Any, problem: str):
    index = index_sync_records(
        {"payments": [{"sourceIdentifier": "a", "status": 1}, record]}, "payments", PaymentSyncRecord
    )
    assert list(index) == ["a"] and index.unreadable == 1 and index.unreadable_sample == (problem,)
    progress = evaluate_index(index, StatusSets(), ["a"])
    assert progress.done and progress.unreadable == 1 and progress.unreadable_sample == (problem,)
    with pytest.raises(ValueError) as err:
        evaluate_index(index, StatusSets(), None)
    assert str(err.value) == problem


def test_status_index_types_only_what_is_read_and_names_a_bad_record_then():
    body = {
        "payments": [
            {"sourceIdentifier": "good", "status": 1, "paymentDate": "2026-02-01"},
            {"sourceIdentifier": "bad", "status": 0, "paymentDate": "not a date"},
        ]
    }
    index = index_sync_records(body, "payments", PaymentSyncRecord)  # no date is parsed yet
    progress = evaluate_index(index, StatusSets(), ["good"])
    assert progress.done and progress.record_list(5)[0].payment_date == pendulum.Date(2026, 2, 1)
    with pytest.raises(ValueError, match="payments record 'bad': paymentDate is not a date"):
        index["bad"]


def test_record_list_types_at_most_the_limit():
    body = {"payments": [{"sourceIdentifier": f"p{i}", "status": 1} for i in range(5)]}
    body["payments"].append({"sourceIdentifier": "p5", "status": 1, "syncDate": "garbage"})
    progress = evaluate_index(index_sync_records(body, "payments", PaymentSyncRecord), StatusSets())
    assert [r.source_identifier for r in progress.record_list(3)] == ["p0", "p1", "p2"]
    with pytest.raises(ValueError, match="p5"):
        progress.record_list()


def test_status_sets_equal_to_the_defaults_share_the_default_objects():
    sets = StatusSets.build([1], {"0"})
    assert sets.success is DEFAULT_SUCCESS_STATUSES and sets.pending is DEFAULT_PENDING_STATUSES
    assert StatusSets.build([1, 3], [0]).success == frozenset({1, 3})
