"""Payment sync triggers at triggerer scale: N waits in one event loop, with and without coalescing.

Starts the sandbox CLI as a subprocess (loopback only), stores ``--records`` payments that stay
pending, then runs ``--waiters`` ``ConfirmaPaymentSyncTrigger`` instances in one asyncio loop, as a
triggerer does, for ``--duration`` seconds (they end with their timeout event). Each waits for one
payment. Prints one JSON object: the status requests the API received, requests per poll round,
and, separately for start-up (the first ``STEADY_AFTER`` intervals, when every waiter subscribes
and first logs) and the steady state, this process's CPU time and the event loop's lag (a 10 ms
ticker; the triggerer warns when its loop is blocked for more than 0.2 s).

    python -m benchmarks.trigger_coalescing --waiters 1000 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from typing import Any

MAX_DURATION = 60.0
CONN_ID = "confirma_bench"
#: poll intervals of start-up before the steady state is measured
STEADY_AFTER = 2.5


def _submit(api_url: str, key: str, records: int) -> None:
    import requests

    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.json_codec import encode_json

    payments = [
        {
            "paymentIdentifier": f"bench-{i:05d}",
            "invoiceNumber": str(10001 + i),
            "paymentDate": "2026-02-01",
            "amount": Decimal("12.30"),
            "currency": "EUR",
        }
        for i in range(records)
    ]
    response = requests.post(
        api_url + Endpoint.SUBMIT_PAYMENTS.path,
        data=encode_json({"payments": payments}),
        headers={"X-Api-Key": key, "Content-Type": "application/json"},
        timeout=30,
    )
    response.raise_for_status()


async def _run(waiters: int, records: int, interval: float, duration: float, coalesce: bool) -> dict[str, Any]:
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

    # After Airflow configured logging: measure the polling, not 1 log line per waiter.
    logging.getLogger("airflow_provider_confirma").setLevel(logging.WARNING)
    # A running triggerer has the secrets backends loaded: warm them up outside the measurement.
    await ConfirmaHook(CONN_ID).aget_settings()
    loop = asyncio.get_running_loop()
    lags: list[tuple[float, float]] = []  # (when, lag)
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append((before, loop.time() - before - 0.01))

    async def first_event(trigger: ConfirmaPaymentSyncTrigger) -> str:
        gen = trigger.run()
        try:
            event = await gen.__anext__()
        finally:
            await gen.aclose()
        return str(event.payload["status"])

    # Start-up (every waiter subscribes and judges its first round) is measured apart from the
    # steady state, which starts STEADY_AFTER poll intervals in.
    steady_after = STEADY_AFTER * interval
    cpu_marks: dict[str, float] = {}

    async def mark_steady() -> None:
        await asyncio.sleep(steady_after)
        cpu_marks["steady"] = time.process_time()

    started = time.time()
    triggers = [
        ConfirmaPaymentSyncTrigger(
            confirma_conn_id=CONN_ID,
            source_identifiers=[f"bench-{i % records:05d}"],
            poll_interval=interval,
            started_at=started,
            end_time=started + duration,
            coalesce=coalesce,
        )
        for i in range(waiters)
    ]
    tick = asyncio.create_task(ticker())
    marker = asyncio.create_task(mark_steady())
    t0, cpu_start = loop.time(), time.process_time()
    statuses = await asyncio.gather(*(first_event(t) for t in triggers))
    cpu_end = time.process_time()
    done.set()
    await tick
    await marker

    def lag_stats(values: list[float]) -> dict[str, float | None]:
        values = sorted(values)
        if not values:
            return {"p50": None, "p99": None, "max": None}
        return {
            "p50": round(statistics.median(values) * 1000, 2),
            "p99": round(values[int(0.99 * (len(values) - 1))] * 1000, 2),
            "max": round(values[-1] * 1000, 2),
        }

    steady_rounds = max(1.0, (duration - steady_after) / interval)
    return {
        "events": {s: statuses.count(s) for s in sorted(set(statuses))},
        "startup_cpu_seconds": round(cpu_marks["steady"] - cpu_start, 3),
        "startup_loop_lag_ms": lag_stats([lag for when, lag in lags if when - t0 < steady_after]),
        "steady_cpu_ms_per_round": round((cpu_end - cpu_marks["steady"]) * 1000 / steady_rounds, 2),
        "steady_loop_lag_ms": lag_stats([lag for when, lag in lags if when - t0 >= steady_after]),
    }


def measure(waiters: int, records: int, interval: float, duration: float, coalesce: bool) -> dict[str, Any]:
    """One bounded run against a fresh sandbox subprocess; returns the report."""
    if not 1 <= waiters <= 20000 or not 1 <= records <= 5000 or not 0 < duration <= MAX_DURATION:
        raise ValueError("need 1 <= waiters <= 20000, 1 <= records <= 5000, 0 < duration <= 60")
    if interval < 0.05 or duration < (STEADY_AFTER + 2) * interval:
        raise ValueError(f"need interval >= 0.05 and duration >= {STEADY_AFTER + 2} intervals")
    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess

    config = SandboxConfig(api_key="bench-key", sync_delay=3600)
    with SandboxProcess(config) as sandbox:
        _submit(sandbox.api_url, config.api_key, records)
        os.environ.update(sandbox.conn_env(CONN_ID))
        result = asyncio.run(_run(waiters, records, interval, duration, coalesce))
        requests_seen = sandbox.stats()["requests"].get(f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}", 0)
    rounds = max(1, round(duration / interval))
    return {
        "benchmark": "ConfirmaPaymentSyncTrigger waiters in one event loop",
        "waiters": waiters,
        "coalesce": coalesce,
        "records_in_status_body": records,
        "poll_interval_s": interval,
        "duration_s": duration,
        "status_requests": requests_seen,
        "requests_per_round": round(requests_seen / rounds, 2),
        **result,
        "trigger_log_level": "WARNING",
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--records", type=int, default=500, help="payments in the status body")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds each waiter waits (max 60)")
    parser.add_argument("--no-coalesce", action="store_true", help="one poll per waiter (coalesce=False)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="confirma-bench-home-"))
    try:
        report = measure(args.waiters, args.records, args.interval, args.duration, not args.no_coalesce)
    except ValueError as err:
        parser.error(str(err))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
