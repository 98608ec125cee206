"""Payment sync triggers at triggerer scale: N waits in one event loop, with and without coalescing.

Starts the sandbox CLI as a subprocess (loopback only), stores ``--records`` payments that stay
pending, then runs ``--waiters`` ``ConfirmaPaymentSyncTrigger`` instances in one asyncio loop, as a
triggerer does, for ``--duration`` seconds (they end with their timeout event). Each waits for one
payment. Prints one JSON object per configuration: the status requests the API received, requests
per poll round, this process's CPU time per round, and the event loop's lag (a 10 ms ticker; the
triggerer warns when its loop is blocked for more than 0.2 s).

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
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    # After Airflow configured logging: measure the polling, not 1 log line per waiter.
    logging.getLogger("airflow_provider_confirma").setLevel(logging.WARNING)
    # A running triggerer has the secrets backends loaded: warm them up outside the measurement.
    await ConfirmaHook(CONN_ID).aget_settings()
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    async def first_event(trigger: ConfirmaPaymentSyncTrigger) -> str:
        gen = trigger.run()
        try:
            event = await gen.__anext__()
        finally:
            await gen.aclose()
        return str(event.payload["status"])

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
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    statuses = await asyncio.gather(*(first_event(t) for t in triggers))
    cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
    done.set()
    await tick
    lags.sort()
    return {
        "events": {s: statuses.count(s) for s in sorted(set(statuses))},
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "loop_lag_ms": {
            "p50": round(statistics.median(lags) * 1000, 2) if lags else None,
            "p99": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 2) if lags else None,
            "max": round(lags[-1] * 1000, 2) if lags else None,
        },
    }


def measure(waiters: int, records: int, interval: float, duration: float, coalesce: bool) -> dict[str, Any]:
    """One bounded run against a fresh sandbox subprocess; returns the report."""
    if not 1 <= waiters <= 20000 or not 1 <= records <= 5000 or not 0 < duration <= MAX_DURATION:
        raise ValueError("need 1 <= waiters <= 20000, 1 <= records <= 5000, 0 < duration <= 60")
    if not 0.05 <= interval <= duration:
        raise ValueError("need 0.05 <= interval <= duration")
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
        "cpu_ms_per_round": round(result["cpu_seconds"] * 1000 / rounds, 2),
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
