"""DAG parse cost: the import time of the provider's sensor and operator modules beyond ``airflow.sdk``.

A DAG file that uses an operator pays its module's import at every parse. Measured as the DAG
processor sees it: one process imports ``airflow.sdk`` once, then forks a child per measurement,
and the child times ``import <module>`` (``time.perf_counter``); the median of ``runs`` children
per target is reported. One extra fresh interpreter runs ``python -X importtime`` over the
provider's modules, so the report can name the imports that cost the most (self time, beyond
``airflow.sdk``).

    python -m benchmarks.import_cost --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

#: name -> modules imported together (as one DAG file would)
TARGETS: dict[str, tuple[str, ...]] = {
    "ConfirmaPaymentSyncSensor": ("airflow_provider_confirma.sensors.payment_sync",),
    "Confirma sensor + operators": (
        "airflow_provider_confirma.sensors.payment_sync",
        "airflow_provider_confirma.operators.payments",
        "airflow_provider_confirma.operators.accounting",
        "airflow_provider_confirma.operators.invoices",
    ),
    "HttpSensor (http provider)": ("airflow.providers.http.sensors.http",),
}
#: third-party packages worth naming when they are imported beyond airflow.sdk
WATCHED = (
    "requests",
    "urllib3",
    "aiohttp",
    "tenacity",
    "pendulum",
    "yarl",
    "multidict",
    "httpx",
    "idna",
    "charset_normalizer",
)
MAX_RUNS = 25


#: what every DAG file with a sensor imports anyway, on top of ``import airflow.sdk``
AUTHORING = "from airflow.sdk import DAG, BaseOperator, BaseSensorOperator, BaseHook, PokeReturnValue"


def _child_import(modules: tuple[str, ...], code: str | None = None) -> float:
    import importlib

    began = time.perf_counter()
    if code is not None:
        exec(code, {})  # noqa: S102 - a constant import line of this module
    for module in modules:
        importlib.import_module(module)
    return time.perf_counter() - began


def _forked_times(modules: tuple[str, ...], runs: int, code: str | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                seconds = _child_import(modules, code)
                os.write(write_fd, repr(seconds).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            text = pipe.read()
        os.waitpid(pid, 0)
        if text:
            times.append(float(text))
    return times


def _summary(times: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(times) * 1000, 2) if times else None,
        "min_ms": round(min(times) * 1000, 2) if times else None,
        "max_ms": round(max(times) * 1000, 2) if times else None,
        "runs": len(times),
    }


def zygote(runs: int) -> dict[str, Any]:
    """In a fresh interpreter: import airflow.sdk, freeze the heap as Airflow's DAG processor does
    before it forks a parser, then time each target in forked children; then the same on top of
    the authoring imports (:data:`AUTHORING`)."""
    import gc

    began = time.perf_counter()
    import airflow.sdk  # noqa: F401 - the baseline every DAG file pays anyway

    sdk_seconds = time.perf_counter() - began
    already = sorted(p for p in WATCHED if p in sys.modules)
    gc.freeze()
    out: dict[str, Any] = {
        "airflow_sdk_import_s": round(sdk_seconds, 3),
        "watched_already_imported": already,
        "authoring_line": AUTHORING,
        "authoring_beyond_sdk": _summary(_forked_times((), runs, AUTHORING)),
    }
    targets: dict[str, Any] = {}
    for name, modules in TARGETS.items():
        targets[name] = {"modules": list(modules), "beyond_sdk": _summary(_forked_times(modules, runs))}
    exec(AUTHORING, {})  # noqa: S102 - a constant import line of this module
    gc.freeze()
    for name, modules in TARGETS.items():
        targets[name]["beyond_authoring"] = _summary(_forked_times(modules, runs))
    out["targets"] = targets
    return out


#: a tiny stdlib module nothing else imports: its line marks the end of the baseline imports
MARKER = "tabnanny"


def parse_importtime(stderr: str, after: str = MARKER) -> list[dict[str, Any]]:
    """Modules imported after the top-level import of ``after``, from ``-X importtime`` output
    (microseconds)."""
    rows: list[dict[str, Any]] = []
    started = False
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        self_us, cumulative_us, name = int(parts[0]), int(parts[1]), parts[2]
        module = name.strip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if not started:
            started = module == after and depth == 0
            continue
        rows.append({"module": module, "self_us": self_us, "cumulative_us": cumulative_us, "depth": depth})
    return rows


def importtime_breakdown(modules: tuple[str, ...], python: str = sys.executable, top: int = 12) -> dict[str, Any]:
    """``python -X importtime`` of ``modules`` after ``airflow.sdk`` in a fresh interpreter."""
    # as in the DAG processor: the heap of the baseline frozen, so no full GC over it lands in a module
    code = f"import airflow.sdk\n{AUTHORING}\nimport gc\ngc.freeze()\nimport {MARKER}\n" + "".join(
        f"import {m}\n" for m in modules
    )
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ},
    )
    rows = parse_importtime(proc.stderr)
    total_self = sum(r["self_us"] for r in rows)
    by_package: dict[str, int] = {}
    for row in rows:
        package = row["module"].split(".")[0]
        by_package[package] = by_package.get(package, 0) + row["self_us"]
    return {
        "modules": list(modules),
        "returncode": proc.returncode,
        "total_self_ms": round(total_self / 1000, 2),
        "by_package_ms": {k: round(v / 1000, 2) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]},
        "top_modules_self_ms": [
            {"module": r["module"], "self_ms": round(r["self_us"] / 1000, 2)}
            for r in sorted(rows, key=lambda r: -r["self_us"])[:top]
        ],
    }


def measure(
    runs: int = 7, python: str = sys.executable, cpu: int | None = None, breakdown: bool = True
) -> dict[str, Any]:
    """Run the zygote (and the ``-X importtime`` breakdown) in fresh interpreters; bounded."""
    from benchmarks.common import taskset_prefix

    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 1 and {MAX_RUNS}")
    proc = subprocess.run(
        [*taskset_prefix(cpu), python, "-m", "benchmarks.import_cost", "--zygote", "--runs", str(runs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    result: dict[str, Any] = json.loads(lines[-1])
    result["runs"] = runs
    if breakdown:
        result["breakdown"] = importtime_breakdown(TARGETS["Confirma sensor + operators"], python)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.zygote:
        print(json.dumps(zygote(args.runs)))
        return 0
    print(json.dumps(measure(args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
