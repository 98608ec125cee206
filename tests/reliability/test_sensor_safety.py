"""Sensor safety (issue 13, items 11 and 16): the sensor's timeout bounds every request, and each
of ``soft_fail``, ``never_fail`` and ``silent_fail`` means one thing in every mode.

Item 11: a loopback server answers ``503`` with ``Retry-After: 20``, or holds its answer, and a
sensor with ``timeout=3`` runs in real DAG runs (``dag.test()``) in poke, reschedule and
deferrable mode: it ends as a sensor timeout within a few seconds, not after the hook's retries.

Item 16: the table of docs/sensor.md ("One meaning per flag"), cell by cell: the real sensor (and,
deferred, its real trigger) against a loopback server, run as Airflow runs it (:func:`run_task`:
a new sensor object per run, reschedules, deferrals with the trigger's event). A few cells again
in a real DAG run, where the task runner decides the final state.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_confirma.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_confirma.endpoints import API_PREFIX
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from tests.airflow_compat import (
    DAG_RUN_MODES,
    AirflowRescheduleException,
    deserialize,
    only_on_airflow_3_3,
    reschedule_dag_runs,
    serialize,
)
from tests.dag_helpers import logged_text, run_dag, write_dag_file
from tests.reliability.helpers import StateStore, conn_json, record

DOC = Path(__file__).resolve().parents[2] / "docs" / "sensor.md"


# -- a loopback server with headers and held answers ----------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: float = 0.0  # seconds before answering


def records(*statuses: int) -> Answer:
    return Answer(200, {"payments": [record(f"f-{n}", status=s) for n, s in enumerate(statuses, 1)]})


PENDING, SYNCED, FAILED = records(0), records(1), records(2)
UNAUTHORIZED = Answer(401, {"message": "API key revoked"})
UNAVAILABLE = Answer(503, {"message": "maintenance"}, {"Retry-After": "20"})
HELD = Answer(200, {"payments": []}, hold=30.0)


class ScriptServer:
    """Answers each request of a scenario (``/<scenario>/api/...``) with the next scripted answer;
    the last one repeats. Records when each scenario's requests arrived."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.requests: Counter[str] = Counter()
        self.first_request: dict[str, float] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                scenario, _, rest = self.path.lstrip("/").partition("/")
                answer = server.next_answer(scenario, "/" + rest)
                if answer.hold and server.closing.wait(answer.hold):
                    return
                body = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="script-server", daemon=True)
        self.thread.start()

    def next_answer(self, scenario: str, path: str) -> Answer:
        with self.lock:
            self.requests[scenario] += 1
            self.first_request.setdefault(scenario, time.monotonic())
            script = self.scripts.get(scenario)
            if not script or not path.startswith(API_PREFIX):
                return Answer(404, {"message": f"no scenario {scenario!r}"})
            return script.pop(0) if len(script) > 1 else script[0]

    def script(self, scenario: str, *answers: Answer) -> str:
        """Set the answers of ``scenario``; returns its connection host."""
        with self.lock:
            self.scripts[scenario] = list(answers)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{scenario}"

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptServer]:
    running = ScriptServer()
    yield running
    running.close()


# -- item 11: the sensor's timeout bounds the hook's retries ----------------------------------------
TIMEOUT_DAGS = '''
"""Item 11: a sensor with timeout=3 against a server that says "retry after 20 s" or holds its answer."""

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

for mode in ("poke", "reschedule", "deferrable"):
    with DAG(f"confirma_sensor_deadline_{mode}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ConfirmaPaymentSyncSensor(
            task_id="wait",
            source_identifiers=["f-1"],
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode == "deferrable",
            timeout=3,
            poke_interval=1,
            max_consecutive_errors=50,  # the hook's default retry policy: 5 attempts within 60 s
            retries=0,
        )
    globals()[dag.dag_id] = dag
'''


@pytest.fixture(scope="module")
def timeout_dags(airflow_db: Path) -> Path:
    return write_dag_file(TIMEOUT_DAGS, "confirma_sensor_deadline_dags.py")


@pytest.mark.timeout(40)
@pytest.mark.parametrize("answer", ["retry_after_20", "held"])
@pytest.mark.parametrize("mode", DAG_RUN_MODES)
def test_a_timeout_of_3s_ends_the_wait_within_seconds_whatever_the_server_says(
    mode: str, answer: str, timeout_dags: Path, server: ScriptServer, capfd: pytest.CaptureFixture[str]
):
    scenario = f"deadline-{mode}-{answer}"
    # The connection's per-attempt timeout (30 s) and the hook's retry budget (60 s) outlast the sensor.
    host = server.script(scenario, UNAVAILABLE if answer == "retry_after_20" else HELD)
    env = {"AIRFLOW_CONN_CONFIRMA_DEFAULT": conn_json(host, "ck_deadline_key", timeout=30)}
    result = run_dag(timeout_dags, f"confirma_sensor_deadline_{mode}", conn_env=env)
    waited = time.monotonic() - server.first_request[scenario]
    output = logged_text(capfd)

    assert result.task_states == {"wait": "failed"}
    assert result.tasks["wait"].try_number == 1  # a sensor timeout: no retry
    # not after the 20 s Retry-After or the 60 s budget; dag.test() before 3.3 takes seconds more to
    # resume a deferred task (3.2.2: 6.5-6.9 s in all, deferrable)
    assert 2.5 < waited < (6.0 if AIRFLOW_V_3_3_PLUS else 10.0), f"the wait ended {waited:.1f}s after its first request"
    assert re.search(r"AirflowSensorTimeout|Timed out after 3\.0s", output)
    assert "times in a row" not in output


def test_the_hook_deadline_cuts_retries_sleeps_and_the_attempt_timeout(server: ScriptServer, confirma_conn_env):
    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.exceptions import ConfirmaServerError, ConfirmaTransportError
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    confirma_conn_env("confirma_unavailable", conn_json(server.script("hook-503", UNAVAILABLE), "k", timeout=30))
    confirma_conn_env("confirma_held", conn_json(server.script("hook-held", HELD), "k", timeout=30))
    status = Endpoint.PAYMENT_SYNC_STATUS

    began = time.monotonic()
    with pytest.raises(ConfirmaServerError, match="HTTP 503"):  # the 20 s sleep would pass the deadline
        ConfirmaHook("confirma_unavailable").get_status_index(status, deadline=began + 3)
    assert time.monotonic() - began < 1.0
    assert server.requests["hook-503"] == 1

    began = time.monotonic()
    with pytest.raises(ConfirmaTransportError, match="read timeout"):  # the attempt's 30 s cut to 1.5 s
        ConfirmaHook("confirma_held").get_status_index(status, deadline=began + 1.5)
    assert 1.4 < time.monotonic() - began < 2.5
    assert server.requests["hook-held"] == 1

    with pytest.raises(ConfirmaTransportError, match="not sent: the caller's deadline had passed"):
        ConfirmaHook("confirma_held").get_status_index(status, deadline=time.monotonic() - 0.1)
    assert server.requests["hook-held"] == 1  # nothing was sent


# -- item 16: one meaning per flag -----------------------------------------------------------------
#: the rows of the table in docs/sensor.md: what ends the wait
OUTCOMES = ("synced", "sync failure", "timeout", "error (401)")
#: its columns: the flags given
FLAGS: dict[str, dict[str, bool]] = {
    "none": {},
    "soft_fail": {"soft_fail": True},
    "never_fail": {"never_fail": True},
    "silent_fail": {"silent_fail": True},
    "silent_fail + soft_fail": {"silent_fail": True, "soft_fail": True},
}
#: the modes (and, deferred, where the outcome is seen) every cell holds for
MODES = ("poke", "reschedule", "deferrable, first check", "deferrable, trigger")
#: how the task ends for each outcome and flag, in every mode, as the docs' table says it:
#: ``failed`` fails without retries, ``failed (retries apply)`` is retried while tries are left,
#: ``waits on → X``: the error is logged, the wait goes on, and ends as X (here: the timeout)
EXPECTED: dict[str, dict[str, str]] = {
    "synced": dict.fromkeys(FLAGS, "success"),
    "sync failure": {
        "none": "failed",
        "soft_fail": "skipped",
        "never_fail": "skipped",
        "silent_fail": "failed",
        "silent_fail + soft_fail": "skipped",
    },
    "timeout": {
        "none": "failed",
        "soft_fail": "skipped",
        "never_fail": "failed",
        "silent_fail": "failed",
        "silent_fail + soft_fail": "skipped",
    },
    "error (401)": {
        "none": "failed (retries apply)",
        "soft_fail": "failed (retries apply)",
        "never_fail": "skipped",
        "silent_fail": "waits on → failed",
        "silent_fail + soft_fail": "waits on → skipped",
    },
}


def state_of(label: str) -> str:
    """The task state (with retries left) of an :data:`EXPECTED` label."""
    last = label.split("→")[-1].strip()
    return "up_for_retry" if last == "failed (retries apply)" else last


#: the answer that brings each outcome
OUTCOME_ANSWER = {"synced": SYNCED, "sync failure": FAILED, "timeout": PENDING, "error (401)": UNAUTHORIZED}


class TaskInstance:
    """The part of ``context["ti"]`` a sensor reads: the try, and the first reschedule's date."""

    try_number = 1

    def __init__(self) -> None:
        self.first_reschedule: datetime | None = None

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first_reschedule


@dataclass
class Ended:
    state: str  # the task state the task runner gives this ending (with retries=1)
    error: BaseException | None = None
    runs: list[str] = field(default_factory=list)  # how the task ran: execute, resume methods


def told(exc: BaseException | None) -> str:
    """The messages of ``exc`` and its causes (Airflow's poke loop skips ``from`` the poke's error)."""
    texts = []
    while exc is not None:
        texts.append(str(exc))
        exc = exc.__cause__
    return " <- ".join(texts)


def final_state(exc: BaseException) -> str:
    """The task runner's mapping (``_run_task_and_map_outcome``) for a task with retries left."""
    if isinstance(exc, AirflowSkipException):
        return "skipped"
    if isinstance(exc, (AirflowFailException, AirflowSensorTimeout)):
        return "failed"
    return "up_for_retry"


async def trigger_event(trigger: Any) -> Any:
    """The first event of ``trigger``, rebuilt from its serialized kwargs as a triggerer does."""
    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**deserialize(serialize(kwargs)))
    run = rebuilt.run()
    try:
        event = await asyncio.wait_for(run.__anext__(), 30)
    finally:
        await run.aclose()
    return deserialize(serialize(event.payload))


def run_task(make_sensor: Callable[[], ConfirmaPaymentSyncSensor], limit: float = 30.0) -> Ended:
    """Run a sensor as Airflow does, until it ends: every run (a poke after a reschedule, a resume
    after a deferral) on a new sensor object; deferrals run their trigger in this process."""
    ti = TaskInstance()
    context: Any = {"ti": ti, "task_state_store": StateStore()}
    runs: list[str] = []
    resume: tuple[str, dict[str, Any]] | None = None  # (method, kwargs) after a deferral
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:
        started = datetime.now(timezone.utc)
        sensor = make_sensor()
        runs.append(resume[0] if resume else "execute")
        try:
            if resume is None:
                sensor.execute(context)
            else:
                sensor.resume_execution(resume[0], resume[1], context)
        except AirflowRescheduleException as reschedule:
            ti.first_reschedule = ti.first_reschedule or started
            time.sleep(max(0.0, (reschedule.reschedule_date - datetime.now(timezone.utc)).total_seconds()))
            resume = None
        except TaskDeferred as deferred:
            event = asyncio.run(trigger_event(deferred.trigger))
            resume = (deferred.method_name, {**(deferred.kwargs or {}), "event": event})
        except Exception as exc:
            return Ended(final_state(exc), exc, runs)
        else:
            return Ended("success", None, runs)
    raise AssertionError(f"the task did not end within {limit}s: {runs}")


def cell_answers(outcome: str, mode: str) -> list[Answer]:
    """What the server answers: pending first, so the outcome is seen by a later poke or by the
    trigger; for a deferred first check, at once (a held answer for the timeout: the time runs
    out during the first check's request)."""
    if mode == "deferrable, first check":
        return [HELD if outcome == "timeout" else OUTCOME_ANSWER[outcome]]
    return [PENDING, OUTCOME_ANSWER[outcome]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_each_flag_means_one_thing_in_every_mode(
    outcome: str, flag: str, mode: str, server: ScriptServer, confirma_conn_env
):
    scenario = re.sub(r"\W+", "-", f"flags-{outcome}-{flag}-{mode}")
    conn_id = scenario.replace("-", "_")
    confirma_conn_env(conn_id, conn_json(server.script(scenario, *cell_answers(outcome, mode)), "ck_flags_key"))

    def make_sensor() -> ConfirmaPaymentSyncSensor:
        return ConfirmaPaymentSyncSensor(
            task_id="wait",
            confirma_conn_id=conn_id,
            source_identifiers=["f-1"],
            mode="reschedule" if mode == "reschedule" else "poke",
            deferrable=mode.startswith("deferrable"),
            timeout=1.5,
            poke_interval=0.2,
            max_consecutive_errors=3,
            http_retry_policy={"max_attempts": 1},
            retries=1,
            **FLAGS[flag],
        )

    ended = run_task(make_sensor)
    assert ended.state == state_of(EXPECTED[outcome][flag]), f"{ended.error!r} after {ended.runs}"
    if mode == "deferrable, trigger":
        assert "execute_complete" in ended.runs  # the outcome was the trigger's event
    if ended.state == "skipped" and outcome != "timeout":  # Airflow's own timeout skip names no flag
        assert ("soft_fail" if "soft_fail" in flag else "never_fail") in str(ended.error)
    if outcome == "error (401)" and ended.state == "up_for_retry":
        assert "401" in told(ended.error)
    if EXPECTED[outcome][flag].startswith("waits on"):  # the error was logged, the wait went on
        assert "timed out" in told(ended.error).lower()
        assert server.requests[scenario] >= 2


def test_the_flag_table_in_the_docs_is_the_tested_one():
    lines = [line.strip() for line in DOC.read_text().split("<!-- flag-table -->")[1].strip().splitlines()]
    cells = [[cell.strip().replace("`", "").strip("*") for cell in line.strip("|").split("|")] for line in lines]
    assert cells[0][1:] == list(FLAGS)
    assert {row[0]: dict(zip(FLAGS, row[1:], strict=True)) for row in cells[2:]} == EXPECTED


# -- a few cells in real DAG runs (the task runner decides the state) -------------------------------
FLAG_DAGS = '''
"""Item 16 in DAG runs: a revoked key under soft_fail, the timeout under never_fail, silent_fail."""

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, chain

from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

CELLS = {
    "revoked_soft_fail": {"soft_fail": True, "timeout": 1.5},
    "timeout_never_fail": {"never_fail": True, "timeout": 1.5},
    "revoked_silent_fail": {"silent_fail": True, "timeout": 4},  # a reschedule here takes about 1 s
}

for mode in ("poke", "reschedule", "deferrable"):
    with DAG(f"confirma_sensor_flags_{mode}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        chain(*[
            ConfirmaPaymentSyncSensor(
                task_id=cell,
                confirma_conn_id=f"confirma_{cell}",
                source_identifiers=["f-1"],
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferrable",
                poke_interval=0.2,
                http_retry_policy={"max_attempts": 1},
                retries=0,
                trigger_rule="all_done",
                **flags,
            )
            for cell, flags in CELLS.items()
        ])
    globals()[dag.dag_id] = dag
'''


#: dag.test() resumes a task with the event alone (a triggerer merges the deferral's kwargs); after a
#: silent_fail pause (TimeDeltaTrigger) the wait's start then comes from the task state store (3.3).
#: Without dag.test() the start rides in the kwargs: tests/test_airflow_versions.py.
FLAG_RUN_MODES = (
    "poke",
    pytest.param("reschedule", marks=reschedule_dag_runs),
    pytest.param("deferrable", marks=only_on_airflow_3_3("dag.test() drops the kwargs of a silent_fail pause")),
)


@pytest.mark.parametrize("mode", FLAG_RUN_MODES)
def test_a_revoked_key_fails_and_the_flags_hold_in_dag_runs(mode: str, airflow_db: Path, server: ScriptServer):
    path = write_dag_file(FLAG_DAGS, "confirma_sensor_flag_dags.py")
    answers = {
        "revoked_soft_fail": [PENDING, UNAUTHORIZED],  # deferrable: the trigger sees the 401
        "timeout_never_fail": [PENDING],
        "revoked_silent_fail": [PENDING, UNAUTHORIZED],
    }
    env = {
        f"AIRFLOW_CONN_CONFIRMA_{cell.upper()}": conn_json(server.script(f"dag-{mode}-{cell}", *script), "ck_dag_key")
        for cell, script in answers.items()
    }
    result = run_dag(path, f"confirma_sensor_flags_{mode}", conn_env=env)
    assert result.task_states == {
        "revoked_soft_fail": "failed",  # never "skipped": soft_fail does not cover errors
        "timeout_never_fail": "failed",  # never_fail does not cover the timeout
        "revoked_silent_fail": "failed",  # the 401 is waited past; then the timeout fails the task
    }
    assert server.requests[f"dag-{mode}-revoked_silent_fail"] >= 3  # it kept checking after the 401
