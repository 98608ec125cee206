"""``make demo``: the example payment-sync DAG end to end against a local Confirma sandbox.

Starts the sandbox (a real HTTP server), uses a throwaway AIRFLOW_HOME with SQLite, runs
``airflow dags test example_confirma_payment_sync`` (submit payments, wait for their sync in a
deferred sensor, report), prints which payments synced and how long it took, then stops the sandbox.
Exits non-zero when the run does not succeed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "example_confirma_payment_sync"
SENSOR_TASK = "wait_for_sync"


def step(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:5.1f}s] {message}", flush=True)


def airflow(args: list[str], env: dict[str, str], log: Path) -> int:
    with open(log, "ab") as out:
        return subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
            [sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode


def read_xcom(db: Path, task_id: str) -> object:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value' "
            "ORDER BY timestamp DESC LIMIT 1",
            (DAG_ID, task_id),
        ).fetchone()
    if row is None:
        return None
    value = row[0]
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def main() -> int:
    from airflow_provider_confirma.sandbox.config import SandboxConfig
    from airflow_provider_confirma.sandbox.server import SandboxProcess

    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="confirma-demo-") as home,
        SandboxProcess(SandboxConfig(sync_delay=4.0)) as sandbox,
    ):
        step(f"Confirma sandbox listening on {sandbox.url}", started)
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **sandbox.conn_env(),
        }
        log = Path(home) / "demo.log"
        step("Creating a throwaway Airflow metadata DB (SQLite)", started)
        if airflow(["db", "migrate"], env, log) != 0:
            print(log.read_text()[-3000:])
            return 1
        step(f"Running `airflow dags test {DAG_ID}` (submit, deferred wait, report)", started)
        began = time.monotonic()
        code = airflow(["dags", "test", DAG_ID], env, log)
        took = time.monotonic() - began
        summary = read_xcom(Path(home) / "airflow.db", SENSOR_TASK)
        stats = sandbox.stats()
        if code != 0 or not isinstance(summary, dict):
            print(log.read_text()[-4000:])
            step(f"The DAG run failed (exit {code})", started)
            return 1
        print()
        print(f"{'payment':<48} {'status':<22} synced on")
        for record in summary.get("records", []):
            print(f"{record['sourceIdentifier']:<48} {record['description'] or '-':<22} {record['syncDate'] or '-'}")
        counts = summary.get("counts", {})
        print()
        print(
            f"{counts.get('synced', 0)}/{counts.get('total', 0)} payments synced; the sensor waited "
            f"{summary.get('waited_seconds', 0):.1f}s (deferred); the DAG run took {took:.1f}s."
        )
        print(f"Sandbox saw {json.dumps(stats.get('requests', stats))[:300]}")
        print(f"Duplicate submissions: {stats.get('duplicates', {})}")
    step("Sandbox stopped; done", started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
