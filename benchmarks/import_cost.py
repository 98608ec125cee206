"""DAG parse cost: the import time of the provider's sensor and operator modules beyond ``airflow.sdk``.

A DAG file that uses an operator pays its module's import at every parse, and the construction
of its tasks too. Measured as the DAG processor sees it: one process imports ``airflow.sdk`` once,
then forks a child per measurement, and the child times ``import <module>`` (``time.perf_counter``);
the median of ``runs`` children per target is reported. The DAG-file rows (:data:`DAG_FILES`) time
a small DAG file instead: its imports, then the construction of its DAG and tasks (so cost moved
from a module's import into a constructor still shows), on top of the authoring imports and one
DAG already built (:data:`WARM_DAG`): the DAG processor's parent has Airflow's DAG machinery
loaded. One extra fresh interpreter runs
``python -X importtime`` over the provider's modules, so the report can name the imports that
cost the most (self time, beyond ``airflow.sdk``).

    python -m benchmarks.import_cost --runs 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
#: A submit operator and a deferrable sensor as the example DAG has them (templated payload, so it
#: is validated after rendering, not at parse).
_CONFIRMA_DAG = """
payments = [
    {"paymentIdentifier": f"pay-{{{{ ds_nodash }}}}-{n}", "invoiceNumber": str(10000 + n), "paymentDate": "{{ ds }}",
     "bookingDate": "{{ ds }}", "amount": "100.10", "currency": "EUR", "targetIdentifier": "invoicenumber"}
    for n in range(3)
]
with DAG("parse_cost", schedule=None):
    submit = ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments)
    ConfirmaPaymentSyncSensor(
        task_id="wait", source_identifiers=submit.output, deferrable=True, poke_interval=2, timeout=600, emit_asset=True
    )
"""
#: built once before the DAG-file rows are timed (see :func:`zygote`)
WARM_DAG = (
    "from airflow.sdk import DAG, Asset, BaseOperator\n"
    'with DAG("warm", schedule=None):\n    BaseOperator(task_id="a", outlets=[Asset("warm://a")])\n'
)
#: name -> (a DAG file's imports, the DAG it defines); timed apart, in one child
DAG_FILES: dict[str, tuple[str, str]] = {
    "DAG of 2 BaseOperator tasks (reference)": (
        "from airflow.sdk import DAG, BaseOperator",
        'with DAG("parse_cost", schedule=None):\n    BaseOperator(task_id="a") >> BaseOperator(task_id="b")\n',
    ),
    "DAG of ConfirmaSubmitPaymentsOperator + ConfirmaPaymentSyncSensor": (
        "from airflow.sdk import DAG\n"
        "from airflow_provider_confirma.operators.accounting import ConfirmaSubmitPaymentsOperator\n"
        "from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor",
        _CONFIRMA_DAG,
    ),
    "DAG of HttpSensor (http provider)": (
        "from airflow.sdk import DAG\nfrom airflow.providers.http.sensors.http import HttpSensor",
        'with DAG("parse_cost", schedule=None):\n    HttpSensor(task_id="wait", endpoint="status")\n',
    ),
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


def _child_dag_file(imports: str, dag: str) -> list[float]:
    """``[import seconds, construct seconds]`` of one DAG file."""
    namespace: dict[str, Any] = {}
    began = time.perf_counter()
    exec(imports, namespace)  # noqa: S102 - a constant DAG file of this module
    imported = time.perf_counter()
    exec(dag, namespace)  # noqa: S102
    return [imported - began, time.perf_counter() - imported]


def _forked(measure: Callable[[], Any], runs: int) -> list[Any]:
    """``measure()`` in ``runs`` forked children, one after another; their JSON results."""
    results = []
    for _ in range(runs):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                os.write(write_fd, json.dumps(measure()).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            text = pipe.read()
        os.waitpid(pid, 0)
        if text:
            results.append(json.loads(text))
    return results


def _forked_times(modules: tuple[str, ...], runs: int, code: str | None = None) -> list[float]:
    return [float(t) for t in _forked(lambda: _child_import(modules, code), runs)]


def _dag_file_summary(imports: str, dag: str, runs: int) -> dict[str, Any]:
    """Import + construct of one DAG file, and the construct part alone."""
    parts = _forked(lambda: _child_dag_file(imports, dag), runs)
    return {**_summary([i + c for i, c in parts]), "construct_median_ms": _summary([c for _, c in parts])["median_ms"]}


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
        # without either, and without __pycache__ files, every import compiles its source
        "writes_bytecode": not sys.dont_write_bytecode,
        "pycache_prefix": sys.pycache_prefix is not None,
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
    # The DAG processor's parent has Airflow's DAG machinery (timetables, asset models) loaded: so
    # does this one, by building a throwaway DAG, so a row's construct part is its own tasks' cost.
    exec(WARM_DAG, {})  # noqa: S102 - a constant DAG of this module
    gc.freeze()
    out["dag_files"] = {
        name: {"imports": imports, "beyond_authoring_and_a_dag": _dag_file_summary(imports, dag, runs)}
        for name, (imports, dag) in DAG_FILES.items()
    }
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


def importtime_breakdown(
    modules: tuple[str, ...], python: str = sys.executable, top: int = 12, env: dict[str, str] | None = None
) -> dict[str, Any]:
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
        env=env if env is not None else {**os.environ},
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


def _warm_up_code() -> str:
    """Everything the measurements import, once (to fill a bytecode cache)."""
    modules = sorted({m for group in TARGETS.values() for m in group})
    dag_imports = "\n".join(imports for imports, _ in DAG_FILES.values())
    return f"import airflow.sdk\n{AUTHORING}\n{WARM_DAG}\n{dag_imports}\n" + "".join(f"import {m}\n" for m in modules)


def measure(
    runs: int = 7,
    python: str = sys.executable,
    cpu: int | None = None,
    breakdown: bool = True,
    cached_bytecode: bool = False,
) -> dict[str, Any]:
    """Run the zygote (and the ``-X importtime`` breakdown) in fresh interpreters; bounded.

    With ``cached_bytecode``, every module is first compiled once into a temporary bytecode cache
    (``PYTHONPYCACHEPREFIX``; nothing is written to the tree or the venv), so the figures are those
    of an installed provider, whose ``.pyc`` files exist; else the environment decides (with
    ``PYTHONDONTWRITEBYTECODE`` and no ``__pycache__``, every import compiles its source).
    """
    from benchmarks.common import taskset_prefix

    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 1 and {MAX_RUNS}")
    env = {**os.environ}
    with contextlib.ExitStack() as stack:
        if cached_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="import-cost-pyc-"))
            subprocess.run(
                [python, "-c", _warm_up_code()], capture_output=True, text=True, timeout=600, check=False, env=env
            )
        proc = subprocess.run(
            [*taskset_prefix(cpu), python, "-m", "benchmarks.import_cost", "--zygote", "--runs", str(runs)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=env,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            return {"error": (proc.stderr or proc.stdout)[-2000:]}
        result: dict[str, Any] = json.loads(lines[-1])
        result["runs"] = runs
        result["cached_bytecode"] = cached_bytecode
        if breakdown:
            result["breakdown"] = importtime_breakdown(TARGETS["Confirma sensor + operators"], python, env=env)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--cached-bytecode",
        action="store_true",
        help="measure with every module's bytecode already compiled (a temporary cache), as installed",
    )
    parser.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.zygote:
        print(json.dumps(zygote(args.runs)))
        return 0
    print(json.dumps(measure(args.runs, cached_bytecode=args.cached_bytecode), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
