"""Reconcile a day: the agency's payments and settlements of the data interval, summarised.

Settlements are the authoritative source (the docs warn that payment allocations can still
change), so the summary matches each settled allocation to the payments seen for its invoice.
Amounts stay decimal text end to end; sums are computed with ``Decimal``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_confirma.operators.payments import ConfirmaGetPaymentsOperator, ConfirmaGetSettlementsOperator

#: The task log: a line logged here shows in the task's log where it happens (a print shows at its end).
log = logging.getLogger("example_confirma_reconciliation")  # a plain name: a DAG file's __name__ is mangled by Airflow


@dag(
    dag_id="example_confirma_reconciliation",
    # Daily at midnight UTC; the data interval is the day that has just ended, which the operators
    # send as fromDate = toDate = that day. Consecutive runs never overlap.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "confirma"],
)
def example_confirma_reconciliation() -> None:
    payments = ConfirmaGetPaymentsOperator(task_id="payments")  # fromDate/toDate = data interval
    settlements = ConfirmaGetSettlementsOperator(task_id="settlements")

    @task
    def summarise(payments: dict[str, Any], settlements: dict[str, Any]) -> dict[str, Any]:
        paid_invoices = {str(p.get("invoiceNumber")) for p in payments["records"]}
        settled: dict[str, Decimal] = {}
        unmatched: list[str] = []
        for settlement in settlements["records"]:
            for allocation in settlement.get("allocations") or []:
                invoice = str(allocation.get("originalInvoiceNumber"))
                currency = allocation.get("currency") or settlement.get("currency")
                settled[currency] = settled.get(currency, Decimal("0")) + Decimal(allocation["allocatedTotalAmount"])
                if invoice not in paid_invoices:
                    unmatched.append(invoice)
        result = {
            "window": payments["summary"]["window"],
            "payments": payments["summary"]["total"],
            "settlements": settlements["summary"]["total"],
            "settled_by_currency": {cur: str(amount) for cur, amount in sorted(settled.items())},
            "settlement_totals": settlements["summary"]["totals"],
            "settled_invoices_without_payment_in_window": sorted(set(unmatched))[:100],
        }
        log.info("reconciliation: %s", result)
        return result

    summarise(payments.output, settlements.output)


example_confirma_reconciliation()
