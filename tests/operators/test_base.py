"""The shared operator plumbing: XCom conversion and caps, payload helpers, date windows, POST failures."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_confirma.arguments import is_template
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import (
    ConfirmaAuthError,
    ConfirmaClientError,
    ConfirmaConfigError,
    ConfirmaRateLimitError,
    ConfirmaServerError,
    ConfirmaTransportError,
)
from airflow_provider_confirma.models import PaymentSyncRecord
from airflow_provider_confirma.operators.base import (
    ConfirmaBaseOperator,
    ConfirmaPayloadError,
    ConfirmaSubmissionUncertainError,
    has_templates,
    load_payload,
    object_result,
    raise_for_issues,
    records_result,
    resolve_window,
    submit_once,
    to_xcom_safe,
    wire_numbers,
)
from airflow_provider_confirma.payloads import ValidationIssue

from .conftest import assert_no_float, make_dag

LOG = logging.getLogger("test.window")


# -- to_xcom_safe ----------------------------------------------------------------------------------
def test_to_xcom_safe_turns_money_and_dates_into_text_and_keeps_no_float() -> None:
    value = {
        "amount": Decimal("100.10"),
        "settlementAmount": 105,  # an int under a money key is text as well
        "vatPercentage": Decimal("25.5"),
        "ratio": 0.5,
        "count": 3,
        "paid": True,
        "when": datetime(2026, 2, 2, 8, 0, tzinfo=timezone.utc),
        "day": date(2026, 2, 1),
        "tags": ("a", "b"),
        "nested": [{"capitalAmount": Decimal("1E+2")}],
    }
    safe = to_xcom_safe(value)
    assert safe == {
        "amount": "100.10",
        "settlementAmount": "105",
        "vatPercentage": "25.5",
        "ratio": "0.5",
        "count": 3,
        "paid": True,
        "when": "2026-02-02T08:00:00+00:00",
        "day": "2026-02-01",
        "tags": ["a", "b"],
        "nested": [{"capitalAmount": "100"}],
    }
    assert_no_float(safe)


def test_to_xcom_safe_caps_every_list_and_reports_where() -> None:
    truncated: dict[str, int] = {}
    safe = to_xcom_safe({"rows": list(range(5)), "inner": {"events": list(range(3))}}, max_items=2, truncated=truncated)
    assert safe == {"rows": [0, 1], "inner": {"events": [0, 1]}}
    assert truncated == {"rows": 3, "inner.events": 1}


def test_to_xcom_safe_uses_record_to_xcom_and_refuses_unknown_objects() -> None:
    record = PaymentSyncRecord.from_api(
        {"sourceIdentifier": "pay-1", "status": 1, "description": "ok", "syncDate": "2026-02-03"}
    )
    assert to_xcom_safe([record])[0]["syncDate"] == "2026-02-03"
    with pytest.raises(TypeError, match=r"payload\.x: object cannot be stored"):
        to_xcom_safe({"payload": {"x": object()}})


def test_records_result_counts_left_out_records_and_nested_lists() -> None:
    records = [{"id": i, "allocations": [1, 2, 3]} for i in range(5)]
    result = records_result(records, 2, {"window": {"fromDate": "2026-02-01"}})
    assert [r["id"] for r in result["records"]] == [0, 1]
    assert result["summary"]["total"] == 5
    assert result["summary"]["returned"] == 2
    assert result["summary"]["omitted"] == 3
    assert result["summary"]["window"] == {"fromDate": "2026-02-01"}
    assert result["summary"]["truncated"] == {"records[0].allocations": 1, "records[1].allocations": 1}


def test_object_result_caps_lists_and_lists_at_most_twenty_truncated_paths() -> None:
    body = {f"list{i}": [1, 2] for i in range(25)}
    result = object_result(body, 1)
    assert result["data"]["list0"] == [1]
    assert len(result["summary"]["truncated"]) == 20
    assert result["summary"]["truncated_more_lists"] == 5


# -- payloads ----------------------------------------------------------------------------------------
def test_has_templates_is_the_one_template_detector_under_its_old_name() -> None:
    assert has_templates is is_template  # its cases: tests/test_arguments.py


def test_load_payload_parses_json_text_with_exact_decimals() -> None:
    assert load_payload('[{"amount": 100.10}]', "payments") == [{"amount": Decimal("100.10")}]
    assert load_payload([1], "payments") == [1]
    with pytest.raises(ConfirmaPayloadError, match="payments: not valid JSON") as info:
        load_payload("[{'amount': 1}]", "payments")  # a Python repr, as a plain template renders a list
    assert "tojson" in str(info.value)
    assert isinstance(info.value, AirflowFailException)


def test_wire_numbers_converts_amount_text_only_under_money_and_named_keys() -> None:
    payload = {
        "payments": [
            {
                "amount": "100.10",
                "invoiceNumber": "10001",
                "outstandingCapitalAmount": " -5 ",
                "vatPercentage": "24",
                "weird": "1.5",
            },
            {"amount": "ten euros"},
            {"amount": 1.5},
        ]
    }
    out = wire_numbers(payload, {"vatPercentage"})
    first = out["payments"][0]
    assert first["amount"] == Decimal("100.10") and str(first["amount"]) == "100.10"
    assert first["invoiceNumber"] == "10001"  # an identifier stays text
    assert first["outstandingCapitalAmount"] == Decimal("-5")
    assert first["vatPercentage"] == Decimal("24")
    assert first["weird"] == "1.5"
    assert out["payments"][1]["amount"] == "ten euros"  # left for validation to refuse
    assert out["payments"][2]["amount"] == 1.5  # floats too (validation refuses them)
    assert payload["payments"][0]["amount"] == "100.10"  # the input is not changed


def test_raise_for_issues_names_every_field_and_fails_without_retry() -> None:
    raise_for_issues([], "payments payload")
    with pytest.raises(ConfirmaPayloadError) as info:
        raise_for_issues(
            [ValidationIssue("payments[0].amount", "bad"), ValidationIssue("payments[1].currency", "worse")],
            "payments payload",
        )
    assert "payments[0].amount: bad" in str(info.value)
    assert "payments[1].currency: worse" in str(info.value)
    assert "nothing was sent" in str(info.value)
    assert isinstance(info.value, AirflowFailException)
    assert isinstance(info.value, ValueError)


# -- windows -----------------------------------------------------------------------------------------
def window(ctx: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "from_date": None,
        "to_date": None,
        "from_param": "fromDate",
        "to_param": "toDate",
        "use_data_interval": True,
        "to_date_inclusive": True,
    }
    args.update(kwargs)
    return resolve_window(ctx, log=LOG, **args)


def test_window_of_a_daily_interval_is_that_day(context) -> None:
    start = pendulum.datetime(2026, 2, 1, tz="UTC")
    ctx = context((start, start.add(days=1)))
    assert window(ctx) == {"fromDate": "2026-02-01", "toDate": "2026-02-01"}
    assert window(ctx, to_date_inclusive=False) == {"fromDate": "2026-02-01", "toDate": "2026-02-02"}


def test_window_of_a_weekly_interval_ends_on_its_last_day(context) -> None:
    start = pendulum.datetime(2026, 2, 2, tz="UTC")
    assert window(context((start, start.add(weeks=1)))) == {"fromDate": "2026-02-02", "toDate": "2026-02-08"}


def test_window_dates_are_in_the_dag_time_zone(context) -> None:
    # Helsinki midnight is 22:00 UTC the day before: the dates must be Helsinki's.
    start = pendulum.datetime(2026, 1, 31, 22, tz="UTC")
    ctx = context((start, start.add(days=1)), dag=make_dag("Europe/Helsinki"))
    assert window(ctx) == {"fromDate": "2026-02-01", "toDate": "2026-02-01"}


def test_window_of_an_empty_interval_is_one_day(context) -> None:
    at = pendulum.datetime(2026, 2, 5, 12, tz="UTC")
    assert window(context((at, at))) == {"fromDate": "2026-02-05", "toDate": "2026-02-05"}


def test_explicit_dates_win_and_param_names_are_configurable(context) -> None:
    start = pendulum.datetime(2026, 2, 1, tz="UTC")
    ctx = context((start, start.add(days=1)))
    got = window(ctx, from_date=date(2026, 1, 1), to_date="2026-01-31", from_param="startDate", to_param="endDate")
    assert got == {"startDate": "2026-01-01", "endDate": "2026-01-31"}
    assert window(ctx, from_date=datetime(2026, 1, 5, 10)) == {"fromDate": "2026-01-05"}


def test_no_data_interval_sends_no_window_and_says_so(context, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=LOG.name):
        assert window(context(None)) == {}
    assert "no data interval" in caplog.text
    assert "default window" in caplog.text


def test_use_data_interval_false_sends_no_window(context) -> None:
    start = pendulum.datetime(2026, 2, 1, tz="UTC")
    assert window(context((start, start.add(days=1))), use_data_interval=False) == {}


def test_window_rejects_a_non_date(context) -> None:
    with pytest.raises(ConfirmaConfigError, match="from_date must be a date"):
        window(context(None), from_date=20260101)


# -- submit_once ------------------------------------------------------------------------------------
def failing(exc: Exception):
    def post() -> Any:
        raise exc

    return post


PATH = Endpoint.SUBMIT_PAYMENTS.path


@pytest.mark.parametrize(
    "exc",
    [
        ConfirmaTransportError("POST", PATH, "timeout", "read timeout"),
        ConfirmaTransportError("POST", PATH, "reset"),
        ConfirmaServerError("POST", PATH, 502, "bad gateway"),
    ],
)
def test_ambiguous_failures_say_the_post_may_have_arrived(exc: Exception) -> None:
    forgotten: list[bool] = []
    with pytest.raises(ConfirmaSubmissionUncertainError) as info:
        submit_once(
            failing(exc),
            endpoint=Endpoint.CREATE_INVOICE,
            what="invoice 1",
            recovery_hint="Check the distribution first.",
            not_processed=lambda: forgotten.append(True),
        )
    message = str(info.value)
    assert "may or may not have reached Confirma" in message
    assert "Failing without retries" in message
    assert "Check the distribution first." in message
    assert isinstance(info.value, AirflowFailException)  # a task retry could send it twice
    assert forgotten == []  # the outcome is unknown: the attempt record stays


def test_rejections_fail_without_retry_and_provably_unsent_requests_reraise() -> None:
    forgotten: list[str] = []
    with pytest.raises(AirflowFailException, match="rejected"):
        submit_once(
            failing(ConfirmaClientError("POST", PATH, 422, "payments[0].amount")),
            endpoint=Endpoint.SUBMIT_PAYMENTS,
            what="x",
            not_processed=lambda: forgotten.append("422"),
        )
    for exc in (
        ConfirmaRateLimitError("POST", PATH, 429),
        ConfirmaTransportError("POST", PATH, "connect"),
        ConfirmaAuthError("POST", PATH, 401),
    ):
        with pytest.raises(type(exc)) as info:
            submit_once(
                failing(exc), endpoint=Endpoint.SUBMIT_PAYMENTS, what="x", not_processed=lambda: forgotten.append("x")
            )
        assert not isinstance(info.value, AirflowFailException)
    assert forgotten == ["422", "x", "x", "x"]  # each outcome is definite: nothing was stored
    assert submit_once(lambda: {"ok": 1}, endpoint=Endpoint.SUBMIT_PAYMENTS, what="x") == {"ok": 1}


def test_base_operator_checks_max_xcom_records_and_builds_its_hook() -> None:
    op = ConfirmaBaseOperator(task_id="t", confirma_conn_id="other", request_timeout=3.0, max_xcom_records=5)
    assert op.max_xcom_records == 5
    assert op.hook.confirma_conn_id == "other"
    assert op.hook.timeout == 3.0
    for bad in (-1, "10", True):
        with pytest.raises(ConfirmaConfigError, match="max_xcom_records must be an integer >= 0"):
            ConfirmaBaseOperator(task_id="t", max_xcom_records=bad)


def test_max_records_is_the_deprecated_spelling_of_max_xcom_records() -> None:
    with pytest.warns(DeprecationWarning, match=r"max_records=\.\.\.\) is deprecated; use max_xcom_records"):
        op = ConfirmaBaseOperator(task_id="t", max_records=5)
    assert op.max_xcom_records == op.max_records == 5
    with pytest.warns(DeprecationWarning), pytest.raises(ConfirmaConfigError, match="max_records must be an integer"):
        ConfirmaBaseOperator(task_id="t", max_records=-1)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfirmaConfigError, match="give max_xcom_records only"):
        ConfirmaBaseOperator(task_id="t", max_records=5, max_xcom_records=6)
