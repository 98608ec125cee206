"""Submit payments to the accounting sync, wait (deferred) until they are synced, report them.

Then a second DAG, scheduled on the ``confirma://accounting/payment`` asset that the sensor emits,
runs whenever payments have been synced.

Run it offline against the sandbox: ``make demo`` (or ``confirma-sandbox`` and export the
``AIRFLOW_CONN_CONFIRMA_DEFAULT`` it prints, then ``airflow dags test example_confirma_payment_sync``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_confirma.assets import PAYMENT_SYNC_ASSET
from airflow_provider_confirma.operators.accounting import ConfirmaSubmitPaymentsOperator
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

#: The task log: a line logged here shows in the task's log where it happens (a print shows at its end).
log = logging.getLogger("example_confirma_payment_sync")  # a plain name: a DAG file's __name__ is mangled by Airflow

# Identifiers are unique per run, so that every run submits new payments; a retry of the same run
# reuses them, and the submit operator then skips what Confirma already has.
PAYMENTS = [
    {
        "paymentIdentifier": f"pay-{{{{ dag_run.run_after.strftime('%Y%m%dT%H%M%S') }}}}-{n}",
        "invoiceNumber": invoice,
        "paymentDate": "{{ ds }}",
        "bookingDate": "{{ ds }}",
        "amount": amount,  # decimal text: exact on the wire, never a float
        "currency": "EUR",
        "targetIdentifier": "invoicenumber",
        "paymentReference": f"RF18{invoice}",
        "sourceName": "Example Buyer Oy",
    }
    for n, (invoice, amount) in enumerate([("10001", "100.10"), ("10002", "249.90"), ("10003", "12.00")], 1)
]


@dag(
    dag_id="example_confirma_payment_sync",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "confirma"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
)
def example_confirma_payment_sync() -> None:
    submit = ConfirmaSubmitPaymentsOperator(task_id="submit_payments", payments=PAYMENTS)

    wait = ConfirmaPaymentSyncSensor(
        task_id="wait_for_sync",
        source_identifiers=submit.output,
        deferrable=True,  # waits in the triggerer, not in a worker slot
        poke_interval=2,
        timeout=600,
        emit_asset=True,
    )

    @task
    def report(summary: dict[str, Any]) -> dict[str, Any]:
        """What a downstream task sees: counts, the records and how long the wait took."""
        for record in summary["records"]:
            log.info("%s: %s (synced %s)", record["sourceIdentifier"], record["description"], record["syncDate"])
        log.info("counts: %s; waited %.1fs", summary["counts"], summary["waited_seconds"])
        return summary["counts"]

    report(wait.output)


@dag(
    dag_id="example_confirma_payment_sync_consumer",
    schedule=[PAYMENT_SYNC_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "confirma"],
)
def example_confirma_payment_sync_consumer() -> None:
    @task
    def on_synced_payments(**context: Any) -> int:
        """Runs when payments were synced; each asset event's extra counts and names them."""
        events = context["triggering_asset_events"][PAYMENT_SYNC_ASSET]
        count = 0
        for event in events:
            count += event.extra["synced"]
            log.info("%s payments synced: %s", event.extra["synced"], ", ".join(event.extra["identifiers"]))
        log.info("%s payments synced to the accounting system", count)
        return count

    on_synced_payments()


example_confirma_payment_sync()
example_confirma_payment_sync_consumer()
