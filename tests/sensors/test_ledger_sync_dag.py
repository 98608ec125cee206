"""ConfirmaLedgerSyncSensor in real DAG runs (``dag.test()``) against the sandbox, in all three modes.

Each DAG submits one ledger document with ``ConfirmaSubmitLedgerOperator`` and hands its XCom
(``[ledgerIdentifier]``) to the sensor. The sandbox keeps the document pending until the test
settles it, once the sensor has read the ledger status ``PENDING_READS`` times (the submit
operator's own read comes first), however slow the machine. ``ok-*`` documents sync, ``fail-*``
ones fail (``failure_pattern``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from airflow_provider_confirma.assets import LEDGER_SYNC_ASSET_URI
from airflow_provider_confirma.endpoints import Endpoint
from tests.airflow_compat import DAG_RUN_MODES as MODES
from tests.dag_helpers import run_dag, write_dag_file

#: ledger status reads before the test settles: the submit operator's, then two by the sensor
PENDING_READS = 3
POKE_INTERVAL = 0.2
STATUS_KEY = f"GET {Endpoint.LEDGER_SYNC_STATUS.full_path}"

DAG_SOURCE = '''
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


@pytest.fixture(scope="module")
def dag_file(airflow_db):
    return write_dag_file(DAG_SOURCE, "confirma_ledger_sync_sensor_dags.py")


@pytest.fixture
def sandbox(confirma_sandbox):
    confirma_sandbox.configure(sync_delay=3600, failure_pattern="^fail-", failure_description="Period closed")
    return confirma_sandbox


def status_reads(sandbox) -> int:
    return sandbox.stats()["requests"].get(STATUS_KEY, 0)


@contextmanager
def settle_after_reads(sandbox, reads: int) -> Iterator[dict[str, int]]:
    seen: dict[str, int] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            if status_reads(sandbox) >= reads:
                seen["settled"] = sandbox.sync_now()
                return

    watcher = threading.Thread(target=watch, name="settle-after-reads", daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join(5)


@pytest.mark.parametrize("mode", MODES)
def test_ledger_synced(mode, dag_file, sandbox):
    with settle_after_reads(sandbox, PENDING_READS) as seen:
        result = run_dag(dag_file, f"confirma_ledger_sync_{mode}_ok", conn_env=sandbox.conn_env())
    assert seen["settled"] == 1
    assert result.task_states == {"submit": "success", "wait": "success"}
    ident = f"ok-{mode}"
    assert result.xcom("submit") == [ident]
    summary = result.xcom("wait")
    assert summary["counts"] == {"total": 1, "synced": 1, "pending": 0, "failed": 0, "missing": 0}
    (record,) = summary["records"]
    assert (record["sourceIdentifier"], record["status"], record["documentStatus"]) == (ident, 1, "Approved")
    assert summary["waited_seconds"] >= POKE_INTERVAL  # it saw the document pending first
    assert result.asset_events == [
        {"task_id": "wait", "uri": LEDGER_SYNC_ASSET_URI, "extra": {"synced": 1, "identifiers": [ident]}}
    ]
    (stored,) = sandbox.records()["ledgers"]
    assert [row["amount"] for row in stored["submitted"]["ledgerRows"]] == [Decimal("10.05"), Decimal("-10.05")]
    # Only the ledger endpoint was read: the submit operator once, then the sensor (or its trigger).
    requests = sandbox.stats()["requests"]
    assert f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}" not in requests
    assert PENDING_READS <= requests[STATUS_KEY] <= PENDING_READS + 1


@pytest.mark.parametrize("mode", MODES)
def test_failed_ledger_fails_without_retries_and_emits_nothing(mode, dag_file, sandbox):
    with settle_after_reads(sandbox, PENDING_READS):
        result = run_dag(dag_file, f"confirma_ledger_sync_{mode}_fail", conn_env=sandbox.conn_env())
    assert result.task_states == {"submit": "success", "wait": "failed"}
    assert result.tasks["wait"].try_number == 1  # AirflowFailException: retries=2 not used
    assert "wait" not in result.xcoms
    assert result.asset_events == []
