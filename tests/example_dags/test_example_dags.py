"""The example DAGs (``example_dags/``): they parse, and each runs to success with ``dag.test()``
against the sandbox.

The example files are copied unchanged into the tests' DAGs folder and run as they are (deferrable
sensors with ``poke_interval=2``). The sandbox keeps submitted records pending until the test
settles them, once the sandbox has served ``SETTLE_AFTER_GETS`` status reads: the submit
operator's check for known identifiers, the sensor's first check on the worker, then the trigger's
first poll. So every wait really defers and resumes through ``execute_complete``, however fast or
slow the machine. Expectations are computed from what the sandbox stored or seeded, not from the
DAGs' own code.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_confirma.assets import LEDGER_SYNC_ASSET_URI, PAYMENT_SYNC_ASSET_URI
from airflow_provider_confirma.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_confirma.endpoints import Endpoint
from tests.airflow_compat import only_on_airflow_3_3
from tests.dag_helpers import (
    DAGS_FOLDER_BUNDLE,
    dags_folder,
    load_dag,
    parse_bundle,
    read_run,
    request_key,
    run_dag,
    settle_after_gets,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
EXAMPLE_DAG_IDS = {
    "example_confirma_ledger_sync",
    "example_confirma_payment_events",
    "example_confirma_payment_sync",
    "example_confirma_payment_sync_consumer",
    "example_confirma_reconciliation",
}
CONSUMER = "example_confirma_payment_sync_consumer"
EVENTS = "example_confirma_payment_events"
SETTLE_AFTER_GETS = 3
KEY_MARKER = "confirma-sandbox-key"
#: the reconciliation window: seeded data around a fixed anchor (a Monday)
ANCHOR = date(2026, 3, 16)
SEED_INVOICES = 40


def install_example(filename: str) -> Path:
    """Copy an example file, unchanged, into the DAGs folder that ``dag.test()`` syncs."""
    target = dags_folder() / filename
    shutil.copyfile(EXAMPLES / filename, target)
    return target


def load_example_module(filename: str) -> Any:
    """The example file as a module, to read its inputs (payments, ledger document)."""
    spec = importlib.util.spec_from_file_location(f"_example_{Path(filename).stem}", EXAMPLES / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_date(result: Any) -> str:
    """The run's ``{{ ds }}``."""
    return result.dag_run.logical_date.date().isoformat()


@pytest.fixture
def sandbox(confirma_sandbox):
    confirma_sandbox.configure(sync_delay=3600)
    return confirma_sandbox


# -- parsing ---------------------------------------------------------------------------------------
def test_example_dags_parse_without_import_errors(airflow_db):
    bag = parse_bundle(EXAMPLES, EXAMPLES, "example_dags")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == EXAMPLE_DAG_IDS
    assert {Path(dag.fileloc).name for dag in bag.dags.values()} == {p.name for p in EXAMPLES.glob("*.py")}
    for dag in bag.dags.values():
        assert {"example", "confirma"} <= set(dag.tags), dag.dag_id
        assert dag.catchup is False, dag.dag_id


# -- payment sync, and the consumer it triggers ----------------------------------------------------
def set_paused(dag_id: str, paused: bool) -> None:
    """Pause or unpause ``dag_id`` (synced to the DB first) and drop any queued run of it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, update

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = manager.get_bundle(DAGS_FOLDER_BUNDLE)
    bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
    assert dag_id in bag.dags, bag.import_errors
    sync_bag_to_db(bag, bundle.name, bundle.version)
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))
        session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id))


@pytest.fixture
def consumer_unpaused(airflow_db) -> Iterator[Path]:
    """The payment example installed, its consumer unpaused (as when deployed), paused again after."""
    path = install_example("example_confirma_payment_sync.py")
    if not AIRFLOW_V_3_3_PLUS:  # the consumer's run is driven through 3.3's scheduler internals
        yield path
        return
    set_paused(CONSUMER, False)
    try:
        yield path
    finally:
        set_paused(CONSUMER, True)  # later DAG runs emitting the payment asset queue nothing


def queued_asset_uris(dag_id: str) -> list[str]:
    """The assets whose events queue a run of ``dag_id`` (what the scheduler turns into a run)."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.scalars(
                select(AssetModel.uri)
                .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
                .where(AssetDagRunQueue.target_dag_id == dag_id)
            )
        )


def run_asset_triggered(path: Path, dag_id: str) -> Any:
    """Let the scheduler create the asset-triggered run of ``dag_id`` from its queue, then run its
    tasks in this process the way ``dag.test()`` does; returns the run read back from the DB."""
    from airflow.executors.local_executor import LocalExecutor
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    sdk_dag = load_dag(path, dag_id)
    runner = SchedulerJobRunner(job=Job(), executors=[LocalExecutor()])
    with create_session() as session:
        dag_model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id))
        before = set(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)))
        runner._create_dag_runs_asset_triggered(dag_models=[dag_model], session=session)
    with create_session() as session:
        (run,) = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id.not_in(before)))
        assert run.run_type == DagRunType.ASSET_TRIGGERED
        consumed = [(event.asset.uri, event.extra) for event in run.consumed_asset_events]
        run.state = DagRunState.RUNNING
        session.flush()
        tis = run.get_task_instances(session=session)
        for ti in tis:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
    for ti in tis:
        _run_task(ti=ti, task=sdk_dag.task_dict[ti.task_id], run_triggerer=True)
    return read_run(run), consumed


def test_payment_sync_example_runs_and_triggers_its_consumer(consumer_unpaused, sandbox, caplog):
    path = consumer_unpaused
    with settle_after_gets(sandbox, Endpoint.PAYMENT_SYNC_STATUS, SETTLE_AFTER_GETS) as seen, caplog.at_level("INFO"):
        result = run_dag(path, "example_confirma_payment_sync", conn_env=sandbox.conn_env())
    assert result.task_states == {"submit_payments": "success", "wait_for_sync": "success", "report": "success"}
    assert result.state == "success"
    assert seen["result"] == 3  # settled by the test, after the trigger's first poll: the wait deferred

    stored = sandbox.records()["payments"]
    identifiers = [p["sourceIdentifier"] for p in stored]
    assert result.xcom("submit_payments") == identifiers
    assert len(set(identifiers)) == 3 and all(i.startswith("pay-") for i in identifiers)
    # Decimal text in the DAG file, exact numbers on the wire (the sandbox parses them as Decimal).
    example = load_example_module("example_confirma_payment_sync.py")
    assert [p["submitted"]["amount"] for p in stored] == [Decimal(p["amount"]) for p in example.PAYMENTS]
    assert {p["submitted"]["paymentDate"] for p in stored} == {run_date(result)}
    summary = result.xcom("wait_for_sync")
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 3, "synced": 3, "pending": 0, "failed": 0, "missing": 0}
    assert [r["sourceIdentifier"] for r in summary["records"]] == identifiers
    assert result.xcom("report") == summary["counts"]
    # The report goes through the task's logger (a print would show only at the end of the task log).
    reported = [r.getMessage() for r in caplog.records if r.name.endswith("example_confirma_payment_sync")]
    assert [line.split(":")[0] for line in reported[:3]] == identifiers
    assert reported[3] == f"counts: {summary['counts']}; waited {summary['waited_seconds']:.1f}s"
    assert sandbox.stats()["duplicates"]["total"] == 0
    assert KEY_MARKER not in repr(result.xcoms)

    extra = {"synced": 3, "identifiers": identifiers}
    assert result.asset_events == [{"task_id": "wait_for_sync", "uri": PAYMENT_SYNC_ASSET_URI, "extra": extra}]
    if not AIRFLOW_V_3_3_PLUS:
        return  # below: the scheduler queues and runs the consumer (3.3 internals)
    assert queued_asset_uris(CONSUMER) == [PAYMENT_SYNC_ASSET_URI]

    consumer, consumed = run_asset_triggered(path, CONSUMER)
    assert consumed == [(PAYMENT_SYNC_ASSET_URI, extra)]
    assert consumer.task_states == {"on_synced_payments": "success"}
    assert consumer.xcom("on_synced_payments") == 3
    assert queued_asset_uris(CONSUMER) == []  # consumed by the run


# -- payment events: an asset watched by the event trigger ------------------------------------------
def add_trigger_event(asset_name: str, payload: dict[str, Any]) -> None:
    """An asset event as the triggerer stores a watcher's event (``Trigger.submit_event``)."""
    from airflow.assets.manager import AssetManager
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.name == asset_name)).one()
        extra = {"from_trigger": True, "payload": payload}
        AssetManager.register_asset_change(asset=asset.to_serialized(), extra=extra, session=session)


@only_on_airflow_3_3("the asset-triggered run is created through the 3.3 scheduler's internals")
def test_payment_events_example_reconciles_the_batch_its_trigger_fired(airflow_db, sandbox, monkeypatch):
    import asyncio

    path = install_example("example_confirma_payment_events.py")
    set_paused(EVENTS, False)
    example = load_example_module("example_confirma_payment_events.py")
    trigger = example.SYNCED_PAYMENTS.watchers[0].trigger
    for name, value in sandbox.conn_env().items():
        monkeypatch.setenv(name, value)
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    hook = ConfirmaHook()
    submitted = [p["paymentIdentifier"] for p in example_payments()]
    hook.submit_payments({"payments": example_payments()})
    sandbox.sync_now()

    async def first_batch() -> dict[str, Any]:
        return (await anext(trigger.run())).payload  # type: ignore[arg-type]

    batch = asyncio.run(first_batch())
    assert (batch["count"], batch["identifiers"], batch["omitted"]) == (3, sorted(submitted), 0)
    try:
        add_trigger_event(example.SYNCED_PAYMENTS.name, batch)
        consumer, consumed = run_asset_triggered(path, EVENTS)
    finally:
        set_paused(EVENTS, True)
    assert [extra["payload"] for _, extra in consumed] == [batch]
    assert consumer.task_states == {"newly_synced": "success", "read_payments": "success", "reconcile": "success"}
    assert consumer.xcom("newly_synced") == sorted(submitted)
    assert consumer.xcom("reconcile") == {"total": 3, "synced": 3, "pending": 0, "failed": 0, "missing": 0}
    assert KEY_MARKER not in repr(consumer.xcoms)


def example_payments() -> list[dict[str, Any]]:
    """Three payments of the documented shape (amounts as decimal text)."""
    payment = load_example_module("example_confirma_payment_sync.py").PAYMENTS[0]
    return [
        {
            **payment,
            "paymentIdentifier": f"pay-event-{n}",
            "paymentDate": "2026-02-02",
            "bookingDate": "2026-02-02",
            "amount": Decimal(payment["amount"]),
        }
        for n in range(3)
    ]


# -- ledger sync -----------------------------------------------------------------------------------
def test_ledger_sync_example_runs_to_synced(airflow_db, sandbox):
    path = install_example("example_confirma_ledger_sync.py")
    with settle_after_gets(sandbox, Endpoint.LEDGER_SYNC_STATUS, SETTLE_AFTER_GETS) as seen:
        result = run_dag(path, "example_confirma_ledger_sync", conn_env=sandbox.conn_env())
    assert result.task_states == {"submit_ledger": "success", "wait_for_sync": "success", "report": "success"}
    assert result.state == "success"
    assert seen["result"] == 1

    (stored,) = sandbox.records()["ledgers"]
    (ledger_id,) = result.xcom("submit_ledger")
    assert stored["sourceIdentifier"] == ledger_id and ledger_id.startswith("ml-")
    document = stored["submitted"]
    assert document["documentDate"] == run_date(result)
    assert (document["documentType"], document["calculationMode"]) == ("ML", "GROSS")
    example = load_example_module("example_confirma_ledger_sync.py")
    amounts = [row["amount"] for row in document["ledgerRows"]]
    assert amounts == [Decimal(row["amount"]) for row in example.LEDGER["ledgerRows"]]  # exact, not floats
    assert sum(amounts) == 0  # balanced
    summary = result.xcom("wait_for_sync")
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 1, "synced": 1, "pending": 0, "failed": 0, "missing": 0}
    (record,) = summary["records"]
    assert record["sourceIdentifier"] == ledger_id
    assert record["status"] == 1 and record["syncDate"]
    assert record["documentStatus"] == "Approved"
    assert result.xcom("report") == summary["counts"]
    assert result.asset_events == [
        {"task_id": "wait_for_sync", "uri": LEDGER_SYNC_ASSET_URI, "extra": {"synced": 1, "identifiers": [ledger_id]}}
    ]
    assert KEY_MARKER not in repr(result.xcoms)


# -- reconciliation --------------------------------------------------------------------------------
def expected_reconciliation(payments: list[dict[str, Any]], settlements: list[dict[str, Any]], day: date) -> dict:
    """The summary of ``day`` from the sandbox's seeded records, computed here, not by the DAG."""
    paid = [p for p in payments if p["paymentDate"][:10] == day.isoformat()]
    settled = [s for s in settlements if s["settlementDate"] == day.isoformat()]
    allocations = [a for s in settled for a in s["allocations"]]
    by_currency: dict[str, Decimal] = {}
    for allocation in allocations:
        by_currency[allocation["currency"]] = by_currency.get(allocation["currency"], Decimal(0)) + Decimal(
            allocation["allocatedTotalAmount"]
        )
    totals: dict[str, Decimal] = {}
    for settlement in settled:
        totals[settlement["currency"]] = totals.get(settlement["currency"], Decimal(0)) + settlement["settlementAmount"]
    paid_invoices = {p["invoiceNumber"] for p in paid}
    return {
        "window": {"fromDate": day.isoformat(), "toDate": day.isoformat()},
        "payments": len(paid),
        "settlements": len(settled),
        "settled_by_currency": {cur: f"{amount:.2f}" for cur, amount in sorted(by_currency.items())},
        "settlement_totals": {cur: f"{amount:.2f}" for cur, amount in sorted(totals.items())},
        "settled_invoices_without_payment_in_window": sorted(
            {a["originalInvoiceNumber"] for a in allocations} - paid_invoices
        ),
    }


def test_reconciliation_example_summarises_the_seeded_window(airflow_db, sandbox):
    sandbox.configure(seed_invoices=SEED_INVOICES, anchor_date=ANCHOR.isoformat())
    payments, settlements = sandbox.state.seed_payments, sandbox.state.seed_settlements
    # The latest settlement run on a day that also has payments: both sides of the summary are non-empty.
    paid_days = {p["paymentDate"][:10] for p in payments}
    day = max(date.fromisoformat(s["settlementDate"]) for s in settlements if s["settlementDate"] in paid_days)
    expected = expected_reconciliation(payments, settlements, day)
    assert expected["settlements"] >= 1 and expected["payments"] >= 1

    path = install_example("example_confirma_reconciliation.py")
    # The run at midnight after ``day``: its data interval is ``day``.
    logical_date = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    result = run_dag(path, "example_confirma_reconciliation", conn_env=sandbox.conn_env(), logical_date=logical_date)
    assert result.task_states == {"payments": "success", "settlements": "success", "summarise": "success"}
    summary = result.xcom("summarise")
    assert summary == expected
    assert summary["settled_by_currency"] == summary["settlement_totals"]  # allocations add up to the payouts
    # One read each; the sandbox filters by the window it was sent, so the counts above prove it arrived.
    requests = sandbox.stats()["requests"]
    assert (requests[request_key(Endpoint.PAYMENTS)], requests[request_key(Endpoint.SETTLEMENTS)]) == (1, 1)
    assert len(payments) > expected["payments"] and len(settlements) > expected["settlements"]
