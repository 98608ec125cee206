"""No duplicates: faults around POSTs plus real task retries (``dag.test()``, ``retry_delay`` 0) never
make the sandbox store a submission twice, and what the API already has is not sent again. A POST
whose outcome is unknown fails the task without retries; the reruns here are new DAG runs, whose
status check finds what the sandbox stored (it lists a POST at once; ``test_submit_safety.py``
covers an API that lists it only later).

The sandbox runs with ``duplicate_policy="accept"``: a second POST of a known identifier would be
answered 200 and only *counted*, so ``duplicates == 0`` proves it never happened (with "reject" a
duplicate would fail the task instead and hide a resend). ``tests/operators/test_operators_dag.py``
already covers one lost POST response (reset after the body) for payments; these runs add the other
faults, faults on the status check before the POST, a partly known payload, a DAG re-run, ledgers
and invoices.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from airflow_provider_confirma.endpoints import Endpoint
from tests.dag_helpers import run_dag, write_dag_file
from tests.reliability.helpers import POST_KEY, STATUS_KEY, conn_json, latency_seed, store_payments

IDS = ["nd-1", "nd-2", "nd-3"]
LEDGER_POST = f"POST {Endpoint.SUBMIT_LEDGER.full_path}"
INVOICE_POST = f"POST {Endpoint.CREATE_INVOICE.full_path}"

DAG_SOURCE = '''
"""No-duplicate DAGs: submit operators with task retries, then a sensor on what was submitted."""

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.operators.accounting import ConfirmaSubmitLedgerOperator, ConfirmaSubmitPaymentsOperator
from airflow_provider_confirma.operators.invoices import ConfirmaCreateInvoiceOperator
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

TINY = RetryPolicy(max_attempts=2, max_total_seconds=5, backoff_initial=0.01, backoff_max=0.01, jitter=0.0,
                   retry_after_cap=0.01)
RETRIES = {"retries": 5, "retry_delay": timedelta(seconds=0)}


def dag(dag_id):
    return DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), default_args=RETRIES)


with dag("confirma_nodup_payments"):
    submit = ConfirmaSubmitPaymentsOperator(
        task_id="submit",
        payments=[
            {"paymentIdentifier": ident, "invoiceNumber": "900001", "paymentDate": "2026-02-02",
             "amount": "12.30", "currency": "EUR"}
            for ident in ("nd-1", "nd-2", "nd-3")
        ],
        http_retry_policy=TINY,
    )
    submit >> ConfirmaPaymentSyncSensor(
        task_id="wait", source_identifiers=submit.output, poke_interval=0.05, timeout=30, http_retry_policy=TINY
    )

with dag("confirma_nodup_ledger"):
    ConfirmaSubmitLedgerOperator(
        task_id="submit",
        ledger={
            "ledgerIdentifier": "nd-ledger-1", "companyIdentifier": "7654321-0", "documentType": "ML",
            "documentName": "5001", "documentDate": "2026-01-31", "calculationMode": "GROSS",
            "ledgerRows": [
                {"bookingDate": "2026-01-31", "accountNumber": "1700", "amount": "124.00"},
                {"bookingDate": "2026-01-31", "accountNumber": "3000", "amount": "-124.00"},
            ],
        },
        http_retry_policy=TINY,
    )

with dag("confirma_nodup_invoice"):
    ConfirmaCreateInvoiceOperator(
        task_id="submit",
        invoice={
            "processing": {"paymentControlEnabled": True},
            "distribution": {"method": "EMAIL", "enabled": True},
            "invoice": {
                "header": {"number": 810001, "date": "2026-11-20", "dueDate": "2026-12-04", "currencyCode": "EUR"},
                "parties": {"sellerParty": {"name": "Seller Oy"}, "buyerParty": {"name": "Buyer Oy"}},
            },
        },
        http_retry_policy=TINY,
    )
'''


@pytest.fixture(scope="module")
def dag_file(airflow_db):
    return write_dag_file(DAG_SOURCE, "confirma_no_duplicate_dags.py")


@pytest.fixture
def sandbox(confirma_sandbox):
    return confirma_sandbox  # sync_delay 0: a stored payment is synced at the next status read


def run(dag_file: Any, dag_id: str, sandbox: Any, **extra: Any) -> Any:
    env = {"AIRFLOW_CONN_CONFIRMA_DEFAULT": conn_json(sandbox.url, sandbox.api_key, **extra)}
    return run_dag(dag_file, dag_id, conn_env=env)


def stored_once(sandbox: Any, kind: str, identifiers: list[str]) -> None:
    """Each identifier stored exactly once, and the sandbox counted no duplicate POST."""
    stats = sandbox.stats()
    assert stats["duplicates"]["total"] == 0, stats["duplicates"]
    held = Counter(record["sourceIdentifier"] for record in sandbox.records()[kind])
    assert held == dict.fromkeys(identifiers, 1)


def test_payments_through_bad_status_reads_then_a_lost_response(dag_file, sandbox):
    # One sequence on GET and POST /accounting/payment, in the order the tries meet it:
    #   try 1: status read 503, hook retry 503: the task fails, nothing is posted (retried)
    #   try 2: status read answered with malformed JSON: the task fails, nothing is posted (retried)
    #   try 3: status read ok (nothing known) -> POST stored but its response lost (reset): uncertain,
    #          the task fails without using its other retries
    #   a rerun (a new DAG run): status read lists all three -> nothing is sent
    sandbox.set_chaos(script=["503", "503", "malformed_json", "ok", "reset_after_body"], paths=["/accounting/payment"])
    result = run(dag_file, "confirma_nodup_payments", sandbox)
    assert result.task_states == {"submit": "failed", "wait": "upstream_failed"}
    assert result.tasks["submit"].try_number == 3
    assert sandbox.stats()["requests"][POST_KEY] == 1
    stored_once(sandbox, "payments", IDS)

    rerun = run(dag_file, "confirma_nodup_payments", sandbox)
    assert rerun.task_states == {"submit": "success", "wait": "success"}
    assert rerun.xcom("submit") == IDS
    assert rerun.xcom("wait")["counts"]["synced"] == 3
    assert sandbox.stats()["requests"][POST_KEY] == 1
    stored_once(sandbox, "payments", IDS)


def test_payments_after_a_post_read_timeout(dag_file, sandbox):
    # The first POST outlasts the read timeout (the sandbox drops it when its client leaves): the
    # task fails without retries; a rerun finds nothing known and sends once more.
    seed = latency_seed([True, False, False], rate=0.3, method="POST", path=Endpoint.SUBMIT_PAYMENTS.path)
    sandbox.set_chaos(latency_ms=1200, latency_rate=0.3, seed=seed, methods=["POST"])
    result = run(dag_file, "confirma_nodup_payments", sandbox, timeout=0.5)
    assert result.task_states == {"submit": "failed", "wait": "upstream_failed"}
    assert result.tasks["submit"].try_number == 1
    rerun = run(dag_file, "confirma_nodup_payments", sandbox, timeout=0.5)
    assert rerun.task_states == {"submit": "success", "wait": "success"}
    assert sandbox.stats()["requests"][POST_KEY] == 2
    stored_once(sandbox, "payments", IDS)


def test_what_the_api_already_has_is_not_sent_again(dag_file, sandbox):
    store_payments(sandbox, ["nd-1"])  # e.g. sent by an earlier run whose task then failed
    sandbox.set_chaos(script=["429"], methods=["POST"])  # not accepted: the task retry may send
    result = run(dag_file, "confirma_nodup_payments", sandbox)
    assert result.task_states == {"submit": "success", "wait": "success"}
    assert result.tasks["submit"].try_number == 2
    assert sandbox.stats()["requests"][POST_KEY] == 3  # nd-1 beforehand; then the 429, then nd-2 and nd-3
    submitted = {r["sourceIdentifier"]: r["submitted"]["invoiceNumber"] for r in sandbox.records()["payments"]}
    assert list(submitted) == IDS
    stored_once(sandbox, "payments", IDS)


def test_a_second_run_of_the_dag_sends_nothing(dag_file, sandbox):
    first = run(dag_file, "confirma_nodup_payments", sandbox)
    second = run(dag_file, "confirma_nodup_payments", sandbox)
    assert first.run_id != second.run_id
    assert second.task_states == {"submit": "success", "wait": "success"}
    assert second.xcom("submit") == IDS  # it still hands the identifiers to the sensor
    stats = sandbox.stats()
    assert stats["requests"][POST_KEY] == 1
    assert stats["requests"][STATUS_KEY] >= 4  # each submit checked first; each sensor polled
    stored_once(sandbox, "payments", IDS)


def test_ledger_after_a_lost_response(dag_file, sandbox):
    sandbox.set_chaos(script=["reset_after_body"], methods=["POST"])
    result = run(dag_file, "confirma_nodup_ledger", sandbox)
    assert result.task_states == {"submit": "failed"}
    assert result.tasks["submit"].try_number == 1  # uncertain: no task retry
    assert run(dag_file, "confirma_nodup_ledger", sandbox).task_states == {"submit": "success"}  # a rerun
    assert sandbox.stats()["requests"][LEDGER_POST] == 1
    stored_once(sandbox, "ledgers", ["nd-ledger-1"])


@pytest.mark.parametrize("fault", ["reset_after_body", "503"])
def test_invoice_with_an_unknown_outcome_is_not_retried(dag_file, sandbox, fault):
    # No documented endpoint can look an invoice up by number, so the operator does not retry.
    sandbox.set_chaos(script=[fault], methods=["POST"])
    result = run(dag_file, "confirma_nodup_invoice", sandbox)
    assert result.task_states == {"submit": "failed"}
    assert result.tasks["submit"].try_number == 1  # retries=5 were not used
    stats = sandbox.stats()
    assert stats["requests"][INVOICE_POST] == 1
    assert stats["stored"]["invoices"] == (1 if fault == "reset_after_body" else 0)
    assert stats["duplicates"]["total"] == 0
