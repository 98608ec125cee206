"""Submit one ledger (journal) document to the accounting sync, wait (deferred) until it is synced, report it.

The document is the documented shape (confirma-api.md §8.2): two balanced rows, amounts as
decimal text (exact on the wire, never a float). The sensor emits ``confirma://accounting/ledger``
when the document is synced, so other DAGs can be scheduled on it.

Run it offline against the sandbox: ``confirma-sandbox`` and export the
``AIRFLOW_CONN_CONFIRMA_DEFAULT`` it prints, then ``airflow dags test example_confirma_ledger_sync``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_confirma.operators.accounting import ConfirmaSubmitLedgerOperator
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor

#: The task log: a line logged here shows in the task's log where it happens (a print shows at its end).
log = logging.getLogger("example_confirma_ledger_sync")  # a plain name: a DAG file's __name__ is mangled by Airflow

# The identifier is unique per run, so that every run submits a new document; a retry of the same
# run reuses it, and the submit operator then skips it if Confirma already has it.
LEDGER = {
    "ledgerIdentifier": "ml-{{ dag_run.run_after.strftime('%Y%m%dT%H%M%S') }}",
    "companyIdentifier": "7654321-0",
    "documentType": "ML",
    "documentName": "{{ ds_nodash }}",
    "documentDate": "{{ ds }}",
    "documentDescription": "Daily sales {{ ds }}",
    "calculationMode": "GROSS",
    "ledgerRows": [
        {
            "bookingDate": "{{ ds }}",
            "accountNumber": "1700",
            "vatPercentage": "0",
            "vatCode": "",
            "amount": "124.00",
            "netAmount": "124.00",
            "isVatRow": 0,
            "ledgerDimensions": [{"dimensionType": "COST_CENTER", "dimensionValue": "10"}],
        },
        {
            "bookingDate": "{{ ds }}",
            "accountNumber": "3000",
            "vatPercentage": "24",
            "vatCode": "20",
            "amount": "-124.00",
            "netAmount": "-100.00",
            "isVatRow": 0,
            "ledgerDimensions": [],
        },
    ],
}


@dag(
    dag_id="example_confirma_ledger_sync",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "confirma"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
)
def example_confirma_ledger_sync() -> None:
    submit = ConfirmaSubmitLedgerOperator(task_id="submit_ledger", ledger=LEDGER)  # returns [ledgerIdentifier]

    wait = ConfirmaLedgerSyncSensor(
        task_id="wait_for_sync",
        source_identifiers=submit.output,
        deferrable=True,  # waits in the triggerer, not in a worker slot
        poke_interval=2,
        timeout=600,
        emit_asset=True,
    )

    @task
    def report(summary: dict[str, Any]) -> dict[str, Any]:
        """What a downstream task sees: the document's sync state and how long the wait took."""
        for record in summary["records"]:
            log.info(
                "%s (%s, %s): %s (synced %s)",
                record["sourceIdentifier"],
                record["documentName"],
                record["documentStatus"],
                record["description"],
                record["syncDate"],
            )
        log.info("counts: %s; waited %.1fs", summary["counts"], summary["waited_seconds"])
        return summary["counts"]

    report(wait.output)


example_confirma_ledger_sync()
