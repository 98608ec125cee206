"""End-to-end run of the provider in real Airflow processes, with a triggerer crash and a key-leak scan.

``make e2e`` runs this script. It creates a throwaway ``AIRFLOW_HOME`` (SQLite, LocalExecutor),
starts Confirma sandboxes (``SandboxProcess``) and Airflow's api-server, scheduler, dag-processor and
triggerer, each in its own session. Then it triggers the DAGs of ``scripts/e2e_dags/confirma_e2e.py``
through the REST API:

1. ``confirma_e2e_sync`` submits payments and defers its sync sensor. Once the trigger polls, the
   triggerer's process group is killed (SIGKILL, a crash) and a new triggerer is started. When the
   new triggerer has taken over the trigger, the sandbox settles the payments. The run must succeed
   with exactly one ``POST /accounting/payment`` and no duplicate.
2. The failure paths run at the same time and must fail: a 401, HTTP and task retries exhausted (in
   the trigger and in the submit task), and a failed sync.
3. A canary DAG logs and returns a canary connection's password on purpose (the positive control).
4. ``confirma_e2e_events`` is scheduled on an asset watched by ``ConfirmaPaymentSyncEventTrigger``:
   payments posted straight to its sandbox (as another system would) and settled run it once per
   batch, never while nothing changes, and not again for the old batch after the triggerer crash.

After every process has been stopped, every file under ``AIRFLOW_HOME`` (task and trigger logs,
process output, the SQLite file), every cell of the database and the decrypted kwargs of every
trigger row seen during the run are scanned for the key in all its forms (``keyscan.py``). The key
must be found nowhere; the canary must be found (in the logs too unless ``--masked``).

By default Airflow's secret masking is switched off (``[logging] min_length_masked_secret`` above the
key's length), so the scan proves that the provider itself never writes the key, not that Airflow's
masker hid it. ``--masked`` runs with Airflow's default masking instead.

Every process is stopped by the id of its process group in a ``finally`` block (also on Ctrl-C or
SIGTERM), and the script then checks that no process carrying this run's marker is left.
Exit status 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keyscan

from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess

REPO = Path(__file__).resolve().parent.parent
DAG_FILE = Path(__file__).resolve().parent / "e2e_dags" / "confirma_e2e.py"
BIN = Path(sys.executable).parent
MARKER_VAR = "CONFIRMA_E2E_RUN"
STATUS_PATH = "/api/v1/partner/accounting/payment"
GET_STATUS = f"GET {STATUS_PATH}"
POST_PAYMENTS = f"POST {STATUS_PATH}"

SYNC_DAG = "confirma_e2e_sync"
EVENTS_DAG = "confirma_e2e_events"
CANARY_DAG = "confirma_e2e_canary"
#: dag_id -> (expected run state, {task_id: expected state}, text that must be in the run's logs)
EXPECTED: dict[str, tuple[str, dict[str, str], str | None]] = {
    SYNC_DAG: ("success", {"submit_payments": "success", "wait_for_sync": "success", "report": "success"}, None),
    "confirma_e2e_auth": ("failed", {"submit_payments": "failed", "wait_for_sync": "upstream_failed"}, "HTTP 401"),
    "confirma_e2e_trigger_retries": (
        "failed",
        {"submit_payments": "success", "wait_for_sync": "failed", "report": "upstream_failed"},
        "HTTP 503",
    ),
    "confirma_e2e_submit_retries": ("failed", {"submit_payments": "failed"}, "HTTP 503"),
    "confirma_e2e_sync_failed": (
        "failed",
        {"submit_payments": "success", "wait_for_sync": "failed"},
        "Sync failed: e2e",
    ),
    CANARY_DAG: ("success", {"leak_canary": "success"}, None),
}
#: Tasks whose retry (try 2) must have run: their retries were exhausted.
RETRIED = {("confirma_e2e_trigger_retries", "wait_for_sync"), ("confirma_e2e_submit_retries", "submit_payments")}


class CheckFailed(Exception):
    """An expectation of the end-to-end run was not met."""


# -- small helpers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; ``CheckFailed`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except (OSError, sqlite3.Error, ValueError) as exc:  # not up yet, locked database...
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise CheckFailed(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


@dataclass
class Report:
    """Timings and check results, printed at the end."""

    started: float = field(default_factory=time.monotonic)
    timings: list[tuple[str, float]] = field(default_factory=list)
    checks: list[tuple[bool, str]] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        print(f"[e2e] {name} ...", flush=True)
        try:
            yield
        finally:
            self.timings.append((name, time.monotonic() - began))
            print(f"[e2e] {name}: {time.monotonic() - began:.1f}s", flush=True)

    def check(self, ok: bool, text: str) -> bool:
        self.checks.append((bool(ok), text))
        print(f"[e2e] {'PASS' if ok else 'FAIL'} {text}", flush=True)
        return bool(ok)

    @property
    def failed(self) -> list[str]:
        return [text for ok, text in self.checks if not ok]

    def summary(self) -> str:
        lines = ["", "== Confirma end-to-end summary =="]
        lines += [f"  {name:<44} {seconds:6.1f}s" for name, seconds in self.timings]
        lines.append(f"  {'total':<44} {time.monotonic() - self.started:6.1f}s")
        passed = sum(ok for ok, _ in self.checks)
        lines.append(f"  checks: {passed} passed, {len(self.checks) - passed} failed")
        lines += [f"  FAILED: {text}" for text in self.failed]
        lines.append("E2E OK" if self.checks and not self.failed else "E2E FAILED")
        return "\n".join(lines)


# -- processes -------------------------------------------------------------------------------------
class Processes:
    """Airflow processes, each the leader of its own session; stopped by process-group id."""

    def __init__(self, env: dict[str, str], log_dir: Path, marker: str) -> None:
        self.env = env
        self.log_dir = log_dir
        self.marker = marker
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.started += 1
        log_path = self.log_dir / f"{self.started:02d}-{name}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(  # noqa: S603 - the venv's own airflow
                [str(BIN / "airflow"), *args],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL the whole group at once: a crash, no clean-up by the process."""
        process = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def stop(self, name: str, grace: float = 20.0) -> None:
        """SIGTERM the group, then SIGKILL it after ``grace`` seconds."""
        process = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            print(f"[e2e] {name} did not stop within {grace:.0f}s: SIGKILL", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)

    def leftovers(self) -> list[int]:
        """Ids of live processes started with this run's marker in their environment."""
        needle = f"{MARKER_VAR}={self.marker}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in environ.split(b"\0") and state != "Z":
                found.append(int(entry.name))
        return found

    def sweep(self, grace: float = 10.0) -> list[int]:
        """Stop, by id, any marked process left (a task runner in a group of its own); returns them."""
        left = self.leftovers()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return left


# -- Airflow access --------------------------------------------------------------------------------
class Airflow:
    """The REST API (simple auth manager, all admins) and read-only SQL on the metadata database."""

    def __init__(self, base_url: str, db_path: Path) -> None:
        self.base_url = base_url
        self.db_path = db_path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.base_url}/api/v2{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise ValueError(f"{method} {path}: HTTP {err.code}: {err.read()[:500]!r}") from None

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        uri = f"{self.db_path.as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            return db.execute(sql, params).fetchall()

    def health(self) -> dict[str, Any]:
        return self.api("GET", "/monitor/health")

    def healthy(self, *components: str) -> bool:
        info = self.health()
        return all((info.get(name) or {}).get("status") == "healthy" for name in components)

    def ti(self, dag_id: str, task_id: str, run_id: str) -> tuple[Any, ...] | None:
        rows = self.query(
            "SELECT state, try_number, trigger_id FROM task_instance WHERE dag_id=? AND task_id=? AND run_id=?",
            dag_id,
            task_id,
            run_id,
        )
        return rows[0] if rows else None

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").get("state")


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class Settings:
    masked: bool
    keep: bool
    timeout: float
    log_level: str


def sandbox_configs(key: str) -> dict[str, SandboxConfig]:
    """One sandbox per scenario connection; only ``auth`` expects another key than the connection's."""
    never = 3600.0  # settled on command (admin sync) or never
    return {
        "confirma_e2e_sync": SandboxConfig(api_key=key, sync_delay=never),
        "confirma_e2e_events": SandboxConfig(api_key=key, sync_delay=never),
        "confirma_e2e_auth": SandboxConfig(api_key="e2e-other-key-" + secrets.token_hex(8), sync_delay=0),
        "confirma_e2e_flaky": SandboxConfig.from_dict(
            {
                "api_key": key,
                "sync_delay": never,
                # the submit's GET and the sensor's first poke succeed, then every status read is a 503
                "chaos": {"script": ["ok", "ok"], "error_503": 1.0, "paths": [GET_STATUS.split(" ", 1)[1]]},
            }
        ),
        "confirma_e2e_down": SandboxConfig.from_dict({"api_key": key, "chaos": {"error_503": 1.0}}),
        # settled on command too, so that its sensor always defers before the failure shows
        "confirma_e2e_failing": SandboxConfig(
            api_key=key, sync_delay=never, failure_pattern=".", failure_description="Sync failed: e2e rejected"
        ),
    }


def airflow_env(home: Path, port: int, marker: str, conns: dict[str, str], settings: Settings) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CONFIRMA_"))}
    env.update(
        {
            MARKER_VAR: marker,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            # a killed triggerer's triggers go to a live one once its heartbeat is this old
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": settings.log_level,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not settings.masked:
        env["AIRFLOW__LOGGING__MIN_LENGTH_MASKED_SECRET"] = "100000"  # noqa: S105 - a length
    for conn_id, value in conns.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
    return env


class TriggerWatch:
    """Every trigger row seen during the run, with its kwargs decrypted (rows are deleted when done)."""

    def __init__(self, airflow: Airflow, fernet_key: str) -> None:
        from cryptography.fernet import Fernet

        self.airflow = airflow
        self.fernet = Fernet(fernet_key.encode())
        self.seen: dict[tuple[int, str], dict[str, str]] = {}

    def decrypt(self, stored: str) -> str:
        return stored if stored.startswith("{") else self.fernet.decrypt(stored.encode()).decode()

    def poll(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            for trigger_id, classpath, stored in self.airflow.query("SELECT id, classpath, kwargs FROM trigger"):
                # SQLite reuses the ids of deleted rows: one entry per (id, kwargs)
                self.seen[(trigger_id, stored)] = {"classpath": classpath, "kwargs": self.decrypt(stored)}

    def conn_ids(self) -> set[str]:
        found = set()
        for row in self.seen.values():
            conn = json.loads(row["kwargs"]).get("confirma_conn_id")
            found.add(conn if isinstance(conn, str) else json.dumps(conn))
        return found


class Events:
    """The watcher scenario: its sandbox, its trigger row and the runs of its consumer DAG."""

    def __init__(self, airflow: Airflow, box: SandboxProcess, key: str) -> None:
        self.airflow, self.box, self.key = airflow, box, key

    def gets(self) -> int:
        return int(self.box.stats()["requests"].get(GET_STATUS, 0))

    def watcher(self) -> tuple[int, int | None] | None:
        rows = self.airflow.query(
            "SELECT id, triggerer_id FROM trigger WHERE classpath LIKE '%.ConfirmaPaymentSyncEventTrigger'"
        )
        return rows[0] if rows else None

    def runs(self) -> list[str]:
        return [
            row[0] for row in self.airflow.query("SELECT state FROM dag_run WHERE dag_id=? ORDER BY id", EVENTS_DAG)
        ]

    def reported(self) -> list[list[str]]:
        rows = self.airflow.query(
            "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id "
            "WHERE x.dag_id=? AND x.task_id='newly_synced' AND x.key='return_value' ORDER BY r.id",
            EVENTS_DAG,
        )
        return [json.loads(row[0]) for row in rows]

    def settle_batch(self, prefix: str) -> list[str]:
        """POST three payments straight to the sandbox, then settle them; returns their identifiers."""
        ids = [f"{prefix}-{n}" for n in range(1, 4)]
        records = ", ".join(
            f'{{"paymentIdentifier": "{i}", "invoiceNumber": "10001", "paymentDate": "2026-02-02", '
            f'"amount": 12.50, "currency": "EUR", "targetIdentifier": "invoicenumber"}}'
            for i in ids
        )
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.box.api_url}/accounting/payment",
            data=f'{{"payments": [{records}]}}'.encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-Api-Key": self.key},
        )
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass
        self.box.sync_now()
        return ids

    def quiet_for(self, polls: int, seconds: float, triggers: TriggerWatch) -> int:
        """Wait until the watcher polled ``polls`` more times and ``seconds`` passed; returns the runs then."""
        start, began = self.gets(), time.monotonic()

        def done() -> bool:
            triggers.poll()
            return self.gets() >= start + polls and time.monotonic() - began >= seconds

        wait_for(f"{polls} more polls of the watcher", done, timeout=seconds + 60)
        return len(self.runs())

    def run_once_more(self, prefix: str, report: Report, triggers: TriggerWatch) -> list[str]:
        before = len(self.runs())
        ids = self.settle_batch(prefix)

        def ran() -> bool:
            triggers.poll()
            states = self.runs()
            return len(states) > before and all(state in ("success", "failed") for state in states)

        wait_for(f"a run of {EVENTS_DAG} for batch {prefix}", ran, timeout=120)
        # quiet for 12 polls and the 10 s after which the watermark of the batch is stored
        runs = self.quiet_for(12, 12.0, triggers)
        report.check(runs == before + 1, f"{EVENTS_DAG}: batch {prefix} ran the consumer once ({runs - before} runs)")
        report.check(self.runs()[-1] == "success", f"{EVENTS_DAG}: run {runs} {self.runs()[-1]} (expected success)")
        got = self.reported()[-1] if self.reported() else None
        report.check(got == ids, f"{EVENTS_DAG}: run {runs} got the batch's payments ({got})")
        return ids


def run(settings: Settings, report: Report) -> None:
    marker = uuid.uuid4().hex
    key_core = secrets.token_urlsafe(24)
    key = f"cfk-e2e+{key_core}/Zq"  # '+' and '/' make the URL- and JSON-escaped forms differ
    canary_core = secrets.token_urlsafe(24)
    canary = f"canary-e2e+{canary_core}/Zq"
    home = Path(tempfile.mkdtemp(prefix="confirma-e2e-"))
    print(f"[e2e] AIRFLOW_HOME={home} masking={'on' if settings.masked else 'off'}", flush=True)
    (home / "dags").mkdir()
    shutil.copy(DAG_FILE, home / "dags" / DAG_FILE.name)
    process_logs = home / "process-logs"
    process_logs.mkdir()

    sandboxes: dict[str, SandboxProcess] = {}
    processes: Processes | None = None
    succeeded = False
    try:
        with report.phase("start sandboxes"):
            for conn_id, config in sandbox_configs(key).items():
                sandboxes[conn_id] = SandboxProcess(config).start()
        conns = {
            conn_id: json.dumps({"conn_type": "confirma", "host": sandbox.url, "password": key})
            for conn_id, sandbox in sandboxes.items()
        }
        conns["confirma_e2e_canary"] = json.dumps(
            {"conn_type": "confirma", "host": "http://127.0.0.1:9", "password": canary}
        )
        port = free_port()
        env = airflow_env(home, port, marker, conns, settings)
        airflow = Airflow(f"http://127.0.0.1:{port}", home / "airflow.db")
        processes = Processes(env, process_logs, marker)
        triggers = TriggerWatch(airflow, env["AIRFLOW__CORE__FERNET_KEY"])

        with report.phase("airflow db migrate"):
            with open(process_logs / "00-db-migrate.log", "wb") as log_file:
                migrate = subprocess.run(  # noqa: S603 - the venv's own airflow
                    [str(BIN / "airflow"), "db", "migrate"], env=env, stdout=log_file, stderr=subprocess.STDOUT
                )
            if migrate.returncode != 0:
                raise CheckFailed(f"airflow db migrate exited {migrate.returncode}; see {process_logs}")

        with report.phase("start api-server, scheduler, dag-processor, triggerer (healthy)"):
            processes.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
            processes.start("scheduler", "scheduler")
            processes.start("dag-processor", "dag-processor")
            processes.start("triggerer", "triggerer")
            wait_for(
                "all components healthy",
                lambda: airflow.healthy("metadatabase", "scheduler", "triggerer", "dag_processor"),
                timeout=120,
            )

        with report.phase("dags parsed"):

            def parsed() -> bool:
                errors = airflow.api("GET", "/importErrors")
                if errors.get("total_entries"):
                    raise CheckFailed(f"the e2e DAG file failed to import: {errors['import_errors']}")
                dags = {d["dag_id"] for d in airflow.api("GET", "/dags?tags=confirma-e2e&limit=100")["dags"]}
                return set(EXPECTED) <= dags

            wait_for("the e2e DAGs to be parsed", parsed, timeout=90)

        events = Events(airflow, sandboxes["confirma_e2e_events"], key)
        with report.phase("events: the watcher polls; no run while nothing is synced"):
            wait_for(
                "the watcher's trigger to poll", lambda: (events.watcher() or (0, None))[1] and events.gets() >= 3, 120
            )
            runs = events.quiet_for(5, 5.0, triggers)
        report.check(runs == 0, f"{EVENTS_DAG}: no run before any payment synced ({runs})")
        with report.phase("events: a synced batch runs the consumer once"):
            events.run_once_more("evt-a", report, triggers)
        stored = airflow.query("SELECT value FROM asset_state_store WHERE key LIKE 'confirma_reported_%'")
        report.check(
            len(stored) == 1 and "evt-a-1" in stored[0][0], f"{EVENTS_DAG}: the watermark is in the asset state store"
        )

        run_ids: dict[str, str] = {}
        with report.phase("trigger runs (REST API)"):
            logical_date = datetime.now(timezone.utc).isoformat()
            for dag_id in EXPECTED:
                created = airflow.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": logical_date})
                run_ids[dag_id] = created["dag_run_id"]

        sync_run = run_ids[SYNC_DAG]
        sync_box = sandboxes["confirma_e2e_sync"]

        def status_gets() -> int:
            return int(sync_box.stats()["requests"].get(GET_STATUS, 0))

        with report.phase("sync sensor deferred and its trigger polling"):

            def deferred_and_polling() -> Any:
                triggers.poll()
                ti = airflow.ti(SYNC_DAG, "wait_for_sync", sync_run)
                if not ti or ti[0] != "deferred" or ti[2] is None:
                    return None
                row = airflow.query("SELECT triggerer_id FROM trigger WHERE id=?", ti[2])
                # 1 GET by the submit task, 1 by the sensor's check before deferring, then the trigger
                return (ti[2], row[0][0]) if row and row[0][0] is not None and status_gets() >= 3 else None

            trigger_id, old_triggerer = wait_for("the sync sensor to defer", deferred_and_polling, timeout=150)
        report.check(True, f"sync sensor deferred; trigger {trigger_id} polled by triggerer job {old_triggerer}")

        with report.phase("kill the triggerer (SIGKILL its group), wait 3 s"):
            processes.kill("triggerer")
            gets_at_kill = status_gets()
            for _ in range(6):
                time.sleep(0.5)
                triggers.poll()
        ti = airflow.ti(SYNC_DAG, "wait_for_sync", sync_run)
        report.check(ti is not None and ti[0] == "deferred", f"sensor still deferred after the crash ({ti and ti[0]})")

        with report.phase("new triggerer takes over the trigger"):
            processes.start("triggerer-2", "triggerer")

            def taken_over() -> Any:
                triggers.poll()
                row = airflow.query("SELECT triggerer_id FROM trigger WHERE id=?", trigger_id)
                moved = row and row[0][0] is not None and row[0][0] != old_triggerer
                return row[0][0] if moved and status_gets() > gets_at_kill else None

            new_triggerer = wait_for("a new triggerer to poll the trigger", taken_over, timeout=120)
        report.check(
            new_triggerer != old_triggerer,
            f"trigger {trigger_id} moved from triggerer job {old_triggerer} to {new_triggerer} and polls again",
        )
        with report.phase("events: the watcher polls again after the restart; nothing old runs"):
            wait_for(
                "the new triggerer to run the watcher",
                lambda: (events.watcher() or (0, old_triggerer))[1] not in (None, old_triggerer),
                timeout=120,
            )
            runs = events.quiet_for(10, 10.0, triggers)
        report.check(runs == 1, f"{EVENTS_DAG}: no run for the old batch after the triggerer restart ({runs} runs)")
        with report.phase("events: a new batch after the restart runs the consumer once more"):
            events.run_once_more("evt-b", report, triggers)
        settled = sync_box.sync_now()
        report.check(settled == 3, f"sandbox settled the 3 submitted payments after the restart ({settled})")
        failed = sandboxes["confirma_e2e_failing"].sync_now()
        report.check(failed == 3, f"failing sandbox failed its 3 payments after the restart ({failed})")

        with report.phase("all runs finished"):

            def all_done() -> bool:
                triggers.poll()
                return all(airflow.run_state(d, r) in ("success", "failed") for d, r in run_ids.items())

            wait_for("every run to finish", all_done, timeout=settings.timeout)
            for _ in range(4):  # let the triggerer delete finished triggers before we stop it
                triggers.poll()
                time.sleep(0.5)

        check_runs(airflow, run_ids, report)
        sensor_logs = home / "logs" / f"dag_id={SYNC_DAG}" / f"run_id={sync_run}" / "task_id=wait_for_sync"
        for job in (old_triggerer, new_triggerer):
            path = sensor_logs / f"attempt=1.log.trigger.{job}.log"
            report.check(path.is_file(), f"{SYNC_DAG}: trigger log of triggerer job {job} exists ({path.name})")
        check_sync_sandbox(sync_box, airflow, sync_run, report)
        check_failure_sandboxes(sandboxes, report)

        with report.phase("stop every process by its group id"):
            processes.stop_all()
            swept = processes.sweep()
        report.check(not swept, f"no process outlived its group ({len(swept)} stopped by id in the sweep)")
        report.check(not processes.leftovers(), "no process of this run is left")

        with report.phase("key scan"):
            scan(home, key, key_core, canary, canary_core, triggers, report, settings)
        succeeded = not report.failed
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short (every wait in it is bounded).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if processes is not None:
            processes.stop_all()
            processes.sweep()
        for sandbox in sandboxes.values():
            sandbox.stop()
        if succeeded and not settings.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"[e2e] kept {home} for inspection", flush=True)


def check_runs(airflow: Airflow, run_ids: dict[str, str], report: Report) -> None:
    home = Path(airflow.db_path).parent
    for dag_id, (expected, tasks, log_text) in EXPECTED.items():
        run_id = run_ids[dag_id]
        state = airflow.run_state(dag_id, run_id)
        report.check(state == expected, f"{dag_id}: run {state} (expected {expected})")
        for task_id, task_expected in tasks.items():
            ti = airflow.ti(dag_id, task_id, run_id)
            got = ti[0] if ti else None
            report.check(got == task_expected, f"{dag_id}.{task_id}: {got} (expected {task_expected})")
            if (dag_id, task_id) in RETRIED:
                tries = ti[1] if ti else None
                report.check(tries == 2, f"{dag_id}.{task_id}: retries exhausted after try {tries} (expected 2)")
        if log_text:
            logs = list((home / "logs" / f"dag_id={dag_id}").rglob("*.log"))
            hit = any(log_text in path.read_text(errors="replace") for path in logs)
            report.check(hit, f"{dag_id}: the failure ({log_text!r}) is in its task logs ({len(logs)} files)")


def check_sync_sandbox(sandbox: SandboxProcess, airflow: Airflow, run_id: str, report: Report) -> None:
    stats = sandbox.stats()
    posts = stats["requests"].get(POST_PAYMENTS, 0)
    report.check(posts == 1, f"{SYNC_DAG}: POST /accounting/payment sent {posts} time(s) (expected 1)")
    report.check(stats["duplicates"]["total"] == 0, f"{SYNC_DAG}: duplicates {stats['duplicates']['total']}")
    report.check(stats["stored"]["payments"] == 3, f"{SYNC_DAG}: stored payments {stats['stored']['payments']}")
    rows = airflow.query(
        "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id='report' AND key='return_value'",
        SYNC_DAG,
        run_id,
    )
    counts = json.loads(rows[0][0]) if rows else None
    report.check(
        isinstance(counts, dict) and counts.get("synced") == 3,
        f"{SYNC_DAG}: report XCom counts {counts} (expected 3 synced)",
    )


def check_failure_sandboxes(sandboxes: dict[str, SandboxProcess], report: Report) -> None:
    auth = sandboxes["confirma_e2e_auth"].stats()["responses"].get(GET_STATUS, {})
    report.check(auth.get("401", 0) >= 1, f"auth sandbox answered 401 {auth.get('401', 0)} time(s)")
    for conn_id in ("confirma_e2e_flaky", "confirma_e2e_down"):
        stats = sandboxes[conn_id].stats()
        got = stats["responses"].get(GET_STATUS, {}).get("503", 0)
        posts = stats["requests"].get(POST_PAYMENTS, 0)
        report.check(got >= 4, f"{conn_id} sandbox answered 503 {got} time(s) to status reads")
        expected_posts = 1 if conn_id == "confirma_e2e_flaky" else 0
        report.check(posts == expected_posts, f"{conn_id}: {posts} POST(s) (expected {expected_posts})")
    failing = sandboxes["confirma_e2e_failing"].stats()
    report.check(failing["stored"]["payments"] == 3, f"failing sandbox stored {failing['stored']['payments']} payments")


def scan(
    home: Path,
    key: str,
    key_core: str,
    canary: str,
    canary_core: str,
    triggers: TriggerWatch,
    report: Report,
    settings: Settings,
) -> None:
    key_forms = keyscan.key_variants(key, [key_core])
    canary_forms = keyscan.key_variants(canary, [canary_core])
    decoders = {"trigger.kwargs": triggers.decrypt}
    file_hits, files = keyscan.scan_tree(home, key_forms)
    db_hits, rows = keyscan.scan_sqlite(home / "airflow.db", key_forms, decoders)
    trigger_hits = []
    for (trigger_id, _), row in triggers.seen.items():
        trigger_hits += keyscan.scan_value(row["kwargs"], key_forms, f"trigger {trigger_id} kwargs (decrypted)")
    logs = [p for p in (home / "logs").rglob("*") if p.is_file()]
    trigger_logs = [p for p in logs if ".trigger." in p.name or "triggerer" in str(p)]
    print(
        f"[e2e] scanned {files} files ({len(logs)} log files, {len(trigger_logs)} trigger logs), "
        f"{sum(rows.values())} DB rows in {len(rows)} tables (xcom {rows.get('xcom', 0)}, "
        f"trigger {rows.get('trigger', 0)}), {len(triggers.seen)} trigger rows seen during the run; "
        f"{len(key_forms)} forms of the key",
        flush=True,
    )
    for finding in (file_hits + db_hits + trigger_hits)[:20]:
        print(f"[e2e]   key found: {finding}", flush=True)
    report.check(not file_hits, f"key in no file under AIRFLOW_HOME ({files} files, {len(file_hits)} hits)")
    report.check(not db_hits, f"key in no database cell ({sum(rows.values())} rows, {len(db_hits)} hits)")
    report.check(
        not trigger_hits, f"key in no trigger kwargs ({len(triggers.seen)} triggers, {len(trigger_hits)} hits)"
    )
    seen_conns = triggers.conn_ids()
    wanted = {"confirma_e2e_sync", "confirma_e2e_flaky", "confirma_e2e_failing"}
    report.check(wanted <= seen_conns, f"trigger rows of the deferred scenarios were scanned ({sorted(seen_conns)})")
    report.check(bool(trigger_logs), f"trigger log files exist and were scanned ({len(trigger_logs)})")

    # Positive control: the canary task leaked its connection's password on purpose.
    canary_logs = [f for f in keyscan.scan_tree(home / "logs", canary_forms)[0]]
    canary_db = [f for f in keyscan.scan_sqlite(home / "airflow.db", canary_forms)[0] if f.where.startswith("xcom.")]
    report.check(bool(canary_db), f"control: the scan finds the canary in the xcom table ({len(canary_db)} hits)")
    if settings.masked:
        report.check(not canary_logs, f"control: Airflow masked the canary in the logs ({len(canary_logs)} hits)")
    else:
        report.check(bool(canary_logs), f"control: masking is off; the canary is found in logs ({len(canary_logs)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masked", action="store_true", help="keep Airflow's secret masking on (default: off)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway AIRFLOW_HOME")
    parser.add_argument("--timeout", type=float, default=180, help="seconds for the runs to finish")
    parser.add_argument("--log-level", default="INFO", help="Airflow's [logging] logging_level")
    args = parser.parse_args(argv)
    settings = Settings(masked=args.masked, keep=args.keep, timeout=args.timeout, log_level=args.log_level)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    report = Report()
    try:
        run(settings, report)
    except CheckFailed as exc:
        report.check(False, str(exc))
    except KeyboardInterrupt:
        report.check(False, "interrupted; every process was stopped")
    print(report.summary(), flush=True)
    return 1 if report.failed or not report.checks else 0


if __name__ == "__main__":
    sys.exit(main())
