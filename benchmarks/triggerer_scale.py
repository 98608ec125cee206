"""Triggerer scale: N concurrent status waits in one asyncio event loop, as a triggerer runs them.

One measurement (:func:`measure`) runs N waiters of one client against a running sandbox, started
evenly over one poll interval, then, after a warm-up, measures a fixed window: polls per second,
this process's CPU time per poll, the event loop's lag (a ticker sleeping 0.05 s records its
overshoot), the requests the server received, the server's CPU, and the RSS added per waiter.
Every waiter waits for a payment that stays pending, so none finishes; all are cancelled at the end.

Clients (:data:`CLIENTS`):

* ``http-provider``: ``HttpSensorTrigger`` of apache-airflow-providers-http (the anchor). It fires
  on any status but 404, so it polls a path that answers 404 (its "not yet"): one request per poll,
  each on a new ``aiohttp.ClientSession`` (its own code), logging a warning per 404.
* ``confirma``: ``ConfirmaPaymentSyncTrigger(coalesce=False)``: one status request per poll and
  waiter, through the hook's shared per-loop aiohttp session; each parses the status body.
* ``confirma-coalesced``: the same with ``coalesce=True``: one request per interval for all
  waiters; a "poll" is then one waiter's evaluation of the shared response.
* ``aiohttp``: a bare loop on one shared ``aiohttp.ClientSession`` (GET, read, ``json.loads``,
  sleep), the floor any aiohttp client pays.

``polls`` are HTTP requests counted by the server, except for ``confirma-coalesced`` where they are
trigger status evaluations (each waiter judging a response); see docs/benchmarks.md.
The connections are given as ``AIRFLOW_CONN_*`` environment variables (see :func:`conn_env`), which
Airflow's connection lookup reads outside a triggerer too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any, cast

from benchmarks.common import LagTicker, bench_identifier, cpu_seconds, rss_bytes

CONN_ID = "confirma_bench"
HTTP_CONN_ID = "http_bench"
#: A path under the API prefix with no route: the sandbox answers 404, the anchor's "not yet".
ANCHOR_PATH_SUFFIX = "/_bench/not-yet"
CLIENTS = ("http-provider", "confirma", "confirma-coalesced", "aiohttp")
MAX_WAITERS = 20_000
MAX_WINDOW = 120.0


@dataclass(frozen=True)
class Target:
    """The sandbox under test: base URL (``http://host:port``), API key and server PID."""

    url: str
    api_key: str
    server_pid: int | None = None


@dataclass(frozen=True)
class ScaleConfig:
    client: str
    waiters: int
    interval: float = 1.0
    warmup: float = 4.0
    window: float = 15.0
    #: pending payments in the status body; waiter i waits for payment i % records
    records: int = 10
    #: silence the anchor's per-poll warning (``[Try 1 of 3] Request ... failed``)
    quiet_anchor: bool = False
    #: ``gc.freeze()`` the start-up heap (Airflow's imports) before the waiters start, as Airflow's
    #: DAG processor does before it forks; the triggerer does not, so the default is off
    gc_freeze: bool = False
    #: 0 for a configuration's first measurement; the headline pair is measured again (1, 2, ...)
    repeat: int = 0

    def check(self) -> None:
        if self.client not in CLIENTS:
            raise ValueError(f"client must be one of {CLIENTS}, got {self.client!r}")
        if not 1 <= self.waiters <= MAX_WAITERS:
            raise ValueError(f"waiters must be between 1 and {MAX_WAITERS}")
        if not 0.05 <= self.interval <= 60 or not 0 < self.window <= MAX_WINDOW or not 0 <= self.warmup <= 60:
            raise ValueError("need 0.05 <= interval <= 60, 0 < window <= 120, 0 <= warmup <= 60")
        if self.records < 1:
            raise ValueError("records must be >= 1")

    @property
    def bound_seconds(self) -> float:
        """An upper bound of the run's wall time (start-up spread, warm-up, window, teardown)."""
        return self.interval + self.warmup + self.window + 60.0


def conn_env(target: Target) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variables of both clients' connections to the sandbox."""
    from urllib.parse import urlsplit

    parts = urlsplit(target.url)
    confirma = json.dumps({"conn_type": "confirma", "host": target.url, "password": target.api_key})
    http = json.dumps({"conn_type": "http", "host": parts.hostname, "port": parts.port, "schema": parts.scheme})
    return {f"AIRFLOW_CONN_{CONN_ID.upper()}": confirma, f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": http}


def anchor_path() -> str:
    from airflow_provider_confirma.endpoints import API_PREFIX

    return API_PREFIX + ANCHOR_PATH_SUFFIX


def _server_key(client: str) -> str:
    from airflow_provider_confirma.endpoints import Endpoint

    return f"GET {anchor_path()}" if client == "http-provider" else f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}"


# -- clients --------------------------------------------------------------------------------------
Waiter = Callable[[int], Coroutine[Any, Any, Any]]


@dataclass
class Client:
    """How one client warms up (first connection lookup), runs waiter ``i``, and cleans up."""

    warm: Callable[[], Awaitable[None]]
    waiter: Waiter
    close: Callable[[], Awaitable[None]] | None = None


class _Evaluations:
    count = 0


def _confirma(cfg: ScaleConfig, coalesce: bool) -> Client:
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook
    from airflow_provider_confirma.sync_wait import SyncVerdict, SyncWait
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

    class CountingWait(SyncWait):
        def judge(self, index: Any) -> SyncVerdict:
            _Evaluations.count += 1
            return super().judge(index)

    class BenchTrigger(ConfirmaPaymentSyncTrigger):
        @property
        def wait(self) -> SyncWait:
            base = super().wait
            return CountingWait(base.identifiers, base.status_sets, base.fail_on_sync_failure, base.max_xcom_records)

    async def warm() -> None:
        # a triggerer has its secrets backends loaded already: do the first lookup outside the window
        await ConfirmaHook(CONN_ID).aget_settings()

    async def waiter(i: int) -> Any:
        started = time.time()
        trigger = BenchTrigger(
            confirma_conn_id=CONN_ID,
            source_identifiers=[bench_identifier(i % cfg.records)],
            poll_interval=cfg.interval,
            started_at=started,
            end_time=started + 3600,
            coalesce=coalesce,
        )
        gen = cast(AsyncGenerator[Any, None], trigger.run())
        try:
            return await gen.__anext__()
        finally:
            await gen.aclose()

    return Client(warm, waiter)


def _anchor(cfg: ScaleConfig, target: Target) -> Client:
    from airflow.providers.http.hooks.http import HttpAsyncHook
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    path = anchor_path()

    async def warm() -> None:
        if cfg.quiet_anchor:
            import logging

            logging.getLogger("airflow.providers.http.hooks.http").setLevel(logging.ERROR)
        await HttpAsyncHook(method="GET", http_conn_id=HTTP_CONN_ID).config()

    async def waiter(i: int) -> Any:
        trigger = HttpSensorTrigger(
            endpoint=path,
            http_conn_id=HTTP_CONN_ID,
            method="GET",
            headers={"X-Api-Key": target.api_key},
            poke_interval=cfg.interval,
        )
        async for event in trigger.run():
            return event
        return None

    return Client(warm, waiter)


def _bare_aiohttp(cfg: ScaleConfig, target: Target) -> Client:
    import aiohttp

    from airflow_provider_confirma.endpoints import Endpoint

    url = target.url + Endpoint.PAYMENT_SYNC_STATUS.full_path
    headers = {"X-Api-Key": target.api_key, "Accept": "application/json"}
    holder: dict[str, aiohttp.ClientSession] = {}

    async def warm() -> None:
        holder["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def waiter(i: int) -> Any:
        session = holder["session"]
        while True:
            async with session.get(url, headers=headers) as response:
                json.loads(await response.read())
            await asyncio.sleep(cfg.interval)

    async def close() -> None:
        await holder["session"].close()

    return Client(warm, waiter, close)


def _client(cfg: ScaleConfig, target: Target) -> Client:
    if cfg.client == "http-provider":
        return _anchor(cfg, target)
    if cfg.client == "aiohttp":
        return _bare_aiohttp(cfg, target)
    return _confirma(cfg, coalesce=cfg.client == "confirma-coalesced")


# -- the measurement ------------------------------------------------------------------------------
class GcPauses:
    """Garbage-collector pauses by generation, from ``gc.callbacks`` (a full collection walks the
    whole heap, Airflow's imports included, and blocks the event loop meanwhile)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (end, generation, seconds)
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            now = time.perf_counter()
            self.pauses.append((now, int(info.get("generation", -1)), now - self._began))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self)

    def stats(self, start: float, end: float) -> dict[str, Any]:
        window = [(g, s) for when, g, s in self.pauses if start <= when <= end]
        full = [s for g, s in window if g == 2]
        return {
            "gc_collections": {str(g): sum(1 for gen, _ in window if gen == g) for g in (0, 1, 2)},
            "gc_full_max_ms": round(max(full) * 1000, 1) if full else None,
            "gc_seconds": round(sum(s for _, s in window), 3),
        }


@dataclass
class _Mark:
    loop_time: float
    wall: float
    cpu: float
    server_cpu: float | None
    evaluations: int
    requests: int
    responses: dict[str, int]


async def _mark(cfg: ScaleConfig, target: Target) -> _Mark:
    from airflow_provider_confirma.sandbox import SandboxAdmin

    loop = asyncio.get_running_loop()
    mark = _Mark(
        loop.time(),
        time.perf_counter(),
        time.process_time(),
        cpu_seconds(target.server_pid) if target.server_pid else None,
        _Evaluations.count,
        0,
        {},
    )
    stats = await asyncio.to_thread(SandboxAdmin(target.url, target.api_key).stats)
    key = _server_key(cfg.client)
    mark.requests = int(stats["requests"].get(key, 0))
    mark.responses = {k: int(v) for k, v in stats["responses"].get(key, {}).items()}
    return mark


async def _run(cfg: ScaleConfig, target: Target, teardown: bool) -> dict[str, Any]:
    with GcPauses() as pauses:
        return await _run_measured(cfg, target, pauses, teardown)


async def _run_measured(cfg: ScaleConfig, target: Target, pauses: GcPauses, teardown: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = _client(cfg, target)
    _Evaluations.count = 0
    await client.warm()
    gc.collect()
    if cfg.gc_freeze:
        gc.freeze()
    rss_before = rss_bytes()
    ticker = LagTicker(0.05)
    ticker.start()
    tasks: list[asyncio.Task[Any]] = []
    # Start the waiters evenly over one interval, as a triggerer receives them over time.
    began = loop.time()
    for i in range(cfg.waiters):
        delay = began + i * cfg.interval / cfg.waiters - loop.time()
        if delay > 0.002:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(client.waiter(i)))
    started_in = loop.time() - began
    await asyncio.sleep(cfg.warmup)
    first = await _mark(cfg, target)
    await asyncio.sleep(cfg.window)
    last = await _mark(cfg, target)
    rss_after = rss_bytes()
    finished_early = [t for t in tasks if t.done()]
    failures = sorted({repr(t.exception())[:200] for t in finished_early if not t.cancelled() and t.exception()})
    if teardown:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await ticker.stop()
        if client.close is not None:
            await client.close()

    elapsed = last.loop_time - first.loop_time
    cpu = last.cpu - first.cpu
    requests = last.requests - first.requests
    evaluations = last.evaluations - first.evaluations
    polls = evaluations if cfg.client == "confirma-coalesced" else requests
    ideal = cfg.waiters / cfg.interval
    server_cpu = (
        last.server_cpu - first.server_cpu if last.server_cpu is not None and first.server_cpu is not None else None
    )
    responses = {k: v - first.responses.get(k, 0) for k, v in last.responses.items()}
    responses = {k: v for k, v in responses.items() if v}
    lag = ticker.stats(first.loop_time, last.loop_time)
    gc_stats = pauses.stats(first.wall, last.wall)
    return {
        **asdict(cfg),
        "poll_unit": "evaluation" if cfg.client == "confirma-coalesced" else "request",
        "measured_seconds": round(elapsed, 3),
        "started_waiters_in_s": round(started_in, 3),
        "ideal_polls_per_s": round(ideal, 1),
        "polls_per_s": round(polls / elapsed, 1),
        "pct_of_ideal": round(100 * polls / elapsed / ideal, 1),
        "requests_per_s": round(requests / elapsed, 2),
        "evaluations_per_s": round(evaluations / elapsed, 1),
        "server_responses": responses,
        "cpu_ms_per_poll": round(cpu * 1000 / polls, 3) if polls else None,
        "cpu_ms_per_request": round(cpu * 1000 / requests, 3) if requests else None,
        "client_cpu_share": round(cpu / elapsed, 3),
        "server_cpu_share": round(server_cpu / elapsed, 3) if server_cpu is not None else None,
        "loop_lag_max_ms": lag["max_ms"],
        "loop_lag_p99_ms": lag["p99_ms"],
        "loop_lag_p50_ms": lag["p50_ms"],
        "lag_samples": lag["samples"],
        "rss_before_mb": round(rss_before / 2**20, 1) if rss_before else None,
        "rss_after_mb": round(rss_after / 2**20, 1) if rss_after else None,
        "rss_per_waiter_kb": round((rss_after - rss_before) / 1024 / cfg.waiters, 2)
        if rss_before and rss_after
        else None,
        **gc_stats,
        "waiters_finished_early": len(finished_early),
        "waiter_errors": failures[:5],
    }


def measure(cfg: ScaleConfig, target: Target, teardown: bool = True) -> dict[str, Any]:
    """Run one configuration in this process's own new event loop (connections from the env).

    ``teardown=False`` leaves the waiters running and the loop open when the measurement is done:
    for a child process that exits right after (cancelling thousands of saturated waiters takes
    longer than the window).
    """
    cfg.check()
    if teardown:
        return asyncio.run(_run(cfg, target, teardown=True))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(_run(cfg, target, teardown=False))
