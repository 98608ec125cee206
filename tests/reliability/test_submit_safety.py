"""Submit safety (issue 13, items 1-3, the operator side): a POST whose outcome is unknown fails the
task without retries; a known identifier listed with other data fails the task and nothing is sent;
a later try after an uncertain attempt waits (bounded) for what that attempt may have sent and never
sends it again, failing closed when it does not appear; without a task state store the operator
warns and goes on.

The real-run cells use :class:`IngestServer`, a loopback accounting API that ingests asynchronously
(a POSTed record is listed only some status reads later) and can drop or outlast a POST after
reading its body, with ``dag.test()``: a second ``dag.test()`` of the same logical date clears the
task and runs it again in the same DAG run (a user's "Clear"), with Airflow's real task state store.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_confirma.endpoints import ENVIRONMENT_HOSTS, Endpoint
from airflow_provider_confirma.exceptions import ConfirmaRateLimitError, ConfirmaTransportError
from airflow_provider_confirma.operators.accounting import ConfirmaSubmitLedgerOperator, ConfirmaSubmitPaymentsOperator
from airflow_provider_confirma.operators.base import ConfirmaSubmissionUncertainError
from airflow_provider_confirma.operators.invoices import ConfirmaCreateInvoiceOperator
from tests.airflow_compat import needs_airflow_3_3
from tests.dag_helpers import environment, load_dag, logged_text, read_run, write_dag_file
from tests.reliability.helpers import StateStore, conn_json, policy

STAGING = ENVIRONMENT_HOSTS["staging"]
PAY_POST, PAY_STATUS = Endpoint.SUBMIT_PAYMENTS, Endpoint.PAYMENT_SYNC_STATUS
LEDGER_POST, LEDGER_STATUS = Endpoint.SUBMIT_LEDGER, Endpoint.LEDGER_SYNC_STATUS
KEY = "ck_submit_safety_SECRET_7f3a"
#: the task state store key of the attempt record (``operators.base.ATTEMPT_KEY``), as the docs name it
ATTEMPT_KEY = "confirma_submit_attempt"


def payment(ident: str, **changes: Any) -> dict[str, Any]:
    return {
        "paymentIdentifier": ident,
        "invoiceNumber": "900001",
        "paymentDate": "2026-02-02",
        "amount": "12.30",
        "currency": "EUR",
        **changes,
    }


def status_record(ident: str, status: int = 0, **changes: Any) -> dict[str, Any]:
    return {
        "sourceIdentifier": ident,
        "invoiceNumber": "900001",
        "paymentDate": "2026-02-02",
        "syncDate": None,
        "status": status,
        "description": "Pending",
        **changes,
    }


LEDGER = {
    "ledgerIdentifier": "lg-safety-1",
    "companyIdentifier": "7654321-0",
    "documentType": "ML",
    "documentName": "5001",
    "documentDate": "2026-01-31",
    "calculationMode": "GROSS",
    "ledgerRows": [
        {"bookingDate": "2026-01-31", "accountNumber": "1700", "amount": "124.00"},
        {"bookingDate": "2026-01-31", "accountNumber": "3000", "amount": "-124.00"},
    ],
}
INVOICE = {
    "processing": {"paymentControlEnabled": True},
    "distribution": {"method": "EMAIL", "enabled": True},
    "invoice": {
        "header": {"number": 810001, "date": "2026-11-20", "dueDate": "2026-12-04", "currencyCode": "EUR"},
        "parties": {"sellerParty": {"name": "Seller Oy"}, "buyerParty": {"name": "Buyer Oy"}},
    },
}


# -- a task context and a transport mock, for the cells that need no DAG run ---------------------------
def context(store: StateStore | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"outlet_events": OutletEventAccessors()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


@pytest.fixture
def api(confirma_conn_env) -> Iterator[responses.RequestsMock]:
    confirma_conn_env(
        "confirma_default", json.dumps({"conn_type": "confirma", "password": KEY, "extra": {"environment": "staging"}})
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def posts(api: responses.RequestsMock, endpoint: Endpoint = PAY_POST) -> list[Any]:
    return [c.request for c in api.calls if c.request.method == "POST" and endpoint.full_path in c.request.url]


def submit_payments(payments: list[dict[str, Any]], **kwargs: Any) -> ConfirmaSubmitPaymentsOperator:
    return ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments, http_retry_policy=policy(2), **kwargs)


# -- item 2: a known identifier with other data --------------------------------------------------------
@pytest.mark.parametrize(
    ("listed", "fields"),
    [
        ({"invoiceNumber": "900002"}, ["invoiceNumber '900002' at Confirma, '900001' submitted"]),
        ({"paymentDate": "2026-02-03"}, ["paymentDate '2026-02-03' at Confirma, '2026-02-02' submitted"]),
        ({"amount": 12.31}, ["amount 12.31 at Confirma, 12.30 submitted"]),
        ({"currency": "SEK"}, ["currency 'SEK' at Confirma, 'EUR' submitted"]),
        (
            {"invoiceNumber": "900009", "paymentDate": "2026-01-01", "amount": 99},
            ["invoiceNumber '900009' at Confirma", "paymentDate '2026-01-01' at Confirma", "amount 99 at Confirma"],
        ),
    ],
    ids=["invoiceNumber", "paymentDate", "amount", "currency", "three-fields"],
)
def test_a_corrected_payment_fails_naming_the_fields_and_nothing_is_sent(api, listed, fields) -> None:
    api.add(responses.GET, STAGING + PAY_STATUS.full_path, json={"payments": [status_record("pay-1", **listed)]})
    api.add(responses.POST, STAGING + PAY_POST.full_path, json={"accepted": True})
    op = submit_payments([payment("pay-1"), payment("pay-2")])  # pay-2 is new and fine: not sent either
    with pytest.raises(AirflowFailException) as info:
        op.execute(context(StateStore()))
    message = str(info.value)
    assert isinstance(info.value, AirflowFailException)
    assert "Confirma already lists 1 payment(s) of this payload with other data: pay-1 (" in message
    for fragment in fields:
        assert fragment in message
    assert "Nothing was sent" in message
    assert posts(api) == []


def test_equal_data_in_another_spelling_is_not_a_conflict(api) -> None:
    # amount 12.3 == 12.30 as Decimal; the date of a date-time is the date; the rest is exact text
    listed = status_record("pay-1", amount=12.3, currency="EUR", paymentDate="2026-02-02T00:00:00")
    api.add(responses.GET, STAGING + PAY_STATUS.full_path, json={"payments": [listed]})
    api.add(responses.POST, STAGING + PAY_POST.full_path, json={"accepted": True})
    assert submit_payments([payment("pay-1"), payment("pay-2")]).execute(context(StateStore())) == ["pay-1", "pay-2"]
    (post,) = posts(api)
    assert [p["paymentIdentifier"] for p in json.loads(post.body)["payments"]] == ["pay-2"]


def test_a_corrected_ledger_document_fails_naming_the_fields(api) -> None:
    api.add(
        responses.GET,
        STAGING + LEDGER_STATUS.full_path,
        json={
            "ledgers": [
                {"sourceIdentifier": "lg-safety-1", "documentDate": "2026-01-30", "documentName": "5002",
                 "documentStatus": "Approved", "syncDate": None, "status": 0, "description": "Pending"}
            ]
        },
    )  # fmt: skip
    api.add(responses.POST, STAGING + LEDGER_POST.full_path, json={})
    op = ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=LEDGER, http_retry_policy=policy(2))
    with pytest.raises(AirflowFailException) as info:
        op.execute(context(StateStore()))
    message = str(info.value)
    assert "lg-safety-1 (documentName '5002' at Confirma, '5001' submitted; documentDate '2026-01-30'" in message
    assert posts(api, LEDGER_POST) == []


def test_many_conflicts_are_named_bounded(api) -> None:
    records = [status_record(f"pay-{n}", invoiceNumber="X" * 500) for n in range(12)]
    api.add(responses.GET, STAGING + PAY_STATUS.full_path, json={"payments": records})
    with pytest.raises(AirflowFailException) as info:
        submit_payments([payment(f"pay-{n}") for n in range(12)]).execute(context(StateStore()))
    message = str(info.value)
    assert "12 payment(s)" in message and "(+7 more)" in message
    assert "X" * 100 not in message and len(message) < 2000


# -- item 1, the operator side: an uncertain POST fails without retries ---------------------------------
UNCERTAIN = {
    "read-timeout": {"body": requests.exceptions.ReadTimeout("read timed out")},
    "reset": {"body": requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")},
    "503": {"json": {"error": "upstream"}, "status": 503},
    "2xx-malformed-json": {"body": b'{"accepted": tru', "content_type": "application/json"},
    "2xx-wrong-content-type": {"body": b"<html>ok</html>", "content_type": "text/html"},
}
OPERATORS = {
    "payments": (PAY_STATUS, PAY_POST, lambda: submit_payments([payment("pay-1")])),
    "ledger": (
        LEDGER_STATUS,
        LEDGER_POST,
        lambda: ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=LEDGER, http_retry_policy=policy(2)),
    ),
    "invoice": (None, Endpoint.CREATE_INVOICE, lambda: ConfirmaCreateInvoiceOperator(task_id="inv", invoice=INVOICE)),
}


@pytest.mark.parametrize("operator", sorted(OPERATORS))
@pytest.mark.parametrize("fault", sorted(UNCERTAIN))
def test_an_uncertain_post_fails_without_retries_saying_what_to_check(api, operator, fault) -> None:
    status, post, build = OPERATORS[operator]
    if status is not None:
        api.add(responses.GET, STAGING + status.full_path, status=204)
    api.add(responses.POST, STAGING + post.full_path, **UNCERTAIN[fault])
    store = StateStore()
    with pytest.raises(ConfirmaSubmissionUncertainError) as info:
        build().execute(context(store))
    message = str(info.value)
    assert isinstance(info.value, AirflowFailException)  # Airflow does not retry it
    assert "may or may not have reached Confirma" in message
    assert "Failing without retries" in message
    assert len(posts(api, post)) == 1
    assert KEY not in message
    if status is not None:
        assert f"Before rerunning, check {status.value}" in message
        assert "or the Confirma UI for" in message
        assert store.values[ATTEMPT_KEY]["identifiers"] == ["pay-1" if operator == "payments" else "lg-safety-1"]
    else:
        assert "ConfirmaGetDistributionInfoOperator" in message


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"body": requests.exceptions.ConnectTimeout("connect timed out")}, ConfirmaTransportError),
        ({"json": {"message": "slow down"}, "status": 429}, ConfirmaRateLimitError),
    ],
    ids=["connect", "429"],
)
def test_a_post_that_was_never_processed_stays_retryable_and_clears_the_record(api, reply, error) -> None:
    api.add(responses.GET, STAGING + PAY_STATUS.full_path, status=204)
    api.add(responses.POST, STAGING + PAY_POST.full_path, **reply)
    store = StateStore()
    with pytest.raises(error) as info:
        submit_payments([payment("pay-1")]).execute(context(store))
    assert not isinstance(info.value, AirflowFailException)
    if error is ConfirmaTransportError:
        assert info.value.kind == "connect"
    assert ATTEMPT_KEY not in store.values  # the outcome is definite: the next try does not wait


def test_a_rejected_post_clears_the_record(api) -> None:
    api.add(responses.GET, STAGING + PAY_STATUS.full_path, status=204)
    api.add(responses.POST, STAGING + PAY_POST.full_path, json={"message": "bad"}, status=422)
    store = StateStore()
    with pytest.raises(AirflowFailException, match="rejected"):
        submit_payments([payment("pay-1")]).execute(context(store))
    assert ATTEMPT_KEY not in store.values


# -- item 3 without a task state store ------------------------------------------------------------------
def test_without_a_task_state_store_the_operator_warns_and_still_submits_once(api, capfd) -> None:
    api.add(responses.GET, STAGING + PAY_STATUS.full_path, status=204)
    api.add(responses.POST, STAGING + PAY_POST.full_path, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ConfirmaSubmissionUncertainError, match="No attempt was recorded") as info:
        submit_payments([payment("pay-1")]).execute(context(store=None))
    assert isinstance(info.value, AirflowFailException)  # still no task retry
    # a warning: "[warning  ] ..." on Airflow 3.3, "... WARNING - ..." before
    warning = "".join(line for line in capfd.readouterr().out.splitlines() if "warning" in line.lower())
    assert "No task state store in this task's context" in warning
    assert "protection across tries is reduced" in warning
    assert "can send it again" in warning
    assert len(posts(api)) == 1


def test_an_unreadable_attempt_record_fails_closed(api) -> None:
    api.add(responses.POST, STAGING + PAY_POST.full_path, json={"accepted": True})
    store = StateStore()
    store.values[ATTEMPT_KEY] = {"identifiers": "pay-1"}
    with pytest.raises(ConfirmaSubmissionUncertainError, match="holds no readable attempt record"):
        submit_payments([payment("pay-1")]).execute(context(store))
    assert len(api.calls) == 0  # not even the status read


def test_the_wait_arguments_are_checked_at_parse_time() -> None:
    from airflow_provider_confirma.exceptions import ConfirmaConfigError

    with pytest.raises(ConfirmaConfigError, match="previous_attempt_timeout"):
        submit_payments([payment("pay-1")], previous_attempt_timeout=-1)
    with pytest.raises(ConfirmaConfigError, match="previous_attempt_poll_interval"):
        submit_payments([payment("pay-1")], previous_attempt_poll_interval=0)
    op = submit_payments([payment("pay-1")], previous_attempt_timeout=0)
    assert (op.previous_attempt_timeout, op.previous_attempt_poll_interval) == (0.0, 15.0)


# -- item 3 in real DAG runs: a loopback API that ingests asynchronously ---------------------------------
class IngestServer:
    """A loopback ``/accounting/payment`` API whose POSTs are listed only ``listed_after`` status reads later.

    Each POST takes the next entry of ``post_faults`` (``ok`` when none is left): ``reset`` reads the
    whole body, stores it and closes the connection without answering; ``timeout`` stores it and
    answers only after ``stall`` seconds (past the client's read timeout).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gets = 0
        self.post_bodies: list[Any] = []
        self.records: dict[str, tuple[dict[str, Any], int]] = {}  # identifier -> (record, listed from GET n)
        self.listed_after = 0
        self.post_faults: list[str] = []
        self.stall = 1.5
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                with server.lock:
                    server.gets += 1
                    listed = [rec for rec, since in server.records.values() if server.gets >= since]
                self._reply(200, {"payments": listed})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with server.lock:
                    server.post_bodies.append(body)
                    fault = server.post_faults.pop(0) if server.post_faults else "ok"
                    for item in body["payments"]:
                        record = status_record(item["paymentIdentifier"], invoiceNumber=item["invoiceNumber"],
                                               paymentDate=item["paymentDate"])  # fmt: skip
                        server.records[item["paymentIdentifier"]] = (record, server.gets + server.listed_after)
                if fault == "reset":
                    self.close_connection = True
                    return
                if fault == "timeout":
                    time.sleep(server.stall)
                    self.close_connection = True
                    return
                self._reply(200, {"accepted": len(body["payments"])})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ingest-server", daemon=True)
        self.thread.start()

    @property
    def posts(self) -> int:
        return len(self.post_bodies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    server = IngestServer()
    yield server
    server.close()


DAG_SOURCE = '''
"""Submit-safety DAGs: a payment submit with task retries, waiting for an earlier attempt or not."""

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.operators.accounting import ConfirmaSubmitPaymentsOperator

TINY = RetryPolicy(max_attempts=2, max_total_seconds=5, backoff_initial=0.01, backoff_max=0.01, jitter=0.0,
                   retry_after_cap=0.01)
PAYMENTS = [
    {"paymentIdentifier": ident, "invoiceNumber": "900001", "paymentDate": "2026-02-02", "amount": "12.30",
     "currency": "EUR"}
    for ident in ("ss-1", "ss-2")
]

for dag_id, timeout in (("confirma_safety_waits", 30), ("confirma_safety_gives_up", 0.6)):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1),
             default_args={"retries": 3, "retry_delay": timedelta(seconds=0)}) as dag:
        ConfirmaSubmitPaymentsOperator(task_id="submit", payments=PAYMENTS, http_retry_policy=TINY,
                                       previous_attempt_timeout=timeout, previous_attempt_poll_interval=0.1)
    globals()[dag_id] = dag
'''
IDS = ["ss-1", "ss-2"]


@pytest.fixture(scope="module")
def dag_file(airflow_db):
    return write_dag_file(DAG_SOURCE, "confirma_submit_safety_dags.py")


def env(server: IngestServer) -> dict[str, str]:
    return {"AIRFLOW_CONN_CONFIRMA_DEFAULT": conn_json(server.url, KEY, timeout=0.5)}


def run(dag_file: Any, dag_id: str, server: IngestServer) -> Any:
    """A new DAG run with ``dag.test()`` (tasks run in this process, with Airflow's task state store)."""
    with environment(env(server)):
        return read_run(load_dag(dag_file, dag_id).test())


def clear_and_rerun(dag_file: Any, first: Any, server: IngestServer) -> Any:
    """What a user's "Clear" of the failed task does, then the scheduler: the task instance is
    cleared (its task state store, keyed by DAG run and task, is kept) and runs as the next try
    in the same DAG run, the way ``dag.test()`` runs a scheduled task."""
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    def submit_ti(session: Any) -> Any:
        query = select(TaskInstance).where(
            TaskInstance.dag_id == first.dag_id, TaskInstance.run_id == first.run_id, TaskInstance.task_id == "submit"
        )
        return session.scalar(query)

    with environment(env(server)), create_session() as session:
        dag = load_dag(dag_file, first.dag_id)
        clear_task_instances([submit_ti(session)], session, dag_run_state=DagRunState.RUNNING)
        session.commit()
        ti = submit_ti(session)
        ti.try_number += 1
        ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        _run_task(ti=ti, task=dag.task_dict["submit"])
    return read_run(first.dag_run)


@needs_airflow_3_3  # the rerun finds the attempt record in the task state store
@pytest.mark.parametrize("fault", ["reset", "timeout"])
def test_a_rerun_after_an_uncertain_post_waits_for_it_and_does_not_resend(dag_file, ingest, fault, capfd) -> None:
    ingest.post_faults = [fault]
    ingest.listed_after = 4  # listed from the 4th status read after the POST: the rerun's 1st read misses it
    first = run(dag_file, "confirma_safety_waits", ingest)
    output = logged_text(capfd)
    assert first.task_states == {"submit": "failed"}
    assert first.tasks["submit"].try_number == 1  # retries=3 unused: a retry could resend
    assert "may or may not have reached Confirma" in output
    assert "Clearing this task is safe" in output
    assert ingest.posts == 1

    rerun = clear_and_rerun(dag_file, first, ingest)
    output = logged_text(capfd)
    assert rerun.run_id == first.run_id
    assert rerun.task_states == {"submit": "success"}
    assert rerun.xcom("submit") == IDS
    assert "An earlier attempt of this task" in output
    assert "All 2 payment(s) of the earlier attempt are listed (poll 4)" in output
    assert "All 2 payment(s) are already known to Confirma; nothing sent" in output
    assert ingest.posts == 1  # exactly one POST in total


@needs_airflow_3_3  # the override deletes the attempt record in the task state store
def test_identifiers_that_never_appear_fail_closed_until_the_user_overrides(dag_file, ingest, capfd) -> None:
    from airflow._shared.state import TaskScope
    from airflow.state import get_state_backend

    ingest.post_faults = ["reset"]
    ingest.listed_after = 10**6  # the POST never shows up
    first = run(dag_file, "confirma_safety_gives_up", ingest)
    assert first.task_states == {"submit": "failed"}
    assert first.tasks["submit"].try_number == 1

    rerun = clear_and_rerun(dag_file, first, ingest)
    output = logged_text(capfd)
    assert rerun.task_states == {"submit": "failed"}
    assert rerun.tasks["submit"].try_number == 2  # failed closed: no retry either
    assert "still does not list after 0.6 s" in output
    assert "ss-1, ss-2" in output
    assert f"delete the key '{ATTEMPT_KEY}' in this task instance's Task State Store" in output
    assert ingest.posts == 1

    # The user confirmed in Confirma that nothing arrived, deleted the key (as the UI's Task State
    # Store tab does), and cleared the task: now it is sent.
    get_state_backend().delete(TaskScope("confirma_safety_gives_up", rerun.run_id, "submit"), ATTEMPT_KEY)
    ingest.listed_after = 0
    final = clear_and_rerun(dag_file, first, ingest)
    assert final.task_states == {"submit": "success"}
    assert ingest.posts == 2
    assert [p["paymentIdentifier"] for p in ingest.post_bodies[-1]["payments"]] == IDS
