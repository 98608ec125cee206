"""The operators in real DAG runs (``dag.test()``) against the sandbox: templating from the run's
context, XCom between tasks, the asset event, fail-fast validation and a real task retry after an
ambiguous POST failure that stores nothing twice."""

from __future__ import annotations

from decimal import Decimal

import pendulum
import pytest

from airflow_provider_confirma.assets import PAYMENT_SYNC_ASSET_URI
from airflow_provider_confirma.endpoints import Endpoint
from tests.airflow_compat import only_on_airflow_3_3
from tests.dag_helpers import run_dag, write_dag_file

LOGICAL_DATE = pendulum.datetime(2026, 2, 1, tz="UTC")
POST_KEY = f"POST {Endpoint.SUBMIT_PAYMENTS.full_path}"

DAG_SOURCE = '''
"""Test DAGs of the Confirma operators."""

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.operators.accounting import (
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.payments import ConfirmaGetSettlementsOperator

TINY = RetryPolicy(max_attempts=2, max_total_seconds=5, backoff_initial=0.01, backoff_max=0.02, jitter=0.01)


def payments(date_template):
    return [
        {
            "paymentIdentifier": f"pay-{{{{ ds }}}}-{i}",
            "invoiceNumber": "10001",
            "paymentDate": date_template,
            "amount": amount,
            "currency": "EUR",
        }
        for i, amount in enumerate(["100.10", "0.20"], start=1)
    ]


def dag(dag_id, **kwargs):
    return DAG(dag_id, schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
               default_args={"retries": 1, "retry_delay": timedelta(seconds=0)}, **kwargs)


with dag("confirma_ops_flow"):
    submit = ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments("{{ ds }}"), http_retry_policy=TINY)
    status = ConfirmaGetPaymentSyncStatusOperator(
        task_id="status", source_identifiers=submit.output, emit_asset=True, http_retry_policy=TINY
    )
    settlements = ConfirmaGetSettlementsOperator(task_id="settlements", http_retry_policy=TINY)
    submit >> status

with dag("confirma_ops_invalid"):
    # renders to 20260201: not an ISO date, found only after rendering
    ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments("{{ ds_nodash }}"), http_retry_policy=TINY)

with dag("confirma_ops_retry"):
    ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments("{{ ds }}"), http_retry_policy=TINY)
'''


@pytest.fixture
def dag_path(airflow_db):
    return write_dag_file(DAG_SOURCE, "confirma_operator_dags.py")


@pytest.fixture
def sandbox(confirma_sandbox):
    confirma_sandbox.configure(duplicate_policy="reject")
    return confirma_sandbox


@only_on_airflow_3_3("dag.test() records no asset-alias events")
def test_submit_status_and_settlements_in_one_run(dag_path, sandbox) -> None:
    result = run_dag(dag_path, "confirma_ops_flow", conn_env=sandbox.conn_env(), logical_date=LOGICAL_DATE)

    assert result.task_states == {"submit": "success", "status": "success", "settlements": "success"}
    ids = ["pay-2026-02-01-1", "pay-2026-02-01-2"]
    assert result.xcom("submit") == ids
    stored = {p["sourceIdentifier"]: p["submitted"] for p in sandbox.records()["payments"]}
    assert {k: v["amount"] for k, v in stored.items()} == {ids[0]: Decimal("100.10"), ids[1]: Decimal("0.20")}
    assert stored[ids[0]]["paymentDate"] == "2026-02-01"

    status = result.xcom("status")
    assert status["summary"]["outcome"] == "success"
    assert [r["sourceIdentifier"] for r in status["records"]] == ids
    assert [(e["task_id"], e["uri"]) for e in result.asset_events] == [("status", PAYMENT_SYNC_ASSET_URI)]
    assert result.asset_events[0]["extra"] == {"synced": 2, "identifiers": ids}

    # the window is the run's data interval: from its first day to the last day before its (exclusive) end
    run = result.dag_run
    start, end = run.data_interval_start, run.data_interval_end
    assert end > start  # unit-test mode uses interval timetables for cron schedules: here [01-31, 02-01)
    expected = {
        "fromDate": start.date().isoformat(),
        "toDate": (end - pendulum.duration(microseconds=1)).date().isoformat(),
    }
    assert expected == {"fromDate": "2026-01-31", "toDate": "2026-01-31"}
    assert result.xcom("settlements")["summary"]["window"] == expected


def test_invalid_rendered_payload_fails_without_retry_and_sends_nothing(dag_path, sandbox) -> None:
    result = run_dag(dag_path, "confirma_ops_invalid", conn_env=sandbox.conn_env(), logical_date=LOGICAL_DATE)
    assert result.task_states == {"submit": "failed"}
    assert result.tasks["submit"].try_number == 1  # retries=1, but the same payload would fail again
    assert sandbox.stats()["total_requests"] == 0


def test_a_lost_post_response_fails_the_task_without_retries(dag_path, sandbox) -> None:
    sandbox.set_chaos(script=["reset_after_body"], methods=["POST"])
    result = run_dag(dag_path, "confirma_ops_retry", conn_env=sandbox.conn_env(), logical_date=LOGICAL_DATE)

    assert result.task_states == {"submit": "failed"}
    assert result.tasks["submit"].try_number == 1  # retries=1 unused: Confirma may have it
    stats = sandbox.stats()
    assert stats["requests"][POST_KEY] == 1
    assert stats["stored"]["payments"] == 2
    assert stats["duplicates"]["total"] == 0
