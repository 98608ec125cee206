"""ConfirmaPaymentSyncSensor in real DAG runs (``dag.test()``) against the sandbox, in all three modes.

Each DAG submits three payments through the hook and hands the submit task's XCom
(``{"identifiers": [...]}``) to the sensor. The sandbox keeps them pending until the test settles
them, once the sensor has seen them pending ``PENDING_POLLS`` times (timing-independent, however
slow the machine): ``ok-*`` become synced, ``fail-*`` failed (``failure_pattern``). ``slow-*`` are
never settled, so the sensor times out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from airflow_provider_confirma.assets import PAYMENT_SYNC_ASSET_URI
from airflow_provider_confirma.endpoints import Endpoint
from tests.airflow_compat import DAG_RUN_MODES as MODES
from tests.dag_helpers import run_dag, write_dag_file

PENDING_POLLS = 2
POKE_INTERVAL = 0.2
KEY_MARKER = "confirma-sandbox-key"
STATUS_KEY = f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}"

DAG_SOURCE = '''
"""Test DAGs of ConfirmaPaymentSyncSensor: one per (mode, case)."""

from datetime import datetime
from decimal import Decimal

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

CASES = {
    # case: (identifier prefix, sensor timeout, soft_fail)
    "success": ("ok-", 60, False),
    "failure": ("fail-", 60, False),
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


@pytest.fixture(scope="module")
def dag_file(airflow_db):
    return write_dag_file(DAG_SOURCE, "confirma_payment_sync_sensor_dags.py")


@pytest.fixture
def sandbox(confirma_sandbox):
    confirma_sandbox.configure(sync_delay=3600, failure_pattern="^fail-", failure_description="Account closed")
    return confirma_sandbox


def status_gets(sandbox) -> int:
    return sandbox.stats()["requests"].get(STATUS_KEY, 0)


@contextmanager
def settle_after_polls(sandbox, polls: int) -> Iterator[dict[str, int]]:
    """Settle every record once the sandbox has served ``polls`` status GETs; yields the GET count then."""
    seen: dict[str, int] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            count = status_gets(sandbox)
            if count >= polls:
                sandbox.sync_now()
                seen["at_settle"] = count
                return

    watcher = threading.Thread(target=watch, name="settle-after-polls", daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join(5)


@pytest.mark.parametrize("mode", MODES)
def test_success(mode, dag_file, sandbox):
    with settle_after_polls(sandbox, PENDING_POLLS) as seen:
        result = run_dag(dag_file, f"confirma_payment_sync_{mode}_success", conn_env=sandbox.conn_env())
    assert seen["at_settle"] == PENDING_POLLS
    assert result.task_states == {"submit": "success", "wait": "success"}
    assert result.state == "success"
    summary = result.xcom("wait")
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 3, "synced": 3, "pending": 0, "failed": 0, "missing": 0}
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["ok-0", "ok-1", "ok-2"]
    assert all(r["status"] == 1 and r["syncDate"] for r in summary["records"])
    assert summary["waited_seconds"] >= POKE_INTERVAL  # it saw them pending first
    assert KEY_MARKER not in repr(result.xcoms)
    # The asset event names what synced (in deferrable mode, set in execute_complete).
    extra = {"synced": 3, "identifiers": ["ok-0", "ok-1", "ok-2"]}
    assert result.asset_events == [{"task_id": "wait", "uri": PAYMENT_SYNC_ASSET_URI, "extra": extra}]
    # The rendered query parameters reached the status endpoint.
    queries = sandbox.stats()["queries"][STATUS_KEY]
    assert queries and all(q["fromDate"].startswith("20") for q in queries)
    # The poll after the settlement (or the one in flight during it) ended the wait.
    assert PENDING_POLLS <= status_gets(sandbox) <= PENDING_POLLS + 1


@pytest.mark.parametrize("mode", MODES)
def test_forced_failure_fails_within_one_poll_without_retries(mode, dag_file, sandbox):
    with settle_after_polls(sandbox, PENDING_POLLS) as seen:
        result = run_dag(dag_file, f"confirma_payment_sync_{mode}_failure", conn_env=sandbox.conn_env())
    assert seen["at_settle"] == PENDING_POLLS
    assert result.task_states == {"submit": "success", "wait": "failed"}
    assert result.tasks["wait"].try_number == 1  # AirflowFailException: retries=2 not used
    assert result.state == "failed"
    assert "wait" not in result.xcoms
    assert result.asset_events == []
    # The first poll that sees the failed payments (the next one, or the one in flight) ends the task.
    assert PENDING_POLLS <= status_gets(sandbox) <= PENDING_POLLS + 1


@pytest.mark.parametrize("mode", MODES)
def test_timeout_with_soft_fail_ends_skipped(mode, dag_file, sandbox):
    result = run_dag(dag_file, f"confirma_payment_sync_{mode}_timeout", conn_env=sandbox.conn_env())
    assert result.task_states == {"submit": "success", "wait": "skipped"}
    assert result.tasks["wait"].try_number == 1
    assert status_gets(sandbox) >= 2
