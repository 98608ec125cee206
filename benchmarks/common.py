"""Helpers shared by the benchmarks: process CPU time and RSS, CPU pinning, loop-lag sampling,
percentiles, storing bench payments in a sandbox, and the machine/versions description.

Standard library only at import time (each benchmark imports Airflow or aiohttp itself), so the
runner and the import-cost benchmark stay cheap to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

#: Identifier prefix of the payments the benchmarks store (and wait for).
BENCH_PREFIX = "bench-"


def bench_identifier(i: int) -> str:
    return f"{BENCH_PREFIX}{i:06d}"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux ``/proc``), else ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident set size (``VmRSS`` of ``/proc/<pid>/status``) in bytes, else ``None``."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def pin(pid: int, cpus: set[int]) -> bool:
    """Pin ``pid`` (0 = this process) to ``cpus``; ``False`` where the OS does not allow it."""
    if not hasattr(os, "sched_setaffinity") or not cpus:
        return False
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError:
        return False
    return True


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def taskset_prefix(cpu: int | None) -> list[str]:
    """``["taskset", "-c", "<cpu>"]`` when ``taskset`` exists and ``cpu`` is given, else ``[]``."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


def load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p`` quantile (0..1, nearest rank) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))]


@dataclass
class LagTicker:
    """Event-loop lag: a task sleeping ``period`` seconds in a loop, recording each overshoot.

    Samples are ``(monotonic time at wake-up, overshoot seconds)``; :meth:`stats` summarizes those
    taken within a window.
    """

    period: float = 0.05
    samples: list[tuple[float, float]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.period)
            now = loop.time()
            self.samples.append((now, max(0.0, now - before - self.period)))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench-lag-ticker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def stats(self, start: float, end: float) -> dict[str, float | int | None]:
        lags = [lag for when, lag in self.samples if start <= when <= end]
        p99 = percentile(lags, 0.99)
        return {
            "samples": len(lags),
            "max_ms": round(max(lags) * 1000, 1) if lags else None,
            "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
            "p50_ms": round((percentile(lags, 0.5) or 0.0) * 1000, 2) if lags else None,
        }


def bench_payments(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` valid payment submissions with identifiers :func:`bench_identifier` (amounts exact)."""
    return [
        {
            "paymentIdentifier": bench_identifier(i),
            "invoiceNumber": str(10001 + i),
            "paymentDate": "2026-02-01",
            "amount": Decimal("12.30"),
            "currency": "EUR",
        }
        for i in range(start, start + count)
    ]


def submit_payments(api_url: str, key: str, payments: Iterable[dict[str, Any]]) -> None:
    """POST the payments to a sandbox (the real endpoint, exact amounts); raises on an error status."""
    import requests

    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.json_codec import encode_json

    body = list(payments)
    if not body:
        return
    response = requests.post(
        api_url + Endpoint.SUBMIT_PAYMENTS.path,
        data=encode_json({"payments": body}),
        headers={"X-Api-Key": key, "Content-Type": "application/json"},
        timeout=60,
    )
    response.raise_for_status()


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model and count, OS, and the versions the figures depend on."""
    model = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    if model is None:
        model = platform.processor() or platform.machine()
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "taskset": shutil.which("taskset") is not None,
        "versions": {
            "python": platform.python_version(),
            "apache-airflow": _version("apache-airflow"),
            "aiohttp": _version("aiohttp"),
            "apache-airflow-providers-http": _version("apache-airflow-providers-http"),
            "requests": _version("requests"),
            "uvicorn": _version("uvicorn"),
            "airflow-provider-confirma": _version("airflow-provider-confirma"),
        },
    }


def now_iso() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())


def run_forked(fn: Any, *args: Any, timeout: float, log_path: str | None = None) -> dict[str, Any]:
    """Run ``fn(*args)`` in a forked child process and return its JSON-safe dict result.

    The child starts from this process's imports (Airflow's import alone takes seconds), but with
    its own memory, CPU accounting and event loop; its output goes to ``log_path``. It is killed by
    its PID after ``timeout`` seconds. An exception in the child comes back as ``{"error": ...}``.
    """
    import json
    import signal
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(prefix="confirma-bench-", suffix=".json", delete=False) as handle:
        result_path = handle.name
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            if log_path:
                fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
            try:
                out: Any = fn(*args)
                code = 0
            except BaseException:
                out = {"error": traceback.format_exc(limit=8)[-3000:]}
            with open(result_path, "w") as result_file:
                json.dump(out, result_file)
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"error": f"timed out after {timeout:.0f}s; killed PID {pid}"}
            time.sleep(0.05)
        with open(result_path) as result_file:
            text = result_file.read()
        return json.loads(text) if text else {"error": "the child wrote no result"}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(result_path)
