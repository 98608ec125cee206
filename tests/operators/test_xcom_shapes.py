"""The XCom table of docs/operators.md is what the tasks return: each task runs against the sandbox
(real HTTP), and the keys of its XCom value are compared with its row (``summary.x`` is key ``x`` of
``summary``; ``*`` marks a key present only when a list was cut, so it may be absent)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_confirma.assets import ASSET_EXTRA_IDENTIFIERS, sync_asset_extra
from airflow_provider_confirma.operators.accounting import (
    ConfirmaGetLedgerSyncStatusOperator,
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitLedgerOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.invoices import (
    ConfirmaCreateInvoiceActionOperator,
    ConfirmaCreateInvoiceOperator,
    ConfirmaGetCaseDetailsOperator,
    ConfirmaGetDistributionInfoOperator,
)
from airflow_provider_confirma.operators.payments import ConfirmaGetPaymentsOperator, ConfirmaGetSettlementsOperator
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

from .conftest import TINY_POLICY, run
from .test_accounting import ledger_doc, payment
from .test_invoices import INVOICE

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
ROW = re.compile(r"^\| (`Confirma[^|]*) \| ([^|]*) \| [^|]* \|$")


def documented_shapes() -> dict[str, tuple[set[str], set[str]]]:
    """Task name -> (keys always present, keys that may be absent); no keys: the value is a list."""
    text = DOC.read_text().split("## XCom values: one family", 1)[1].split("\n## ", 1)[0]
    shapes: dict[str, tuple[set[str], set[str]]] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        keys = re.findall(r"`([A-Za-z_.]+)`(\*?)", match.group(2))
        required = {key for key, optional in keys if not optional}
        optional = {key for key, optional in keys if optional}
        for task in re.findall(r"`(Confirma\w+)`", match.group(1)):
            shapes[task] = (required, optional)
    return shapes


def xcom_keys(value: Any) -> set[str] | None:
    """The keys of an XCom value as the table names them (``None``: a list)."""
    if isinstance(value, list):
        return None
    keys = set(value) - {"summary"}
    return keys | {f"summary.{key}" for key in value.get("summary") or {}}


@pytest.fixture
def outputs(confirma_sandbox_conn, context) -> dict[str, Any]:
    """The XCom value of every task of the table, run against the sandbox."""
    sandbox = confirma_sandbox_conn
    policy = {"http_retry_policy": TINY_POLICY}
    out: dict[str, Any] = {}
    out["ConfirmaSubmitPaymentsOperator"] = run(
        ConfirmaSubmitPaymentsOperator(task_id="submit", payments=[payment("pay-1")], **policy), context()
    )
    out["ConfirmaSubmitLedgerOperator"] = run(
        ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=ledger_doc("lg-1"), **policy), context()
    )
    sandbox.sync_now()
    out["ConfirmaGetPaymentSyncStatusOperator"] = run(
        ConfirmaGetPaymentSyncStatusOperator(task_id="ps", source_identifiers=["pay-1"], **policy), context()
    )
    out["ConfirmaGetLedgerSyncStatusOperator"] = run(
        ConfirmaGetLedgerSyncStatusOperator(task_id="ls", source_identifiers=["lg-1"], **policy), context()
    )
    out["ConfirmaPaymentSyncSensor"] = ConfirmaPaymentSyncSensor(
        task_id="wait", source_identifiers=["pay-1"], poke_interval=0.05, timeout=10, **policy
    ).execute({})
    out["ConfirmaLedgerSyncSensor"] = ConfirmaLedgerSyncSensor(
        task_id="wait_ledger", source_identifiers=["lg-1"], poke_interval=0.05, timeout=10, **policy
    ).execute({})
    anchor = pendulum.today("UTC")
    interval = (anchor.subtract(days=70), anchor.add(days=1))
    out["ConfirmaGetPaymentsOperator"] = run(ConfirmaGetPaymentsOperator(task_id="p", **policy), context(interval))
    out["ConfirmaGetSettlementsOperator"] = run(
        ConfirmaGetSettlementsOperator(task_id="s", **policy), context(interval)
    )
    created = run(ConfirmaCreateInvoiceOperator(task_id="invoice", invoice=INVOICE), context())
    out["ConfirmaCreateInvoiceOperator"] = created
    case_id = created["response"]["caseId"]
    action = {"code": "DIRECTPAYMENT", "comment": "paid", "data": {"invoiceNumber": 10001, "caseId": case_id,
              "amount": "50.00", "currency": "EUR", "paymentDate": "2026-02-01"}}  # fmt: skip
    out["ConfirmaCreateInvoiceActionOperator"] = run(
        ConfirmaCreateInvoiceActionOperator(task_id="action", actions=[action]), context()
    )
    out["ConfirmaGetCaseDetailsOperator"] = run(
        ConfirmaGetCaseDetailsOperator(task_id="case", case_id=case_id, **policy), context()
    )
    out["ConfirmaGetDistributionInfoOperator"] = run(
        ConfirmaGetDistributionInfoOperator(task_id="dist", from_date="2026-01-01", to_date="2026-01-31", **policy),
        context(),
    )
    return out


def test_the_xcom_table_names_every_task_and_each_ones_keys(outputs: dict[str, Any]) -> None:
    shapes = documented_shapes()
    assert set(shapes) == set(outputs)  # every task has a row, every row a task
    for task, value in outputs.items():
        required, optional = shapes[task]
        keys = xcom_keys(value)
        if not required:
            assert keys is None, f"{task}: the table says a list, it returned {sorted(keys or [])}"
            continue
        assert keys is not None, f"{task}: returned a list, the table names keys"
        assert required <= keys <= required | optional, (task, sorted(keys ^ required))


def test_the_same_idea_has_the_same_key_across_the_family(outputs: dict[str, Any]) -> None:
    sensor, status = outputs["ConfirmaPaymentSyncSensor"], outputs["ConfirmaGetPaymentSyncStatusOperator"]
    for key in ("outcome", "counts", "failures", "missing", "missing_omitted", "unreadable", "records_omitted"):
        assert sensor[key] == status["summary"][key], key  # the same wait, judged by both
    assert [r["sourceIdentifier"] for r in sensor["records"]] == [r["sourceIdentifier"] for r in status["records"]]
    for task in ("ConfirmaGetPaymentsOperator", "ConfirmaGetSettlementsOperator"):
        head = outputs[task]["summary"]
        assert head["records_omitted"] == head["omitted"]


def test_the_asset_extra_is_one_function_of_either_xcom_shape(outputs: dict[str, Any]) -> None:
    sensor, status = outputs["ConfirmaPaymentSyncSensor"], outputs["ConfirmaGetPaymentSyncStatusOperator"]
    expected = {"synced": 1, "identifiers": ["pay-1"]}
    assert sync_asset_extra(sensor, {1}) == sync_asset_extra(status, {1}) == expected
    many = {"counts": {"synced": 150}, "records": [{"sourceIdentifier": f"p{i}", "status": 1} for i in range(150)]}
    extra = sync_asset_extra(many, {1})
    assert extra["synced"] == 150
    assert len(extra["identifiers"]) == ASSET_EXTRA_IDENTIFIERS == 100
