"""DAGs of the end-to-end run (``scripts/e2e.py``), which copies this file into its throwaway dags folder.

Each scenario is a DAG of its own on a connection of its own (``AIRFLOW_CONN_<ID>`` set by the
script for every Airflow process), so one Airflow session runs them all side by side:

* ``confirma_e2e_sync``: submit -> deferred sync sensor -> report; the script kills the triggerer
  while the sensor waits and expects success with one POST and no duplicate.
* ``confirma_e2e_auth``: the sandbox expects another key (401).
* ``confirma_e2e_trigger_retries``: status reads answer 503 once the sensor has deferred; the
  trigger's and the worker's HTTP retries and the task's retry are exhausted.
* ``confirma_e2e_submit_retries``: every request answers 503; the submit task's retries are exhausted.
* ``confirma_e2e_sync_failed``: Confirma reports the payments as failed to sync.
* ``confirma_e2e_events``: scheduled on an asset watched by ``ConfirmaPaymentSyncEventTrigger``
  (1 s polls); the script settles batches of payments and expects one run per new batch, none when
  nothing changes and none for old payments after the triggerer is killed and restarted.
* ``confirma_e2e_canary``: the positive control. It logs and returns the password of a canary
  connection on purpose, so the leak scan must find the canary key (and never the real one).

No key is written here: connections come from the environment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetWatcher, BaseHook, dag, task

from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.operators.accounting import ConfirmaSubmitPaymentsOperator
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncEventTrigger

#: Short HTTP retries, so failure paths end in seconds.
FAST_RETRIES = RetryPolicy(
    max_attempts=2, max_total_seconds=5, backoff_initial=0.1, backoff_max=0.2, jitter=0.1, retry_after_cap=0.5
)
RUN = "{{ run_id | replace(':', '') | replace('+', '') }}"


def payments(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "paymentIdentifier": f"{prefix}-{RUN}-{n}",
            "invoiceNumber": invoice,
            "paymentDate": "{{ ds }}",
            "amount": amount,
            "currency": "EUR",
            "targetIdentifier": "invoicenumber",
        }
        for n, (invoice, amount) in enumerate([("10001", "100.10"), ("10002", "249.90"), ("10003", "12.00")], 1)
    ]


def sync_dag(dag_id: str, conn_id: str, *, retries: int = 0) -> None:
    """submit_payments -> wait_for_sync (deferrable) -> report, on ``conn_id``."""

    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        max_active_runs=1,
        tags=["confirma-e2e"],
        default_args={"retries": retries, "retry_delay": timedelta(seconds=1)},
    )
    def scenario() -> None:
        submit = ConfirmaSubmitPaymentsOperator(
            task_id="submit_payments",
            confirma_conn_id=conn_id,
            payments=payments(dag_id.removeprefix("confirma_e2e_")),
            http_retry_policy=FAST_RETRIES,
        )
        wait = ConfirmaPaymentSyncSensor(
            task_id="wait_for_sync",
            confirma_conn_id=conn_id,
            source_identifiers=submit.output,
            deferrable=True,
            poke_interval=1,
            timeout=300,
            max_consecutive_errors=2,
            http_retry_policy=FAST_RETRIES,
        )

        @task
        def report(summary: Any) -> dict[str, Any]:
            return summary["counts"]

        report(wait.output)

    scenario()


sync_dag("confirma_e2e_sync", "confirma_e2e_sync")
sync_dag("confirma_e2e_auth", "confirma_e2e_auth", retries=1)
sync_dag("confirma_e2e_trigger_retries", "confirma_e2e_flaky", retries=1)
sync_dag("confirma_e2e_submit_retries", "confirma_e2e_down", retries=1)
sync_dag("confirma_e2e_sync_failed", "confirma_e2e_failing")


@dag(
    dag_id="confirma_e2e_canary",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["confirma-e2e"],
)
def confirma_e2e_canary() -> None:
    @task
    def leak_canary() -> dict[str, str]:
        password = BaseHook.get_connection("confirma_e2e_canary").password or ""
        print(f"canary secret, leaked on purpose: {password}")
        return {"canary": password}

    leak_canary()


confirma_e2e_canary()


SYNCED = Asset(
    name="confirma_e2e_synced_payments",
    uri="confirma://accounting/payment/e2e-synced",
    watchers=[
        AssetWatcher(
            name="confirma_e2e_watcher",
            trigger=ConfirmaPaymentSyncEventTrigger(confirma_conn_id="confirma_e2e_events", poll_interval=1),
        )
    ],
)


@dag(
    dag_id="confirma_e2e_events",
    schedule=[SYNCED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    max_active_runs=1,
    tags=["confirma-e2e-events"],
)
def confirma_e2e_events() -> None:
    @task
    def newly_synced(**context: Any) -> list[str]:
        """The identifiers of the batches behind this run (the script checks them)."""
        found: set[str] = set()
        for event in context["triggering_asset_events"][SYNCED]:
            found.update(event.extra["payload"]["identifiers"])
        return sorted(found)

    newly_synced()


confirma_e2e_events()
