"""Payments and settlements operators: the window they send (data interval by default, none without
one), configurable parameter names, exact money in XCom, caps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pendulum
import pytest
import responses

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, ConfirmaResponseError
from airflow_provider_confirma.operators.payments import (
    ConfirmaGetPaymentsOperator,
    ConfirmaGetSettlementsOperator,
    totals_by_currency,
)

from .conftest import TINY_POLICY, assert_no_float, calls_to, query_of, run, url

DAY = pendulum.datetime(2026, 2, 1, tz="UTC")
DAILY = (DAY, DAY.add(days=1))

PAYMENTS_BODY = """[
  {"caseId": 555, "invoiceNumber": "10001", "invoicePaymentReference": "RF18100013", "accountName": "Buyer Oy",
   "bookingDate": "2026-02-01T00:00:00Z", "paymentDate": "2026-02-01T00:00:00Z", "amount": 100.10, "currency": "EUR"},
  {"caseId": 556, "invoiceNumber": "10002", "paymentDate": "2026-02-01T00:00:00Z", "amount": 0.20, "currency": "EUR"},
  {"caseId": 557, "invoiceNumber": "10003", "paymentDate": "2026-02-01T00:00:00Z", "amount": 3, "currency": "EUR"}
]"""

SETTLEMENTS_BODY = """{"createdAt": "2026-03-02T10:00:00.000Z", "settlements": [
  {"settlementId": 202603010001, "settlementDate": "2026-03-01", "agency": "CashIn", "remittanceReference": null,
   "settlementAmount": 105.10, "currency": "EUR",
   "allocations": [{"allocationId": 1, "allocatedTotalAmount": 105.10, "allocationDate": "2026-03-01",
     "currency": "EUR", "originalInvoiceNumber": "10001",
     "events": [{"type": "CAPITAL", "amount": 100.10}, {"type": "FEES", "amount": 5.00}]}]},
  {"settlementId": 202603010002, "settlementDate": "2026-03-01", "agency": "CashIn",
   "settlementAmount": 0.20, "currency": "EUR", "allocations": []},
  {"settlementId": 202603010003, "settlementDate": "2026-03-01", "agency": "CashIn",
   "settlementAmount": 10, "currency": "SEK", "allocations": []}
]}"""


def mock(api: responses.RequestsMock, endpoint: Endpoint, body: str) -> None:
    api.add(responses.GET, url(endpoint), body=body, content_type="application/json")


def payments_op(**kwargs: Any) -> ConfirmaGetPaymentsOperator:
    return ConfirmaGetPaymentsOperator(task_id="payments", http_retry_policy=TINY_POLICY, **kwargs)


def settlements_op(**kwargs: Any) -> ConfirmaGetSettlementsOperator:
    return ConfirmaGetSettlementsOperator(task_id="settlements", http_retry_policy=TINY_POLICY, **kwargs)


# -- /payments ---------------------------------------------------------------------------------------
def test_payments_default_to_the_data_interval_and_keep_money_exact(api, context) -> None:
    mock(api, Endpoint.PAYMENTS, PAYMENTS_BODY)
    result = run(payments_op(), context(DAILY))

    assert query_of(calls_to(api, Endpoint.PAYMENTS)[0]) == {"fromDate": "2026-02-01", "toDate": "2026-02-01"}
    assert result["summary"] == {
        "window": {"fromDate": "2026-02-01", "toDate": "2026-02-01"},
        "total": 3,
        "returned": 3,
        "omitted": 0,
        "records_omitted": 0,
    }
    amounts = [r["amount"] for r in result["records"]]
    assert amounts == ["100.10", "0.20", "3"]  # decimal text, exactly as the API wrote it
    assert result["records"][0]["caseId"] == 555
    assert_no_float(result)


def test_payments_without_a_data_interval_send_no_window_and_log_it(api, context, capfd) -> None:
    mock(api, Endpoint.PAYMENTS, "[]")
    result = run(payments_op(), context(None))
    assert query_of(calls_to(api, Endpoint.PAYMENTS)[0]) == {}
    assert result["summary"]["window"] is None
    assert "no data interval" in "".join(capfd.readouterr())


def test_payments_templated_window_and_extra_params(api, context) -> None:
    mock(api, Endpoint.PAYMENTS, "[]")
    op = payments_op(
        from_date="{{ (data_interval_start - macros_week).strftime('%Y-%m-%d') }}",
        to_date="{{ ds }}",
        query_params={"invoiceNumber": "{{ params_invoice }}"},
    )
    ctx = context(DAILY, params_invoice="10001", macros_week=pendulum.duration(days=6))
    run(op, ctx)
    assert query_of(calls_to(api, Endpoint.PAYMENTS)[0]) == {
        "fromDate": "2026-01-26",
        "toDate": "2026-02-01",
        "invoiceNumber": "10001",
    }


def test_query_params_win_over_the_window(api, context) -> None:
    mock(api, Endpoint.PAYMENTS, "[]")
    run(payments_op(query_params={"toDate": "2026-12-31"}), context(DAILY))
    assert query_of(calls_to(api, Endpoint.PAYMENTS)[0]) == {"fromDate": "2026-02-01", "toDate": "2026-12-31"}


def test_payments_are_capped_with_the_count_left_out(api, context) -> None:
    mock(api, Endpoint.PAYMENTS, PAYMENTS_BODY)
    result = run(payments_op(max_xcom_records=1), context(DAILY))
    assert [r["invoiceNumber"] for r in result["records"]] == ["10001"]
    assert (result["summary"]["total"], result["summary"]["returned"], result["summary"]["omitted"]) == (3, 1, 2)


def test_payments_no_content_is_no_records(api, context) -> None:
    api.add(responses.GET, url(Endpoint.PAYMENTS), status=204)
    assert run(payments_op(), context(DAILY))["records"] == []


def test_payments_response_that_is_not_a_list_is_an_error(api, context) -> None:
    mock(api, Endpoint.PAYMENTS, '{"payments": []}')
    with pytest.raises(ConfirmaResponseError, match="should be a JSON array, got object"):
        run(payments_op(), context(DAILY))


def test_window_param_names_are_checked() -> None:
    with pytest.raises(ConfirmaConfigError, match="from_param"):
        payments_op(from_param="")
    with pytest.raises(ConfirmaConfigError, match="must differ"):
        payments_op(from_param="d", to_param="d")


# -- /settlements ------------------------------------------------------------------------------------
def test_settlements_window_summary_and_exact_totals(api, context) -> None:
    mock(api, Endpoint.SETTLEMENTS, SETTLEMENTS_BODY)
    result = run(settlements_op(), context(DAILY))

    assert query_of(calls_to(api, Endpoint.SETTLEMENTS)[0]) == {"fromDate": "2026-02-01", "toDate": "2026-02-01"}
    summary = result["summary"]
    assert summary["createdAt"] == "2026-03-02T10:00:00.000Z"
    assert summary["totals"] == {"EUR": "105.30", "SEK": "10"}  # exact: no 105.30000000000001
    first = result["records"][0]
    assert first["settlementAmount"] == "105.10"
    assert first["settlementId"] == 202603010001
    assert first["allocations"][0]["events"][1] == {"type": "FEES", "amount": "5.00"}
    assert_no_float(result)


def test_settlements_param_names_are_configurable(api, context) -> None:
    mock(api, Endpoint.SETTLEMENTS, '{"settlements": []}')
    run(settlements_op(from_param="startDate", to_param="endDate"), context(DAILY))
    assert query_of(calls_to(api, Endpoint.SETTLEMENTS)[0]) == {"startDate": "2026-02-01", "endDate": "2026-02-01"}


def test_settlements_without_a_window_use_the_api_default(api, context, capfd) -> None:
    mock(api, Endpoint.SETTLEMENTS, SETTLEMENTS_BODY)
    result = run(settlements_op(), context(None))
    assert query_of(calls_to(api, Endpoint.SETTLEMENTS)[0]) == {}
    assert result["summary"]["window"] is None
    assert "API default (30 days)" in "".join(capfd.readouterr())


def test_settlements_totals_cover_records_left_out_of_xcom(api, context) -> None:
    mock(api, Endpoint.SETTLEMENTS, SETTLEMENTS_BODY)
    result = run(settlements_op(max_xcom_records=1), context(DAILY))
    assert len(result["records"]) == 1
    assert result["summary"]["omitted"] == 2
    assert result["summary"]["totals"] == {"EUR": "105.30", "SEK": "10"}


def test_settlements_wrong_shape_is_an_error(api, context) -> None:
    mock(api, Endpoint.SETTLEMENTS, '{"settlements": {"a": 1}}')
    with pytest.raises(ConfirmaResponseError, match="'settlements' list"):
        run(settlements_op(), context(DAILY))


def test_totals_by_currency_skips_non_numbers() -> None:
    records = [
        {"settlementAmount": Decimal("1.10"), "currency": "EUR"},
        {"settlementAmount": "2.00", "currency": "EUR"},  # text is not summed
        {"settlementAmount": True, "currency": "EUR"},
        {"settlementAmount": 2, "currency": None},
        "not a record",
    ]
    assert totals_by_currency(records, "settlementAmount") == {"?": "2", "EUR": "1.10"}
