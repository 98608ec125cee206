"""Fault matrix, sensor columns: ``ConfirmaPaymentSyncSensor`` in real DAG runs (``dag.test()``) in
poke, reschedule and deferrable mode, against the sandbox's scripted chaos and :class:`ShapeServer`.

Three runs per mode, each covering a group of cells (a ``dag.test()`` costs about a second, and
reschedule mode about a second per reschedule):

* **transient**: one sensor through a chaos script of 500, 502, 503, 429, a reset, two read
  timeouts, 500 and 503 on the status GET, grouped so that the error count reaches 2 of 3 twice
  and is reset by a good poll in between. The run succeeds once the payment is settled.
* **persistent**: the same sensor while every status GET fails with 500/502/503/429. The task
  fails after 3 polls in a row failed (not at its timeout), with a message naming the last error.
* **fail fast**: a chain of sensors (``trigger_rule="all_done"``), one per cell that must end the
  wait at once or has a defined outcome: malformed JSON, wrong content type, 401, 204, an unknown
  status value, a record without ``status``, an unrelated record without ``sourceIdentifier``
  (skipped, named in a warning), extra fields, a body without the ``payments`` list. Each first
  sees its payment pending, so in deferrable mode the fault reaches the trigger, not only the
  worker's first check (the 401 fails that first check).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_confirma.sensors.payment_sync import ERROR_STREAK_KEY, ConfirmaPaymentSyncSensor
from tests.airflow_compat import DAG_RUN_MODES
from tests.dag_helpers import logged_text, run_dag, when_requests, write_dag_file
from tests.reliability.helpers import (
    STATUS_KEY,
    Reply,
    ShapeServer,
    StateStore,
    conn_json,
    latency_seed,
    record,
    records_reply,
    status_gets,
    store_payments,
)

MODES = DAG_RUN_MODES
#: the status GET's timeout (connection extra) and the latency that makes a request outlast it
CONN_TIMEOUT = 0.75
LATENCY_MS = 1500
WRONG_KEY = "ck_wrong_SECRET_sensor_reliability_3a9b"

#: fail-fast chain: task -> (connection id, final state, message fragment in the task's log)
FAIL_FAST: dict[str, tuple[str, str, str]] = {
    "malformed_json": ("confirma_default", "failed", "returned HTTP 200: malformed JSON"),
    "wrong_content_type": ("confirma_default", "failed", "expected JSON, got text/html"),
    "unauthorized": ("confirma_wrong", "failed", "returned HTTP 401: API key rejected"),
    "no_content": ("confirma_shape_no_content", "success", "1/1 synced"),
    "unknown_status": ("confirma_shape_unknown_status", "failed", "fs-1 (status 7: Mystery state)"),
    "missing_status": ("confirma_shape_missing_status", "failed", "fs-1 (status None: Mystery state)"),
    "missing_identifier": (
        "confirma_shape_missing_identifier",
        "success",
        "payments[1]: record has no sourceIdentifier",
    ),
    "extra_fields": ("confirma_shape_extra_fields", "success", "1/1 synced"),
    "missing_list": ("confirma_shape_missing_list", "failed", "expected a JSON object with a 'payments' list"),
}
PENDING = records_reply(record("fs-1", status=0))
SHAPE_REPLIES: dict[str, list[Reply]] = {
    "no_content": [Reply(204), Reply(204), records_reply(record("fs-1"))],
    "unknown_status": [PENDING, records_reply(record("fs-1", status=7))],
    "missing_status": [PENDING, records_reply(record("fs-1", status=None))],
    "missing_identifier": [PENDING, records_reply(record("fs-1"), {"status": 1, "description": "no id"})],
    "extra_fields": [PENDING, Reply(200, {"payments": [record("fs-1", targetSystem="Netvisor")], "page": 1})],
    "missing_list": [PENDING, Reply(200, {})],
}

DAG_SOURCE = '''
"""Fault-matrix DAGs of ConfirmaPaymentSyncSensor, one set per mode."""

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, chain

from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

FAIL_FAST = __FAIL_FAST__
POLICY = {"max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.01, "jitter": 0.0, "retry_after_cap": 0.01}


def sensor(mode, task_id, ids, conn_id="confirma_default", **kwargs):
    return ConfirmaPaymentSyncSensor(
        task_id=task_id,
        confirma_conn_id=conn_id,
        source_identifiers=ids,
        mode="reschedule" if mode == "reschedule" else "poke",
        deferrable=mode == "deferrable",
        poke_interval=0.05,
        max_consecutive_errors=3,
        http_retry_policy=POLICY,
        retries=0,
        **kwargs,
    )


for mode in ("poke", "reschedule", "deferrable"):
    with DAG(f"confirma_faults_{mode}_wait", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        sensor(mode, "wait", ["tr-1"], timeout=12)
    globals()[dag.dag_id] = dag

    with DAG(f"confirma_faults_{mode}_fail_fast", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ids = {"malformed_json": "pend-1", "wrong_content_type": "pend-1", "unauthorized": "pend-1"}
        chain(*[
            sensor(mode, task_id, [ids.get(task_id, "fs-1")], conn_id, timeout=12, trigger_rule="all_done")
            for task_id, (conn_id, _, _) in FAIL_FAST.items()
        ])
    globals()[dag.dag_id] = dag
'''.replace("__FAIL_FAST__", repr(FAIL_FAST))


@pytest.fixture(scope="module")
def dag_file(airflow_db):
    return write_dag_file(DAG_SOURCE, "confirma_fault_matrix_dags.py")


@pytest.fixture
def sandbox(confirma_sandbox):
    confirma_sandbox.configure(sync_delay=3600)  # stored payments stay pending until settled
    return confirma_sandbox


def conn_env(sandbox: Any, **more: str) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_CONFIRMA_DEFAULT": conn_json(sandbox.url, sandbox.api_key, timeout=CONN_TIMEOUT),
        **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in more.items()},
    }


def without_airflow_mask_requests(output: str) -> str:
    """``output`` without Airflow 3.0's own debug lines of the secrets it masks (``dag.test()`` logs
    each ``MaskSecret`` message it sends, the connection's password included, whoever asked)."""
    return re.sub(r"msg=MaskSecret\(value='[^']*'", "msg=MaskSecret(value=<omitted>", output)


def logged_errors(output: str) -> list[str]:
    return re.findall(r"poll failed \(\d/3 in a row\): \w+", output)


# -- transient faults, then success ----------------------------------------------------------------
#: GET n: the fault it gets (two "ok"s at 7 and 8 are delayed past the read timeout)
TRANSIENT_SCRIPT = ["500", "502", "503", "429", "reset", "ok", "ok", "ok", "500", "503"]
DELAYED = [n in (7, 8) for n in range(1, 17)]


@pytest.mark.parametrize("mode", MODES)
def test_transient_faults_are_retried_then_the_wait_succeeds(mode, dag_file, sandbox, capfd):
    store_payments(sandbox, ["tr-1"])
    seed = latency_seed(DELAYED)
    sandbox.set_chaos(script=TRANSIENT_SCRIPT, latency_ms=LATENCY_MS, latency_rate=0.1, seed=seed, methods=["GET"])
    with when_requests(sandbox, STATUS_KEY, len(TRANSIENT_SCRIPT), sandbox.sync_now) as seen:
        result = run_dag(dag_file, f"confirma_faults_{mode}_wait", conn_env=conn_env(sandbox))
    output = logged_text(capfd)
    assert result.task_states == {"wait": "success"}
    assert result.tasks["wait"].try_number == 1
    summary = result.xcom("wait")
    assert summary["counts"]["synced"] == 1
    assert seen["at"] >= len(TRANSIENT_SCRIPT)
    chaos = sandbox.stats()["chaos"]
    assert chaos["latency"] == 2
    assert {k: chaos[k] for k in ("error_500", "error_502", "error_503", "rate_limit", "reset")} == {
        "error_500": 2,
        "error_502": 1,
        "error_503": 2,
        "rate_limit": 1,
        "reset": 1,
    }
    # Four polls failed, never three in a row: the good poll in between reset the count.
    errors = logged_errors(output)
    counts = [int(e.split("(")[1][0]) for e in errors]
    if mode == "deferrable":  # the worker's first check, then the trigger counts its own streak
        assert counts == [1, 1, 1, 2]
    else:
        assert counts == [1, 2, 1, 2]
    assert "ConfirmaTransportError" in " ".join(errors)  # the timeouts


# -- transient faults that persist ------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_persistent_transient_faults_fail_the_task_after_three_polls(mode, dag_file, sandbox, capfd):
    store_payments(sandbox, ["tr-1"])
    sandbox.set_chaos(error_500=0.25, error_502=0.25, error_503=0.25, rate_limit=0.25, methods=["GET"], seed=3)
    result = run_dag(dag_file, f"confirma_faults_{mode}_wait", conn_env=conn_env(sandbox))
    output = logged_text(capfd)
    assert result.task_states == {"wait": "failed"}
    assert result.tasks["wait"].try_number == 1
    # by the error bound (this message, this many requests), long before the sensor's 12 s timeout
    # the message, not the source line of the raise that a rich traceback shows (Airflow < 3.3)
    assert not re.search(r"Sensor has timed out [\w ]+; timeout is \d", output)
    assert re.search(r"Confirma payment sync status poll failed 3 times in a row; last error: Confirma\w+Error", output)
    # 2 attempts per poll; deferrable: the worker's first check, then 3 polls of the trigger
    assert status_gets(sandbox) == (8 if mode == "deferrable" else 6)


# -- faults that end the wait, and what the API says -----------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_fail_fast_and_response_shape_cells(mode, dag_file, sandbox, shape_server: ShapeServer, capfd):
    store_payments(sandbox, ["pend-1"])
    sandbox.set_chaos(script=["ok", "malformed_json", "ok", "wrong_content_type"], methods=["GET"])
    shapes = {
        f"confirma_shape_{case}": conn_json(shape_server.script(f"sensor-{mode}-{case}", *replies), "shape-key")
        for case, replies in SHAPE_REPLIES.items()
    }
    env = conn_env(sandbox, confirma_wrong=conn_json(sandbox.url, WRONG_KEY), **shapes)
    result = run_dag(dag_file, f"confirma_faults_{mode}_fail_fast", conn_env=env)
    output = logged_text(capfd)

    assert result.task_states == {task: state for task, (_, state, _) in FAIL_FAST.items()}
    assert all(task.try_number == 1 for task in result.tasks.values())
    for task, (_, _, fragment) in FAIL_FAST.items():
        assert fragment in output, f"{task}: {fragment!r} not logged"
    assert WRONG_KEY not in without_airflow_mask_requests(output)
    # Each sensor saw its payment pending (or not listed) first, then the cell's reply; a deferred
    # sensor that succeeded read the status once more on resume, for the records of its XCom.
    for case, replies in SHAPE_REPLIES.items():
        resume_read = 1 if mode == "deferrable" and FAIL_FAST[case][1] == "success" else 0
        assert shape_server.requests[f"sensor-{mode}-{case}"] == len(replies) + resume_read, case
    assert sandbox.stats()["responses"][STATUS_KEY] == {
        "200": 2,
        "200 (malformed_json)": 1,
        "200 (wrong_content_type)": 1,
        "401": 1,
    }
    assert result.xcom("extra_fields")["records"][0]["sourceIdentifier"] == "fs-1"
    assert "targetSystem" not in json.dumps(result.xcom("extra_fields"))  # extra fields stay out of XCom


# -- the error count of reschedule mode, without a DAG run -----------------------------------------
def reschedule_poke(conn_id: str, store: StateStore, try_number: int) -> Any:
    """One poke as reschedule mode runs it: a fresh sensor object in a fresh process, every time."""
    sensor = ConfirmaPaymentSyncSensor(
        task_id="wait",
        confirma_conn_id=conn_id,
        source_identifiers=["r-1"],
        mode="reschedule",
        poke_interval=1,
        max_consecutive_errors=3,
        http_retry_policy={"max_attempts": 1},
    )
    return sensor.poke({"ti": SimpleNamespace(try_number=try_number), "task_state_store": store})


def test_reschedule_mode_keeps_the_error_count_per_try_in_the_task_state_store(shape_server, confirma_conn_env):
    confirma_conn_env("confirma_streak", conn_json(shape_server.script("streak", Reply(503, {"message": "down"})), "k"))
    store = StateStore()
    assert reschedule_poke("confirma_streak", store, try_number=1) is False
    assert reschedule_poke("confirma_streak", store, try_number=1) is False
    assert store.values[ERROR_STREAK_KEY] == {"try_number": 1, "errors": 2}
    with pytest.raises(AirflowException, match="failed 3 times in a row; last error: ConfirmaServerError"):
        reschedule_poke("confirma_streak", store, try_number=1)
    # A new try (a task retry, or a cleared task) starts from zero.
    assert reschedule_poke("confirma_streak", store, try_number=2) is False
    assert store.values[ERROR_STREAK_KEY] == {"try_number": 2, "errors": 1}
    # A good poll ends the streak.
    shape_server.script("streak", records_reply(record("r-1", status=0)))
    assert reschedule_poke("confirma_streak", store, try_number=2) is False
    assert ERROR_STREAK_KEY not in store.values
