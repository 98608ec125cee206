"""Large status responses: the cost of judging one ``GET /accounting/payment`` body of N records.

The body is the sandbox's own (built by :class:`~airflow_provider_confirma.sandbox.state.SandboxState`
in this process, no server): N payments, synced, except every 100th, which failed. The wait tracks
all N identifiers, the case of one sensor after one big submit. The stages are the ones a poke or
a trigger round runs, timed apart (best of ``repeat``):

* ``decode``: ``http_policy.interpret_response`` (JSON, fractions as ``Decimal``);
* ``index``: ``hooks.confirma.index_status_body``: the records by identifier (a ``StatusIndex``;
  each record's identifier is checked, its other fields are read when it is shown);
* ``judge``: ``SyncWait.judge`` (the verdict: failed, since one payment in 100 failed);
* ``summary``: ``SyncVerdict.summary`` and ``json.dumps`` of it (what goes to XCom / the event);
  only the records it lists (``max_xcom_records``, 10 here) and the failures it names are typed;

Peak memory is ``tracemalloc``'s peak over the whole evaluation (a separate, untimed run).
XCom sizes are the JSON bytes of the summary of the successful wait on the synced payments (XCom)
and the whole failed trigger event (counts and a cut message: no records since issue 16), for several
``max_xcom_records`` caps.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from typing import Any

from benchmarks.common import bench_payments

#: every identifier ending in "00" fails: 1 % of the records
FAILURE_PATTERN = "00$"
MAX_RECORDS = 200_000


def status_body(records: int) -> bytes:
    """The sandbox's status body for ``records`` payments, settled (1 % failed)."""
    from airflow_provider_confirma.sandbox.config import SandboxConfig
    from airflow_provider_confirma.sandbox.state import SandboxState

    state = SandboxState(SandboxConfig(sync_delay=0, failure_pattern=FAILURE_PATTERN))
    state.submit_payments(bench_payments(records))
    body = state.status_body("payments")
    assert body is not None
    return body


def _evaluate(body: bytes, identifiers: tuple[str, ...], cap: int) -> tuple[dict[str, float], Any]:
    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.hooks.confirma import index_status_body
    from airflow_provider_confirma.hooks.http_policy import interpret_response
    from airflow_provider_confirma.sync_wait import SyncWait

    endpoint = Endpoint.PAYMENT_SYNC_STATUS
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    decoded = interpret_response(endpoint.method, endpoint.path, 200, "application/json", body)
    t1 = time.perf_counter()
    index = index_status_body(endpoint, decoded)
    t2 = time.perf_counter()
    verdict = SyncWait(identifiers, max_xcom_records=cap).judge(index)
    t3 = time.perf_counter()
    summary = verdict.summary(1.0)
    size = len(json.dumps(summary, separators=(",", ":")))
    t4 = time.perf_counter()
    times.update(decode=t1 - t0, index=t2 - t1, judge=t3 - t2, summary=t4 - t3)
    times["total"] = t4 - t0
    return times, (verdict, size)


def _summary_sizes(body: bytes, identifiers: tuple[str, ...], caps: tuple[int, ...]) -> dict[str, Any]:
    """Summary JSON sizes: the failed wait (all identifiers) and the successful one (synced only)."""
    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.hooks.confirma import index_status_body
    from airflow_provider_confirma.hooks.http_policy import interpret_response
    from airflow_provider_confirma.sync_wait import SyncWait, verdict_event

    endpoint = Endpoint.PAYMENT_SYNC_STATUS
    index = index_status_body(endpoint, interpret_response("GET", endpoint.path, 200, "application/json", body))
    synced = tuple(i for i in identifiers if index[i].status == 1)
    out: dict[str, Any] = {}
    for cap in caps:
        success = SyncWait(synced, max_xcom_records=cap).judge(index)
        failed = SyncWait(identifiers, max_xcom_records=cap).judge(index)
        s_summary, f_summary = success.summary(1.0), failed.summary(1.0)
        core = {"counts": f_summary["counts"], "failures": f_summary["failures"]}
        out[str(cap)] = {
            "success_outcome": success.outcome,
            "success_xcom_bytes": len(json.dumps(s_summary, separators=(",", ":"))),
            "failed_outcome": failed.outcome,
            # the trigger's whole failed event (counts and a cut message, no records), as the triggerer logs it
            "failed_event_summary_bytes": len(json.dumps(verdict_event(failed, 1.0), separators=(",", ":"))),
            "counts_and_failures_bytes": len(json.dumps(core, separators=(",", ":"))),
            "records_listed": len(s_summary["records"]),
            "records_omitted": s_summary["records_omitted"],
        }
    return out


def measure(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000), caps: tuple[int, ...] = (0, 10, 1000), repeat: int = 3
) -> dict[str, Any]:
    """Time, peak memory and summary sizes per N (see the module docstring)."""
    if not sizes or any(not 1 <= n <= MAX_RECORDS for n in sizes) or not 1 <= repeat <= 10:
        raise ValueError(f"sizes must be between 1 and {MAX_RECORDS}, repeat between 1 and 10")
    results = []
    for n in sizes:
        body = status_body(n)
        identifiers = tuple(p["paymentIdentifier"] for p in bench_payments(n))
        runs = []
        for _ in range(repeat):
            gc.collect()
            times, (verdict, _size) = _evaluate(body, identifiers, 10)
            runs.append(times)
            del verdict
        best = min(runs, key=lambda r: r["total"])
        first = runs[0]["total"]  # the process's first evaluation of this size: memory not yet reused
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        _evaluate(body, identifiers, 10)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        results.append(
            {
                "records": n,
                "body_bytes": len(body),
                "seconds": {k: round(v, 4) for k, v in best.items()},
                "first_seconds": round(first, 4),
                "peak_mb": round(peak / 2**20, 1),
                "summary": _summary_sizes(body, identifiers, caps),
            }
        )
        del body
    return {"repeat": repeat, "caps": list(caps), "failed_share": 0.01, "sizes": results}
