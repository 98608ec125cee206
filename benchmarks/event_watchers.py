"""100 ``AssetWatcher`` triggers on one connection and query: status requests per poll interval.

Each watcher is a ``ConfirmaPaymentSyncEventTrigger`` (``poll_interval`` 1 s) on the sandbox, driven
the two ways a triggerer drives it: Airflow 3.3's shared streams (``SharedStreamManager``, as the
triggerer runs it) and, before 3.3, each trigger's own ``run()`` over our coalescing. For the first
half of the window the sandbox's payments stay pending (no event may fire); then they are synced,
and every watcher must fire exactly one event. The figure: the sandbox's status GETs per interval
(about 1 however many watchers, where one poll each would be 100).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

CONN_ID = "confirma_bench_events"


async def _drive(mode: str, watchers: int, interval: float, window: float, admin: Any) -> dict[str, Any]:
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncEventTrigger
    from benchmarks.common import LagTicker

    triggers = [
        ConfirmaPaymentSyncEventTrigger(confirma_conn_id=CONN_ID, poll_interval=interval) for _ in range(watchers)
    ]
    manager = None
    if mode == "shared-streams":
        from airflow.triggers.shared_stream import SharedStreamManager

        manager = SharedStreamManager()
        streams = [
            t.filter_shared_stream(manager.subscribe(trigger_id=n, trigger=t, key=t.shared_stream_key()))
            for n, t in enumerate(triggers)
        ]
    else:
        streams = [t.run() for t in triggers]
    fired = [0] * watchers

    async def consume(n: int, stream: Any) -> None:
        async for _event in stream:
            fired[n] += 1

    gets = lambda: int(admin.stats()["requests"].get("GET /api/v1/partner/accounting/payment", 0))  # noqa: E731
    before = await asyncio.to_thread(gets)
    lag = LagTicker()
    lag.start()
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(consume(n, s)) for n, s in enumerate(streams)]
    began, lag_start = time.monotonic(), loop.time()
    await asyncio.sleep(window / 2)
    pending_phase = sum(fired)
    await asyncio.to_thread(admin.sync_now)
    await asyncio.sleep(window / 2)
    elapsed = time.monotonic() - began
    requests = await asyncio.to_thread(gets) - before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if manager is not None:
        await manager.stop_all()
    await lag.stop()
    return {
        "requests": requests,
        "requests_per_interval": round(requests / (elapsed / interval), 2),
        "events_while_pending": pending_phase,
        "events_per_watcher_after_sync": sorted(set(fired)),
        "loop_lag_max_ms": lag.stats(lag_start, loop.time())["max_ms"],
    }


def measure(url: str, key: str, watchers: int = 100, interval: float = 1.0, window: float = 10.0) -> dict[str, Any]:
    """Requests per interval and events per watcher, per mode (see the module docstring)."""
    from airflow_provider_confirma.compat import AIRFLOW_V_3_3_PLUS
    from airflow_provider_confirma.sandbox import SandboxAdmin
    from benchmarks.common import bench_payments, submit_payments

    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({"conn_type": "confirma", "host": url, "password": key})
    admin = SandboxAdmin(url, key)
    out: dict[str, Any] = {"watchers": watchers, "interval": interval, "window": window, "modes": {}}
    modes = ("shared-streams", "coalescing") if AIRFLOW_V_3_3_PLUS else ("coalescing",)
    for mode in modes:
        admin.reset(keep_config=True)  # no synced payments left by the mode before (a new watcher's backlog)
        submit_payments(url + "/api/v1/partner", key, bench_payments(10))
        out["modes"][mode] = asyncio.run(_drive(mode, watchers, interval, window, admin))
    return out
