"""Invoice operators: invoice and action POSTs (validation, exact amounts, no automatic resend after an
ambiguous failure), case details and distribution info (parameters, caps, summary)."""

from __future__ import annotations

import copy
from typing import Any

import pendulum
import pytest
import requests
import responses
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, ConfirmaRateLimitError
from airflow_provider_confirma.operators.base import ConfirmaPayloadError
from airflow_provider_confirma.operators.invoices import (
    ConfirmaCreateInvoiceActionOperator,
    ConfirmaCreateInvoiceOperator,
    ConfirmaGetCaseDetailsOperator,
    ConfirmaGetDistributionInfoOperator,
)

from .conftest import TINY_POLICY, assert_no_float, calls_to, query_of, run, sent_json, url

INVOICE: dict[str, Any] = {
    "processing": {"paymentControlEnabled": True, "manualApprovalEnabled": False, "accountingInvoiceEnabled": False},
    "distribution": {"method": "EMAIL", "enabled": True},
    "invoice": {
        "header": {
            "number": 10001,
            "type": "INVOICE",
            "date": "2026-01-05",
            "dueDate": "2026-01-19",
            "currencyCode": "EUR",
            "languageCode": "FI",
        },
        "references": {"payment": "100013", "orderNumber": "PO-7"},
        "parties": {
            "buyerParty": {
                "entityType": "BUSINESS",
                "name": "Example Buyer Oy",
                "address": {"street": "Tie 2", "postalCode": "33100", "countryCode": "FI"},
                "contact": {"email": "ap@buyer.example"},
            }
        },
        "amounts": {"totalAmount": "124.00"},  # not documented: passed through, money as a number
    },
}


def invoice_op(invoice: Any = None, **kwargs: Any) -> ConfirmaCreateInvoiceOperator:
    return ConfirmaCreateInvoiceOperator(
        task_id="invoice", invoice=copy.deepcopy(INVOICE) if invoice is None else invoice, **kwargs
    )


def action(code: str = "COMMENT", number: int = 10001, **data: Any) -> dict[str, Any]:
    return {"code": code, "comment": "from a test", "data": {"invoiceNumber": number, "caseId": 555, **data}}


def action_op(actions: Any, **kwargs: Any) -> ConfirmaCreateInvoiceActionOperator:
    return ConfirmaCreateInvoiceActionOperator(task_id="action", actions=actions, **kwargs)


# -- create invoice ----------------------------------------------------------------------------------
def test_create_invoice_posts_the_body_and_returns_its_number(api, context) -> None:
    api.add(
        responses.POST,
        url(Endpoint.CREATE_INVOICE),
        body='{"invoiceId": "abc", "amount": 124.00}',
        content_type="application/json",
    )
    result = run(invoice_op(), context())

    (post,) = calls_to(api, Endpoint.CREATE_INVOICE)
    assert sent_json(post)["invoice"]["header"]["number"] == 10001
    assert '"totalAmount":124.00' in post.body.decode()
    assert result == {"identifiers": ["10001"], "response": {"invoiceId": "abc", "amount": "124.00"}}
    assert_no_float(result)


def test_invalid_invoice_fails_at_construction_naming_fields(api) -> None:
    bad = copy.deepcopy(INVOICE)
    del bad["invoice"]["header"]["number"]
    bad["invoice"]["header"]["dueDate"] = "19.01.2026"
    with pytest.raises(ConfirmaPayloadError) as info:
        invoice_op(bad)
    assert "invoice.header.number: is required" in str(info.value)
    assert "invoice.header.dueDate" in str(info.value)
    assert len(api.calls) == 0


def test_templated_invoice_is_rendered_then_validated(api, context) -> None:
    api.add(responses.POST, url(Endpoint.CREATE_INVOICE), json={})
    body = copy.deepcopy(INVOICE)
    body["invoice"]["header"]["date"] = "{{ ds }}"
    result = run(invoice_op(body), context(ds="2026-01-05"))
    assert result["identifiers"] == ["10001"]
    assert sent_json(calls_to(api, Endpoint.CREATE_INVOICE)[0])["invoice"]["header"]["date"] == "2026-01-05"

    body["invoice"]["header"]["date"] = "{{ ds_nodash }}"
    with pytest.raises(ConfirmaPayloadError, match=r"invoice\.header\.date"):
        run(invoice_op(body), context(ds_nodash="20260105"))
    assert len(calls_to(api, Endpoint.CREATE_INVOICE)) == 1


@pytest.mark.parametrize(
    "failure",
    [
        {"json": {"error": "boom"}, "status": 500},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
    ],
)
def test_ambiguous_invoice_post_fails_without_automatic_retry(api, context, failure) -> None:
    api.add(responses.POST, url(Endpoint.CREATE_INVOICE), **failure)
    with pytest.raises(AirflowFailException) as info:
        run(invoice_op(http_retry_policy=TINY_POLICY), context())
    message = str(info.value)
    assert "invoice 10001 may or may not have reached Confirma" in message
    assert "Failing without retries" in message
    assert "ConfirmaGetDistributionInfoOperator" in message
    assert len(calls_to(api, Endpoint.CREATE_INVOICE)) == 1


def test_rate_limited_invoice_post_may_be_retried_by_the_task(api, context) -> None:
    api.add(responses.POST, url(Endpoint.CREATE_INVOICE), json={}, status=429)
    with pytest.raises(ConfirmaRateLimitError):
        run(invoice_op(), context())


# -- invoice actions ---------------------------------------------------------------------------------
def test_actions_post_exact_amounts_and_return_invoice_numbers(api, context) -> None:
    api.add(responses.POST, url(Endpoint.CREATE_INVOICE_ACTION), json={"queued": 2})
    direct = action(
        "DIRECTPAYMENT",
        number=10002,
        paymentMethod="Bank transfer",
        amount="50.00",
        currency="EUR",
        paymentDate="2026-02-01",
        outstandingCapitalAmount="0",
    )
    result = run(action_op({"actions": [action(), direct, action("PAUSE")]}), context())

    raw = calls_to(api, Endpoint.CREATE_INVOICE_ACTION)[0].body.decode()
    assert '"amount":50.00' in raw
    assert '"outstandingCapitalAmount":0' in raw
    assert result["identifiers"] == ["10001", "10002"]
    assert result["actions"] == 3
    assert result["codes"] == ["COMMENT", "DIRECTPAYMENT", "PAUSE"]
    assert result["response"] == {"queued": 2}


def test_invalid_actions_name_the_field_and_send_nothing(api, context) -> None:
    with pytest.raises(ConfirmaPayloadError, match=r"actions\[0\]\.data\.amount: is required"):
        action_op([action("DIRECTPAYMENT", currency="EUR", paymentDate="2026-02-01")])
    with pytest.raises(ConfirmaPayloadError, match=r"actions\[0\]\.data\.dueDate"):
        action_op([action("DUEDATE")])
    with pytest.raises(ConfirmaConfigError, match="actions must be a list"):
        action_op(action())
    assert len(api.calls) == 0


def test_ambiguous_action_post_fails_without_automatic_retry(api, context) -> None:
    api.add(responses.POST, url(Endpoint.CREATE_INVOICE_ACTION), json={}, status=502)
    with pytest.raises(AirflowFailException, match="may or may not have reached Confirma"):
        run(action_op([action()]), context())
    assert len(calls_to(api, Endpoint.CREATE_INVOICE_ACTION)) == 1


# -- case details ------------------------------------------------------------------------------------
CASE = {
    "case": {
        "summary": {"caseId": 555, "status": "OPEN", "stage": "REMINDER", "currency": "EUR"},
        "balance": {"capitalAmount": 100.0, "interestAmount": 0.5, "costsAmount": 5},
        "events": [{"type": "REMINDER", "date": "2026-01-2" + str(i)} for i in range(5)],
    }
}


def test_case_details_sends_the_case_id_and_caps_nested_lists(api, context) -> None:
    api.add(responses.GET, url(Endpoint.CASE_DETAILS), json=CASE)
    op = ConfirmaGetCaseDetailsOperator(task_id="case", case_id="{{ case }}", max_xcom_records=2)
    result = run(op, context(case="555"))

    assert query_of(calls_to(api, Endpoint.CASE_DETAILS)[0]) == {"caseId": "555"}
    data = result["data"]["case"]
    assert data["balance"] == {"capitalAmount": "100.0", "interestAmount": "0.5", "costsAmount": "5"}
    assert len(data["events"]) == 2
    assert result["summary"] == {"query": {"caseId": "555"}, "truncated": {"case.events": 3}}
    assert_no_float(result)


def test_case_details_param_name_is_configurable_and_something_is_required(api, context) -> None:
    api.add(responses.GET, url(Endpoint.CASE_DETAILS), json=CASE)
    op = ConfirmaGetCaseDetailsOperator(
        task_id="case", case_id=555, case_id_param="caseNumber", query_params={"invoiceNumber": 10001}
    )
    run(op, context())
    assert query_of(calls_to(api, Endpoint.CASE_DETAILS)[0]) == {"caseNumber": "555", "invoiceNumber": "10001"}
    with pytest.raises(ConfirmaConfigError, match="give case_id or query_params"):
        ConfirmaGetCaseDetailsOperator(task_id="case")


# -- distribution info -------------------------------------------------------------------------------
DISTRIBUTION = {
    "metaData": {
        "totalCount": 3,
        "successfulCount": 2,
        "failedCount": 1,
        "filtersApplied": {"invoiceNumber": None, "fromInvDate": "2026-01-01", "toInvDate": "2026-01-31"},
    },
    "records": [{"invoiceNumber": "1000" + str(i), "caseId": 550 + i} for i in range(3)],
}


def test_distribution_sends_no_window_by_default(api, context) -> None:
    api.add(responses.GET, url(Endpoint.DISTRIBUTION_INFO), json=DISTRIBUTION)
    day = pendulum.datetime(2026, 2, 1, tz="UTC")
    result = run(ConfirmaGetDistributionInfoOperator(task_id="dist"), context((day, day.add(days=1))))
    assert query_of(calls_to(api, Endpoint.DISTRIBUTION_INFO)[0]) == {}
    assert result["summary"] == {"window": None, "totalCount": 3, "successfulCount": 2, "failedCount": 1}
    assert len(result["data"]["records"]) == 3


def test_distribution_window_uses_invoice_date_params_and_caps(api, context) -> None:
    api.add(responses.GET, url(Endpoint.DISTRIBUTION_INFO), json=DISTRIBUTION)
    day = pendulum.datetime(2026, 2, 1, tz="UTC")
    op = ConfirmaGetDistributionInfoOperator(
        task_id="dist", use_data_interval=True, query_params={"fetchType": "ALL"}, max_xcom_records=1
    )
    result = run(op, context((day, day.add(days=1))))
    assert query_of(calls_to(api, Endpoint.DISTRIBUTION_INFO)[0]) == {
        "fromInvDate": "2026-02-01",
        "toInvDate": "2026-02-01",
        "fetchType": "ALL",
    }
    assert result["summary"]["truncated"] == {"records": 2}
    assert result["summary"]["window"] == {"fromInvDate": "2026-02-01", "toInvDate": "2026-02-01"}
