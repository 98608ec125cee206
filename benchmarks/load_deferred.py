"""Deferred waits under faults: N ``ConfirmaPaymentSyncTrigger.run()`` generators in one event loop
(as one triggerer runs them) against a sandbox subprocess that fails a share of the status GETs.

Loopback only, bounded in time and count. The sandbox CLI starts as a subprocess; ``--payments``
payments are submitted first (POST, no chaos) and settle after ``--sync-delay`` seconds, a seeded
``--sync-failure-rate`` of them as failed. Then chaos hits ``--fault-rate`` of the status GETs, an
even mix of 500, 502, 503, 429 (with ``Retry-After: 1``) and connection resets, and ``--waiters``
triggers wait, waiter *i* for payment *i mod payments*, each rebuilt from its serialized kwargs as
the triggerer does, with the default hook retry policy. Runs with coalescing on and off (every
waiter polls for itself: the harder case for the fault handling).

Each run reports: wall time, the status requests the server received and how many chaos spoiled,
the hook's retries, events by status, ``lost`` (waiters without an event), ``wrong`` (an event
that disagrees with the sandbox's final record) and the sandbox's duplicate counter. Exit status 1
when anything was lost, wrong or duplicated.

    python -m benchmarks.load_deferred --waiters 1000 --fault-rate 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CONN_ID = "confirma_load"
TRIGGER_LOGGER = "airflow_provider_confirma.triggers.load"
MAX_WAITERS = 5000
MAX_SECONDS = 300.0
#: the transient faults, in equal shares of the fault rate
FAULTS = ("error_500", "error_502", "error_503", "rate_limit", "reset")


@dataclass(frozen=True)
class LoadSettings:
    waiters: int = 1000
    payments: int = 50
    fault_rate: float = 0.2
    interval: float = 1.0
    sync_delay: float = 8.0
    sync_failure_rate: float = 0.1
    max_seconds: float = 120.0
    seed: int = 7

    def __post_init__(self) -> None:
        if not 1 <= self.waiters <= MAX_WAITERS:
            raise ValueError(f"waiters must be between 1 and {MAX_WAITERS}")
        if not 1 <= self.payments <= 1000:
            raise ValueError("payments must be between 1 and 1000")
        if not 0 <= self.fault_rate <= 0.5:
            raise ValueError("fault-rate must be between 0 and 0.5")
        if not 0.05 <= self.interval <= 10 or not 0 <= self.sync_delay <= 60:
            raise ValueError("need 0.05 <= interval <= 10 and 0 <= sync-delay <= 60")
        if not 0 <= self.sync_failure_rate <= 1:
            raise ValueError("sync-failure-rate must be between 0 and 1")
        if not 0 < self.max_seconds <= MAX_SECONDS:
            raise ValueError(f"max-seconds must be in (0, {MAX_SECONDS:g}]")


class _Counting(logging.Handler):
    """Counts the provider's log records by message template instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[str(record.msg)] += 1


def _identifier(i: int) -> str:
    return f"load-{i:04d}"


def _submit(payments: int) -> None:
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    batch = [
        {
            "paymentIdentifier": _identifier(i),
            "invoiceNumber": str(900001 + i),
            "paymentDate": "2026-02-02",
            "amount": Decimal("12.30"),
            "currency": "EUR",
        }
        for i in range(payments)
    ]
    ConfirmaHook(CONN_ID).submit_payments({"payments": batch})


def _triggers(settings: LoadSettings, coalesce: bool, started: float) -> list[Any]:
    """The waiters, each rebuilt from its serialized kwargs as a triggerer gets them."""
    from airflow.providers.common.compat.module_loading import import_string

    try:
        from airflow.sdk.serde import deserialize, serialize  # Airflow 3.2+
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]

    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

    out = []
    for i in range(settings.waiters):
        trigger = ConfirmaPaymentSyncTrigger(
            confirma_conn_id=CONN_ID,
            source_identifiers=[_identifier(i % settings.payments)],
            poll_interval=settings.interval,
            started_at=started,
            end_time=started + settings.max_seconds,
            coalesce=coalesce,
        )
        classpath, kwargs = trigger.serialize()
        rebuilt = import_string(classpath)(**deserialize(json.loads(json.dumps(serialize(kwargs)))))
        # A stdlib logger under the provider's name, so its warnings are counted, not printed.
        rebuilt._log = logging.getLogger(TRIGGER_LOGGER)
        out.append(rebuilt)
    return out


async def _wait_all(triggers: list[Any], max_seconds: float) -> tuple[list[dict[str, Any] | None], dict[str, float]]:
    """Run every trigger until its first event; ``None`` for one that gave none within the bound."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    async def first_event(trigger: Any) -> dict[str, Any] | None:
        gen = trigger.run()
        try:
            event = await gen.__anext__()
        except StopAsyncIteration:
            return None
        finally:
            await gen.aclose()
        return dict(event.payload)

    # A running triggerer has its secrets backends loaded: resolve the connection once beforehand.
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    await ConfirmaHook(CONN_ID).aget_settings()
    tick = asyncio.create_task(ticker())
    tasks = [asyncio.create_task(first_event(t)) for t in triggers]
    finished, unfinished = await asyncio.wait(tasks, timeout=max_seconds)
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
    done.set()
    await tick
    events = [t.result() if t in finished and t.exception() is None else None for t in tasks]
    lags.sort()
    lag = {
        "p50_ms": round(lags[len(lags) // 2] * 1000, 1) if lags else 0.0,
        "p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1) if lags else 0.0,
        "max_ms": round(lags[-1] * 1000, 1) if lags else 0.0,
    }
    return events, lag


def run_scenario(sandbox: Any, settings: LoadSettings, coalesce: bool) -> dict[str, Any]:
    """One run against a running sandbox (reset first); ``AIRFLOW_CONN_CONFIRMA_LOAD`` must point at it."""
    from airflow_provider_confirma.endpoints import Endpoint

    sandbox.reset(keep_config=True)
    sandbox.clear_chaos()
    _submit(settings.payments)
    share = settings.fault_rate / len(FAULTS)
    sandbox.set_chaos(**dict.fromkeys(FAULTS, share), methods=["GET"], seed=settings.seed, retry_after=1)

    counting = _Counting()
    provider_log = logging.getLogger("airflow_provider_confirma")
    provider_log.addHandler(counting)
    saved = (provider_log.level, provider_log.propagate)
    provider_log.setLevel(logging.WARNING)  # thousands of waiters: count warnings, print nothing
    provider_log.propagate = False
    try:
        started = time.time()
        triggers = _triggers(settings, coalesce, started)
        cpu0, wall0 = time.process_time(), time.monotonic()
        # a trigger ends with a timeout event at max_seconds; the outer bound only catches a hang
        events, lag = asyncio.run(_wait_all(triggers, settings.max_seconds + 15))
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    finally:
        provider_log.removeHandler(counting)
        provider_log.setLevel(saved[0])
        provider_log.propagate = saved[1]

    stats = sandbox.stats()
    truth = {r["sourceIdentifier"]: r["status"] for r in sandbox.records()["payments"]}
    expected = [
        "success" if truth.get(_identifier(i % settings.payments)) == 1 else "failed" for i in range(settings.waiters)
    ]
    statuses = [e["status"] if e else None for e in events]
    status_key = f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}"
    gets = stats["requests"].get(status_key, 0)
    spoiled = sum(v for k, v in stats["chaos"].items() if k != "latency")
    retries = counting.counts.get("Confirma %s %s attempt %d failed (%s); retrying in %.2fs", 0)
    return {
        "coalesce": coalesce,
        "waiters": settings.waiters,
        "wall_seconds": round(wall, 2),
        "client_cpu_seconds": round(cpu, 2),
        "status_requests": gets,
        "status_requests_per_wait": round(gets / settings.waiters, 3),
        "status_polls_answered": stats["responses"].get(status_key, {}).get("200", 0),
        "faulted_requests": spoiled,
        "faulted_share": round(spoiled / gets, 3) if gets else 0.0,
        "faults_by_kind": {k: v for k, v in sorted(stats["chaos"].items()) if k != "latency"},
        "responses": stats["responses"].get(status_key, {}),
        "hook_retries": retries,
        "poll_errors_after_retries": sum(v for k, v in counting.counts.items() if "in a row" in k),
        "events": dict(sorted(Counter(s or "none" for s in statuses).items())),
        "expected": dict(sorted(Counter(expected).items())),
        "lost": sum(1 for s in statuses if s is None),
        "wrong": sum(1 for s, want in zip(statuses, expected, strict=True) if s is not None and s != want),
        "post_requests": stats["requests"].get(f"POST {Endpoint.SUBMIT_PAYMENTS.full_path}", 0),
        "duplicates": stats["duplicates"]["total"],
        "loop_lag": lag,
    }


def measure(settings: LoadSettings, modes: tuple[bool, ...] = (True, False)) -> dict[str, Any]:
    """Start a sandbox subprocess and run each mode (coalesce on/off) against it."""
    from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess

    config = SandboxConfig(
        api_key="load-key", sync_delay=settings.sync_delay, failure_rate=settings.sync_failure_rate, seed=settings.seed
    )
    with SandboxProcess(config) as sandbox:
        ((name, value),) = sandbox.conn_env(CONN_ID).items()
        saved = os.environ.get(name)
        os.environ[name] = value
        try:
            runs = [run_scenario(sandbox, settings, coalesce) for coalesce in modes]
        finally:
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved
    return {
        "benchmark": "deferred payment sync waits under transient faults, one event loop",
        "settings": {
            "waiters": settings.waiters,
            "payments": settings.payments,
            "fault_rate": settings.fault_rate,
            "faults": list(FAULTS),
            "poll_interval_s": settings.interval,
            "sync_delay_s": settings.sync_delay,
            "sync_failure_rate": settings.sync_failure_rate,
            "hook_retry_policy": "default (5 attempts, backoff 0.5-8 s, Retry-After honoured up to 30 s)",
        },
        "runs": runs,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=50, help="payments in the status body")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of status GETs that fail")
    parser.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds")
    parser.add_argument("--sync-delay", type=float, default=8.0, help="seconds until a payment settles")
    parser.add_argument("--sync-failure-rate", type=float, default=0.1, help="share of payments that fail to sync")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound of each run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mode", choices=["both", "coalesce", "no-coalesce"], default="both")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="confirma-load-home-"))
    try:
        settings = LoadSettings(
            waiters=args.waiters,
            payments=args.payments,
            fault_rate=args.fault_rate,
            interval=args.interval,
            sync_delay=args.sync_delay,
            sync_failure_rate=args.sync_failure_rate,
            max_seconds=args.max_seconds,
            seed=args.seed,
        )
    except ValueError as err:
        parser.error(str(err))
    modes = {"both": (True, False), "coalesce": (True,), "no-coalesce": (False,)}[args.mode]
    report = measure(settings, modes)
    print(json.dumps(report, indent=2))
    bad = any(run["lost"] or run["wrong"] or run["duplicates"] for run in report["runs"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
