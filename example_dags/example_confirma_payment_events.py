"""Run a DAG whenever payments newly sync, with no task waiting: an asset watched by a Confirma trigger.

The triggerer polls ``GET /accounting/payment`` (one poll for every watcher of the same connection
and query) and adds one event to the ``confirma_synced_payments`` asset for each batch of payments
that newly synced, never again for the same payments. This DAG runs on those events, reads the
payments with the status operator and reconciles them. Delivery is at least once, so the DAG
dedupes by batch key and identifier (docs/events.md).

Needs a running triggerer (``airflow triggerer``) and the DAG unpaused; arguments of a watcher's
trigger are fixed when the file is parsed (no templates).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_provider_confirma.operators.accounting import ConfirmaGetPaymentSyncStatusOperator
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncEventTrigger

log = logging.getLogger("example_confirma_payment_events")  # a plain name: a DAG file's __name__ is mangled by Airflow

SYNCED_PAYMENTS = Asset(
    name="confirma_synced_payments",
    uri="confirma://accounting/payment/synced",
    watchers=[
        AssetWatcher(
            name="confirma_payment_sync_watcher",
            trigger=ConfirmaPaymentSyncEventTrigger(confirma_conn_id="confirma_default", poll_interval=60),
        )
    ],
)


@dag(
    dag_id="example_confirma_payment_events",
    schedule=[SYNCED_PAYMENTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "confirma"],
)
def example_confirma_payment_events() -> None:
    @task
    def newly_synced(**context: Any) -> list[str]:
        """The payments of the batches behind this run: each batch once, each identifier once."""
        batches: set[str] = set()
        identifiers: dict[str, None] = {}
        for event in context["triggering_asset_events"][SYNCED_PAYMENTS]:
            batch = event.extra["payload"]
            if batch["batch_key"] in batches:  # delivered twice (at least once): count it once
                continue
            batches.add(batch["batch_key"])
            identifiers.update(dict.fromkeys(batch["identifiers"]))
            if batch["omitted"]:  # a huge batch lists the first identifiers only
                log.warning("%s: %d more synced payments not listed", batch["batch_key"], batch["omitted"])
        log.info("%d newly synced payments in %d batches", len(identifiers), len(batches))
        return list(identifiers)

    read = ConfirmaGetPaymentSyncStatusOperator(task_id="read_payments", source_identifiers=newly_synced())

    @task
    def reconcile(result: dict[str, Any]) -> dict[str, int]:
        """Idempotent per payment (a batch delivered again reconciles the same rows again)."""
        for row in result["records"]:
            log.info("%s: invoice %s, synced %s", row["sourceIdentifier"], row["invoiceNumber"], row["syncDate"])
        return result["summary"]["counts"]

    reconcile(read.output)


example_confirma_payment_events()
