"""The operators against the real sandbox server (real HTTP on 127.0.0.1): what Confirma ends up
storing, exact money both ways, and that a retry after an ambiguous POST failure stores nothing twice."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AssetAlias

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.operators.accounting import (
    PAYMENT_SYNC_ALIAS,
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitLedgerOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.base import ConfirmaSubmissionUncertainError
from airflow_provider_confirma.operators.invoices import (
    ConfirmaCreateInvoiceActionOperator,
    ConfirmaCreateInvoiceOperator,
    ConfirmaGetCaseDetailsOperator,
    ConfirmaGetDistributionInfoOperator,
)
from airflow_provider_confirma.operators.payments import ConfirmaGetPaymentsOperator, ConfirmaGetSettlementsOperator

from .conftest import TINY_POLICY, assert_no_float, run
from .test_accounting import ledger_doc, payment
from .test_invoices import INVOICE

MONEY_TEXT = re.compile(r"-?\d+\.\d{2}")


@pytest.fixture
def sandbox(confirma_sandbox_conn):
    confirma_sandbox_conn.configure(failure_pattern="^bad-", duplicate_policy="reject")
    return confirma_sandbox_conn


def post_count(sandbox: Any, endpoint: Endpoint) -> int:
    return sandbox.stats()["requests"].get(f"{endpoint.method} {endpoint.full_path}", 0)


def submit(payments: list[dict[str, Any]]) -> ConfirmaSubmitPaymentsOperator:
    return ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments, http_retry_policy=TINY_POLICY)


def test_submit_then_status_with_exact_amounts_and_an_asset_event(sandbox, context) -> None:
    ids = run(submit([payment("pay-1", "100.10"), payment("pay-2", Decimal("0.20")), payment("bad-3", 5)]), context())
    assert ids == ["pay-1", "pay-2", "bad-3"]
    stored = {p["sourceIdentifier"]: p["submitted"]["amount"] for p in sandbox.records()["payments"]}
    assert stored == {"pay-1": Decimal("100.10"), "pay-2": Decimal("0.20"), "bad-3": 5}

    sandbox.sync_now()
    ctx = context()
    status = ConfirmaGetPaymentSyncStatusOperator(
        task_id="status", source_identifiers=["pay-1", "pay-2"], emit_asset=True, http_retry_policy=TINY_POLICY
    )
    result = run(status, ctx)
    assert result["summary"]["outcome"] == "success"
    assert result["summary"]["counts"]["synced"] == 2
    assert len(ctx["outlet_events"][AssetAlias(PAYMENT_SYNC_ALIAS)].asset_alias_events) == 1

    with pytest.raises(AirflowFailException, match="bad-3"):
        run(
            ConfirmaGetPaymentSyncStatusOperator(task_id="status", source_identifiers=ids, fail_on_sync_failure=True),
            context(),
        )


def test_retry_after_a_lost_response_stores_nothing_twice(sandbox, context) -> None:
    """Confirma stores the POST but the connection drops before the answer (reset after body)."""
    payments = [payment("pay-1"), payment("pay-2")]
    sandbox.set_chaos(script=["reset_after_body"], methods=["POST"])
    with pytest.raises(ConfirmaSubmissionUncertainError, match="may or may not have reached Confirma"):
        run(submit(payments), context())
    assert sandbox.stats()["stored"]["payments"] == 2

    # the task retry: same payload, a fresh operator instance, as Airflow runs it
    assert run(submit([*payments, payment("pay-3")]), context()) == ["pay-1", "pay-2", "pay-3"]
    stats = sandbox.stats()
    assert stats["stored"]["payments"] == 3
    assert stats["duplicates"]["total"] == 0  # with duplicate_policy=reject, a resend would have been a 409
    assert post_count(sandbox, Endpoint.SUBMIT_PAYMENTS) == 2

    assert run(submit(payments), context()) == ["pay-1", "pay-2"]  # everything known: no POST at all
    assert post_count(sandbox, Endpoint.SUBMIT_PAYMENTS) == 2


def test_ledger_submission_and_resubmission(sandbox, context) -> None:
    op = ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=ledger_doc("lg-9"), http_retry_policy=TINY_POLICY)
    assert run(op, context()) == ["lg-9"]
    (stored,) = sandbox.records()["ledgers"]
    assert stored["submitted"]["ledgerRows"][1]["netAmount"] == Decimal("-98.80")
    assert stored["submitted"]["ledgerRows"][1]["vatPercentage"] == Decimal("25.5")
    assert run(op, context()) == ["lg-9"]
    assert post_count(sandbox, Endpoint.SUBMIT_LEDGER) == 1


def test_invoice_action_case_and_distribution(sandbox, context) -> None:
    created = run(ConfirmaCreateInvoiceOperator(task_id="invoice", invoice=INVOICE), context())
    assert created["identifiers"] == ["10001"]
    case_id = created["response"]["caseId"]
    assert isinstance(case_id, int)

    queued = run(
        ConfirmaCreateInvoiceActionOperator(
            task_id="action",
            actions=[
                {
                    "code": "DIRECTPAYMENT",
                    "comment": "paid to our account",
                    "data": {"invoiceNumber": 10001, "caseId": case_id, "amount": "50.00", "currency": "EUR",
                             "paymentDate": "2026-02-01"},
                }
            ],
        ),
        context(),
    )  # fmt: skip
    assert queued["codes"] == ["DIRECTPAYMENT"]
    assert sandbox.records()["actions"][0]["data"]["amount"] == Decimal("50.00")

    case = run(ConfirmaGetCaseDetailsOperator(task_id="case", case_id=case_id), context())
    assert case["data"]["case"]["summary"]["caseId"] == case_id
    assert_no_float(case)

    dist = run(
        ConfirmaGetDistributionInfoOperator(
            task_id="dist", from_date="2026-01-01", to_date="2026-01-31", query_params={"invoiceNumber": 10001}
        ),
        context(),
    )
    assert dist["summary"]["totalCount"] == 1
    assert dist["data"]["metaData"]["filtersApplied"]["fromInvDate"] == "2026-01-01"


def test_seeded_payments_and_settlements_keep_every_cent(sandbox, context) -> None:
    anchor = pendulum.today("UTC")
    interval = (anchor.subtract(days=70), anchor.add(days=1))
    payments = run(ConfirmaGetPaymentsOperator(task_id="payments"), context(interval))
    assert payments["summary"]["window"] == {
        "fromDate": interval[0].date().isoformat(),
        "toDate": anchor.date().isoformat(),
    }
    assert payments["records"], "the sandbox seeds paid invoices in the last 8 weeks"
    assert all(MONEY_TEXT.fullmatch(p["amount"]) for p in payments["records"])

    settlements = run(ConfirmaGetSettlementsOperator(task_id="settlements"), context(interval))
    records = settlements["records"]
    assert records
    amounts = [r["settlementAmount"] for r in records]
    assert all(MONEY_TEXT.fullmatch(a) for a in amounts)
    assert settlements["summary"]["totals"] == {"EUR": f"{sum(Decimal(a) for a in amounts):f}"}
    for record in records:
        allocated = sum(Decimal(a["allocatedTotalAmount"]) for a in record["allocations"])
        assert allocated == Decimal(record["settlementAmount"])
    assert_no_float(settlements)
