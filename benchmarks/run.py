"""``make bench``: every benchmark side by side in one run, then the results JSON, tables and chart.

Sections (each bounded in time; loopback only; every process it starts is stopped by its PID):

1. ``imports``: DAG parse cost of the sensor and operator modules (:mod:`.import_cost`).
2. ``scale``: triggerer scale, ours against ``HttpSensorTrigger`` (:mod:`.triggerer_scale`). One
   sandbox subprocess pinned to the first CPU; each client configuration runs in its own process,
   forked from this one (which holds the imports) and pinned to the last CPU. The headline pair
   (1,000 waiters, 1 s: the anchor and ours, side by side) is measured three times, spread over the
   run; its targets are judged on the median ratio and the worst lag.
3. ``poke``: requests and connections per sensor poke, pokes until a failed payment fails the task
   (:mod:`.poke_efficiency`), on the same sandbox.
4. ``large``: a 1k/10k/100k-record status response: time per stage, peak memory, XCom summary
   size (:mod:`.large_response`).
5. ``events``: 100 ``AssetWatcher`` triggers on one connection: status requests per poll interval
   and events per watcher (:mod:`.event_watchers`), on a sandbox of its own.

Writes ``bench-results/bench-<time>.json`` and ``bench-results/latest.json``, then regenerates the
tables of ``docs/benchmarks.md`` and ``docs/benchmarks.png`` (:mod:`.report`).

    python -m benchmarks.run                 # the full run (about 8 minutes on 2 cores)
    python -m benchmarks.run --quick         # a small run to check the harness
    python -m benchmarks.run --sections scale --no-docs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common import available_cpus, load_average, machine_info, now_iso, pin

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("imports", "scale", "poke", "large", "events")
RECORDS = 10
#: the whole run must stay within this (the issue's budget is 10 minutes)
BUDGET_SECONDS = 600.0


def scale_plan(
    quick: bool = False, window: float = 15.0, short_window: float = 10.0, only: str | None = None
) -> list[dict[str, Any]]:
    """The client configurations, in run order (clients interleaved so drift hits all alike).

    ``only`` keeps the configurations matching any of its comma-separated ``client:waiters[:interval]``
    (e.g. ``confirma:1000,aiohttp:1000``), for a quick look at one row while working on it.
    """
    plan = _full_plan(quick, window, short_window)
    if not only:
        return plan
    wanted = [item.strip().split(":") for item in only.split(",") if item.strip()]
    for parts in wanted:
        if not 2 <= len(parts) <= 3 or not parts[1].isdigit():
            raise ValueError(f"--only takes client:waiters[:interval], got {':'.join(parts)!r}")

    def matches(row: dict[str, Any], parts: list[str]) -> bool:
        return (
            row["client"] == parts[0]
            and row["waiters"] == int(parts[1])
            and (len(parts) == 2 or row["interval"] == float(parts[2]))
            and not row["gc_freeze"]
            and not row["repeat"]
        )

    return [row for row in plan if any(matches(row, parts) for parts in wanted)]


def _full_plan(quick: bool, window: float, short_window: float) -> list[dict[str, Any]]:
    from benchmarks.triggerer_scale import ScaleConfig

    if quick:
        return [
            asdict(ScaleConfig(client, 20, interval=1.0, warmup=1.0, window=2.0, records=RECORDS))
            for client in ("http-provider", "confirma", "confirma-coalesced", "aiohttp")
        ]

    def config(client: str, waiters: int, interval: float = 1.0, length: float = short_window, **kw: Any) -> Any:
        # the waiters start over one interval; the warm-up lets every one of them poll twice more
        warmup = max(4.0, 2 * interval)
        return ScaleConfig(client, waiters, interval, warmup=warmup, window=length, records=RECORDS, **kw)

    def headline_pair(repeat: int) -> list[ScaleConfig]:
        return [config(client, 1000, length=window, repeat=repeat) for client in ("http-provider", "confirma")]

    plan: list[ScaleConfig] = []
    for waiters in (250, 1000, 2500, 5000):
        headline = waiters == 1000
        for client in ("http-provider", "confirma", "confirma-coalesced"):
            long = headline or (client == "confirma-coalesced" and waiters == 5000)
            plan.append(config(client, waiters, length=window if long else short_window))
        if headline:
            plan.append(config("aiohttp", waiters))
            plan.append(config("http-provider", waiters, gc_freeze=True))
            plan.append(config("confirma", waiters, gc_freeze=True))
        if waiters == 2500:
            plan += headline_pair(1)
    for client in ("http-provider", "confirma", "aiohttp"):
        plan.append(config(client, 5000, interval=5.0, length=window))
    plan += headline_pair(2)
    return [asdict(c) for c in plan]


def _scale_and_poke(
    sections: set[str], quick: bool, window: float, cpus: list[int], logs: Path, only: str | None = None
) -> dict[str, Any]:
    from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess
    from benchmarks import poke_efficiency, triggerer_scale
    from benchmarks.common import bench_payments, run_forked, submit_payments

    server_cpu = {cpus[0]} if len(cpus) > 1 else set()
    client_cpu = {cpus[-1]} if len(cpus) > 1 else set()
    out: dict[str, Any] = {}
    config = SandboxConfig(api_key="bench-key", sync_delay=3600)
    pin(0, server_cpu)  # the sandbox inherits its CPU from birth
    with SandboxProcess(config) as sandbox:
        assert sandbox.process is not None
        pin(0, client_cpu)
        server_pid = sandbox.process.pid
        pinned = (
            bool(server_cpu)
            and os.sched_getaffinity(server_pid) == server_cpu
            and os.sched_getaffinity(0) == client_cpu
        )
        target = triggerer_scale.Target(sandbox.url, config.api_key, server_pid)
        submit_payments(sandbox.api_url, config.api_key, bench_payments(RECORDS))
        os.environ.update(triggerer_scale.conn_env(target))
        # The forked children start from these imports (Airflow's import alone takes seconds).
        import airflow.sdk  # noqa: F401
        from airflow.providers.http.sensors.http import HttpSensor  # noqa: F401
        from airflow.providers.http.triggers.http import HttpSensorTrigger  # noqa: F401

        from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor  # noqa: F401
        from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger  # noqa: F401

        out["pinning"] = {
            "server_cpus": sorted(server_cpu),
            "client_cpus": sorted(client_cpu),
            "pinned": pinned,
            "server": "sandbox CLI (uvicorn, httptools + uvloop when installed)",
        }
        if "scale" in sections:
            runs = []
            for number, raw in enumerate(scale_plan(quick, window, only=only), start=1):
                cfg = triggerer_scale.ScaleConfig(**raw)
                began = time.monotonic()
                log_path = logs / f"scale-{number:02d}-{cfg.client}-{cfg.waiters}.log"
                result = run_forked(
                    triggerer_scale.measure, cfg, target, timeout=cfg.bound_seconds, log_path=str(log_path)
                )
                result = {
                    **raw,
                    **result,
                    "wall_seconds": round(time.monotonic() - began, 1),
                    "load_1min": load_average(),
                }
                runs.append(result)
                print(_scale_line(result), flush=True)
            out["scale"] = runs
        if "poke" in sections:
            poke_efficiency.prepare(target)
            pokes = (3, 5) if quick else (5, 20)
            out["poke"] = run_forked(
                poke_efficiency.measure, target, *pokes, timeout=300, log_path=str(logs / "poke.log")
            )
            print("poke efficiency:", json.dumps(_poke_brief(out["poke"])), flush=True)
        out["sandbox_stats"] = {
            k: v for k, v in sandbox.stats().items() if k in ("total_requests", "requests", "responses")
        }
        out["sandbox_stats"]["responses"] = {
            k: v for k, v in out["sandbox_stats"]["responses"].items() if "_sandbox" not in k
        }
    pin(0, set(cpus))
    return out


def _scale_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"  {r['client']:<20} N={r['waiters']:<5} ERROR {r['error'][-300:]}"
    name = (
        r["client"]
        + (" (quiet)" if r.get("quiet_anchor") else "")
        + (" (gc frozen)" if r.get("gc_freeze") else "")
        + (f" (repeat {r['repeat']})" if r.get("repeat") else "")
    )
    return (
        f"  {name:<22} N={r['waiters']:<5} every {r['interval']:g}s: "
        f"{r['polls_per_s']:>7.1f} polls/s ({r['pct_of_ideal']:5.1f}% of ideal) "
        f"{r['requests_per_s']:>7.1f} req/s  CPU {r['cpu_ms_per_poll']} ms/poll  "
        f"lag max {r['loop_lag_max_ms']} p99 {r['loop_lag_p99_ms']} ms  RSS/waiter {r['rss_per_waiter_kb']} KB  "
        f"full GCs {r['gc_collections']['2']}  [{r['wall_seconds']}s]"
    )


def _events(quick: bool, logs: Path) -> dict[str, Any]:
    from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess
    from benchmarks import event_watchers
    from benchmarks.common import run_forked

    config = SandboxConfig(api_key="bench-key", sync_delay=3600)
    with SandboxProcess(config) as sandbox:
        size = (20, 1.0, 4.0) if quick else (100, 1.0, 10.0)
        return run_forked(
            event_watchers.measure, sandbox.url, config.api_key, *size, timeout=120, log_path=str(logs / "events.log")
        )


def _poke_brief(poke: dict[str, Any]) -> dict[str, Any]:
    if "error" in poke:
        return poke
    return {
        name: {k: c[k] for k in ("requests_per_poke", "connections_opened", "pokes_until_task_failed")}
        for name, c in poke["clients"].items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and windows: checks the harness only")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--window", type=float, default=15.0, help="measured seconds of the headline configurations")
    parser.add_argument("--out", default=str(REPO / "bench-results"), help="directory of the results JSON")
    parser.add_argument("--docs", default=str(REPO / "docs" / "benchmarks.md"), help="markdown to regenerate")
    parser.add_argument("--chart", default=str(REPO / "docs" / "benchmarks.png"), help="chart to regenerate")
    parser.add_argument("--no-docs", action="store_true", help="write the JSON only")
    parser.add_argument("--only", help="scale rows to run, e.g. confirma:1000,aiohttp:1000 (implies --no-docs)")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown or not sections:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    if not 2.0 <= args.window <= 60.0:
        parser.error("--window must be between 2 and 60 seconds")

    # A throwaway Airflow home: the benchmarks read connections from the environment only.
    home = tempfile.mkdtemp(prefix="confirma-bench-home-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    out_dir = Path(args.out)
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cpus = available_cpus()
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": now_iso(),
        "command": "make bench" if not args.quick else "python -m benchmarks.run --quick",
        "quick": args.quick,
        "sections": sorted(sections),
        "machine": machine_info(),
        "load_average_before": load_average(),
    }
    print(
        f"Benchmarks ({', '.join(s for s in SECTIONS if s in sections)}); load average {results['load_average_before']}"
    )
    try:
        if "imports" in sections:
            from benchmarks import import_cost

            # As an installed provider is imported: from its compiled bytecode (pip writes it).
            results["imports"] = import_cost.measure(
                runs=3 if args.quick else 7, cpu=cpus[-1] if len(cpus) > 1 else None, cached_bytecode=True
            )
            print(
                "imports:",
                json.dumps(
                    {
                        k: v.get("beyond_sdk", {}).get("median_ms")
                        for k, v in results["imports"].get("targets", {}).items()
                    }
                ),
            )
        if sections & {"scale", "poke"}:
            results.update(_scale_and_poke(sections, args.quick, args.window, cpus, logs, args.only))
        if "large" in sections:
            from benchmarks import large_response
            from benchmarks.common import run_forked

            sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
            results["large"] = run_forked(
                large_response.measure,
                sizes,
                (0, 10, 1000),
                1 if args.quick else 5,
                timeout=300,
                log_path=str(logs / "large.log"),
            )
            print(
                "large responses:",
                json.dumps(
                    [{k: s[k] for k in ("records", "seconds", "peak_mb")} for s in results["large"].get("sizes", [])]
                ),
            )
        if "events" in sections:
            results["events"] = _events(args.quick, logs)
            print("event watchers:", json.dumps(results["events"].get("modes", results["events"])))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    results["load_average_after"] = load_average()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(results, indent=2, default=str)
    (out_dir / f"bench-{stamp}.json").write_text(text)
    if not args.only:  # a partial run never stands in for the full one
        (out_dir / "latest.json").write_text(text)
    print(f"results: {out_dir / f'bench-{stamp}.json'} ({results['elapsed_seconds']} s)")
    if not args.no_docs and not args.only:
        from benchmarks import report

        report.write_docs(results, Path(args.docs), Path(args.chart))
        print(f"regenerated {args.docs} and {args.chart}")
    if results["elapsed_seconds"] > BUDGET_SECONDS:
        print(f"warning: the run took {results['elapsed_seconds']} s, over the {BUDGET_SECONDS:.0f} s budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
