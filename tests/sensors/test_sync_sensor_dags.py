"""ConfirmaPaymentSyncSensor and ConfirmaLedgerSyncSensor in real DAG runs (``dag.test()``) against
the sandbox, in all three modes.

The payment DAGs submit three payments through the hook and hand the submit task's XCom
(``{"identifiers": [...]}``) to the sensor; the ledger DAGs submit one ledger document with
``ConfirmaSubmitLedgerOperator`` and hand its XCom (``[ledgerIdentifier]``) to the sensor. The
sandbox keeps the records pending until the test settles them, once the sandbox has served
``pending_reads`` status reads (the sensor's, after the submit operator's own read for ledgers),
however slow the machine: ``ok-*`` become synced, ``fail-*`` failed (``failure_pattern``).
Payments ``slow-*`` are never settled, so that sensor times out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_confirma.endpoints import Endpoint
from tests.airflow_compat import DAG_RUN_MODES as MODES
from tests.dag_helpers import DagTestResult, requests_served, run_dag, settle_after_gets, write_dag_file
from tests.sync_variants import LEDGER, PAYMENT, SyncVariant, other_variant

POKE_INTERVAL = 0.2
KEY_MARKER = "confirma-sandbox-key"

PAYMENT_DAGS = '''
"""Test DAGs of ConfirmaPaymentSyncSensor: one per (mode, case)."""

from datetime import datetime
from decimal import Decimal

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

CASES = {
    # case: (identifier prefix, sensor timeout, soft_fail)
    "ok": ("ok-", 60, False),
    "fail": ("fail-", 60, False),
    "timeout": ("slow-", 1.5, True),
}


def build(mode, case):
    prefix, timeout, soft_fail = CASES[case]
    with DAG(
        f"confirma_payment_sync_{mode}_{case}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
    ) as dag:

        @task(task_id="submit")
        def submit():
            ids = [f"{prefix}{i}" for i in range(3)]
            ConfirmaHook().submit_payments(
                {
                    "payments": [
                        {
                            "paymentIdentifier": ident,
                            "invoiceNumber": "900001",
                            "paymentDate": "2026-02-02",
                            "amount": Decimal("12.30"),
                            "currency": "EUR",
                        }
                        for ident in ids
                    ]
                }
            )
            return {"identifiers": ids, "submitted": len(ids)}

        ConfirmaPaymentSyncSensor(
            task_id="wait",
            source_identifiers=submit(),
            query_params={"fromDate": "{{ ds }}"},
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            poke_interval=__POKE_INTERVAL__,
            timeout=timeout,
            soft_fail=soft_fail,
            retries=2,
            http_retry_policy={"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.1, "jitter": 0.01},
            emit_asset=True,
        )
    return dag


for _mode in ("poke", "reschedule", "deferrable"):
    for _case in CASES:
        _dag = build(_mode, _case)
        globals()[_dag.dag_id] = _dag
'''.replace("__POKE_INTERVAL__", repr(POKE_INTERVAL))

LEDGER_DAGS = '''
"""Test DAGs of ConfirmaLedgerSyncSensor: one per (mode, case)."""

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_confirma.operators.accounting import ConfirmaSubmitLedgerOperator
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor


def build(mode, case):
    with DAG(
        f"confirma_ledger_sync_{mode}_{case}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
    ) as dag:
        submit = ConfirmaSubmitLedgerOperator(
            task_id="submit",
            ledger={
                "ledgerIdentifier": f"{case}-{mode}",
                "companyIdentifier": "7654321-0",
                "documentType": "ML",
                "documentName": "5001",
                "documentDate": "{{ ds }}",
                "ledgerRows": [
                    {"bookingDate": "{{ ds }}", "accountNumber": "1700", "amount": "10.05"},
                    {"bookingDate": "{{ ds }}", "accountNumber": "3000", "amount": "-10.05"},
                ],
            },
        )
        ConfirmaLedgerSyncSensor(
            task_id="wait",
            source_identifiers=submit.output,
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            poke_interval=__POKE_INTERVAL__,
            timeout=60,
            retries=2,
            http_retry_policy={"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.1, "jitter": 0.01},
            emit_asset=True,
        )
    return dag


for _mode in ("poke", "reschedule", "deferrable"):
    for _case in ("ok", "fail"):
        _dag = build(_mode, _case)
        globals()[_dag.dag_id] = _dag
'''.replace("__POKE_INTERVAL__", repr(POKE_INTERVAL))


def payment_synced(result: DagTestResult, sandbox: Any, mode: str) -> list[str]:
    """The payment run's own checks; returns the identifiers that synced."""
    assert result.xcom("submit") == {"identifiers": ["ok-0", "ok-1", "ok-2"], "submitted": 3}
    assert all(r["status"] == 1 and r["syncDate"] for r in result.xcom("wait")["records"])
    # The rendered query parameters reached the status endpoint.
    queries = sandbox.stats()["queries"][f"GET {PAYMENT.endpoint.full_path}"]
    assert queries and all(q["fromDate"].startswith("20") for q in queries)
    return ["ok-0", "ok-1", "ok-2"]


def ledger_synced(result: DagTestResult, sandbox: Any, mode: str) -> list[str]:
    """The ledger run's own checks; returns the identifiers that synced."""
    ident = f"ok-{mode}"
    assert result.xcom("submit") == [ident]
    (record,) = result.xcom("wait")["records"]
    assert (record["sourceIdentifier"], record["status"], record["documentStatus"]) == (ident, 1, "Approved")
    (stored,) = sandbox.records()["ledgers"]
    assert [row["amount"] for row in stored["submitted"]["ledgerRows"]] == [Decimal("10.05"), Decimal("-10.05")]
    return [ident]


@dataclass(frozen=True)
class DagCase:
    variant: SyncVariant
    source: str
    filename: str
    #: status reads before the test settles: the sensor's two (after the ledger submit operator's own)
    pending_reads: int
    failure_description: str
    #: the variant's own checks of a successful run; returns the identifiers that synced
    synced: Callable[[DagTestResult, Any, str], list[str]]

    def dag_id(self, mode: str, case: str) -> str:
        return f"confirma_{self.variant.name}_sync_{mode}_{case}"


CASES = {
    "payment": DagCase(
        PAYMENT, PAYMENT_DAGS, "confirma_payment_sync_sensor_dags.py", 2, "Account closed", payment_synced
    ),
    "ledger": DagCase(LEDGER, LEDGER_DAGS, "confirma_ledger_sync_sensor_dags.py", 3, "Period closed", ledger_synced),
}


@pytest.fixture(scope="module")
def dag_files(airflow_db) -> dict[str, Path]:
    return {name: write_dag_file(case.source, case.filename) for name, case in CASES.items()}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> DagCase:
    return CASES[request.param]


@pytest.fixture
def sandbox(confirma_sandbox, case: DagCase):
    confirma_sandbox.configure(sync_delay=3600, failure_pattern="^fail-", failure_description=case.failure_description)
    return confirma_sandbox


@pytest.mark.parametrize("mode", MODES)
def test_success(mode, case: DagCase, dag_files, sandbox):
    variant = case.variant
    with settle_after_gets(sandbox, variant.endpoint, case.pending_reads) as seen:
        result = run_dag(dag_files[variant.name], case.dag_id(mode, "ok"), conn_env=sandbox.conn_env())
    assert seen["at"] == case.pending_reads
    assert result.task_states == {"submit": "success", "wait": "success"}
    assert result.state == "success"
    synced = case.synced(result, sandbox, mode)
    assert seen["result"] == len(synced)  # the test settled them all at once
    summary = result.xcom("wait")
    assert summary["outcome"] == "success"
    total = len(synced)
    assert summary["counts"] == {"total": total, "synced": total, "pending": 0, "failed": 0, "missing": 0}
    assert [r["sourceIdentifier"] for r in summary["records"]] == synced
    assert summary["waited_seconds"] >= POKE_INTERVAL  # it saw them pending first
    assert KEY_MARKER not in repr(result.xcoms)
    # The asset event names what synced (in deferrable mode, set in execute_complete).
    extra = {"synced": total, "identifiers": synced}
    assert result.asset_events == [{"task_id": "wait", "uri": variant.asset_uri, "extra": extra}]
    # Only its own status endpoint was read; the poll after the settlement (or the one in flight
    # during it) ended the wait; a deferred sensor reads once more on resume, for its XCom records.
    assert requests_served(sandbox, other_variant(variant).endpoint) == 0
    resume_read = 1 if mode == "deferrable" else 0
    assert case.pending_reads <= requests_served(sandbox, variant.endpoint) <= case.pending_reads + 1 + resume_read


@pytest.mark.parametrize("mode", MODES)
def test_forced_failure_fails_within_one_poll_without_retries_and_emits_nothing(
    mode, case: DagCase, dag_files, sandbox
):
    variant = case.variant
    with settle_after_gets(sandbox, variant.endpoint, case.pending_reads) as seen:
        result = run_dag(dag_files[variant.name], case.dag_id(mode, "fail"), conn_env=sandbox.conn_env())
    assert seen["at"] == case.pending_reads
    assert result.task_states == {"submit": "success", "wait": "failed"}
    assert result.tasks["wait"].try_number == 1  # AirflowFailException: retries=2 not used
    assert result.state == "failed"
    assert "wait" not in result.xcoms
    assert result.asset_events == []
    # The first poll that sees the failed records (the next one, or the one in flight) ends the task.
    assert case.pending_reads <= requests_served(sandbox, variant.endpoint) <= case.pending_reads + 1


@pytest.mark.parametrize("case", ["payment"], indirect=True)
@pytest.mark.parametrize("mode", MODES)
def test_timeout_with_soft_fail_ends_skipped(mode, case: DagCase, dag_files, sandbox):
    result = run_dag(dag_files["payment"], case.dag_id(mode, "timeout"), conn_env=sandbox.conn_env())
    assert result.task_states == {"submit": "success", "wait": "skipped"}
    assert result.tasks["wait"].try_number == 1
    assert requests_served(sandbox, Endpoint.PAYMENT_SYNC_STATUS) >= 2
