"""Sandbox throughput: keep-alive ``GET /accounting/payment`` requests per second on one server core.

Starts the sandbox through its CLI (a subprocess, pinned to one CPU where the OS allows), stores
``--records`` payments, then hammers the status endpoint from an aiohttp client (pinned to the other
CPUs) with ``--concurrency`` keep-alive connections for ``--duration`` seconds after a warm-up.
Loopback only, bounded in time. Prints one JSON object: requests/s, latency percentiles, errors,
the server's CPU time in the measured window (so requests per server-CPU-second, the one-core
capacity even when other processes share the machine), and the CLI's start-up time (ready =
accepting connections).

    python -m benchmarks.sandbox_throughput --duration 5 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

import aiohttp

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.json_codec import encode_json
from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess
from benchmarks.common import available_cpus, cpu_seconds, pin

MAX_DURATION = 60.0


async def _load(
    url: str, key: str, concurrency: int, warmup: float, duration: float, server_pid: int
) -> dict[str, Any]:
    headers = {"X-Api-Key": key, "Accept": "application/json"}
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0, "bytes": 0}
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + duration

        async def worker() -> None:
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                try:
                    async with session.get(url, headers=headers) as response:
                        body = await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok, body = False, b""
                ended = time.perf_counter()
                if began >= measure_from and ended <= stop_at:
                    if ok:
                        counts["ok"] += 1
                        counts["bytes"] += len(body)
                        latencies.append(ended - began)
                    else:
                        counts["errors"] += 1

        cpu: list[float | None] = []

        async def sample_server_cpu() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            cpu.append(cpu_seconds(server_pid))
            await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
            cpu.append(cpu_seconds(server_pid))

        await asyncio.gather(sample_server_cpu(), *(worker() for _ in range(concurrency)))
    latencies.sort()
    server_cpu = cpu[1] - cpu[0] if len(cpu) == 2 and cpu[0] is not None and cpu[1] is not None else None

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else 0.0

    return {
        "requests_per_second": round(counts["ok"] / duration, 1),
        # the server's capacity on one core, whatever else ran on the machine
        "requests_per_server_cpu_second": round(counts["ok"] / server_cpu, 1) if server_cpu else None,
        "server_cpu_share": round(server_cpu / duration, 3) if server_cpu is not None else None,
        "ok": counts["ok"],
        "errors": counts["errors"],
        "body_bytes": counts["bytes"] // max(counts["ok"], 1),
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
        "mean_latency_ms": round(statistics.fmean(latencies) * 1000, 3) if latencies else 0.0,
    }


def measure(
    duration: float = 5.0,
    warmup: float = 1.0,
    concurrency: int = 32,
    records: int = 10,
    http: str = "auto",
    loop: str = "auto",
) -> dict[str, Any]:
    """Run one bounded measurement and return the report (see the module docstring)."""
    if not 0 < duration <= MAX_DURATION or not 0 <= warmup <= 10 or not 1 <= concurrency <= 512:
        raise ValueError("need 0 < duration <= 60, 0 <= warmup <= 10, 1 <= concurrency <= 512")
    config = SandboxConfig(api_key="bench-key", sync_delay=0)
    cpus = available_cpus()
    with SandboxProcess(config, extra_args=["--http", http, "--loop", loop]) as sandbox:
        assert sandbox.process is not None
        pinned = len(cpus) > 1 and pin(sandbox.process.pid, {cpus[0]}) and pin(0, set(cpus[1:]))
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
        if payments:
            import requests

            response = requests.post(
                sandbox.api_url + Endpoint.SUBMIT_PAYMENTS.path,
                data=encode_json({"payments": payments}),
                headers={"X-Api-Key": config.api_key, "Content-Type": "application/json"},
                timeout=30,
            )
            response.raise_for_status()
        url = sandbox.api_url + Endpoint.PAYMENT_SYNC_STATUS.path
        result = asyncio.run(_load(url, config.api_key, concurrency, warmup, duration, sandbox.process.pid))
        server_counts = sandbox.stats()["responses"].get(f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}", {})
        startup = sandbox.startup_seconds
    if cpus:
        pin(0, set(cpus))
    return {
        "benchmark": "sandbox status endpoint, keep-alive GET",
        **result,
        "server_200s": server_counts.get("200", 0),
        "cli_ready_seconds": round(startup or 0.0, 3),
        "duration_s": duration,
        "concurrency": concurrency,
        "records": records,
        "http": _resolved(http, "httptools", "h11"),
        "loop": _resolved(loop, "uvloop", "asyncio"),
        "server_pinned_to_one_cpu": pinned,
        "cpus": len(cpus),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _resolved(choice: str, fast: str, fallback: str) -> str:
    """What ``auto`` means here: the fast implementation when it is installed."""
    if choice != "auto":
        return choice
    try:
        __import__(fast)
    except ImportError:
        return fallback
    return fast


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (max 60)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--records", type=int, default=10, help="payments stored before the run")
    parser.add_argument("--http", choices=("auto", "httptools", "h11"), default="auto")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    args = parser.parse_args(argv)
    try:
        report = measure(args.duration, args.warmup, args.concurrency, args.records, args.http, args.loop)
    except ValueError as err:
        parser.error(str(err))
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] and not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
