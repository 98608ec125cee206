"""Smoke tests of the benchmark harness (``make bench``) on tiny sizes.

They prove the harness measures what it claims (polls and requests are counted, coalescing shows
as one request per round, a failed payment fails our sensor at the first poke, summaries respect
their cap, the report renders) and never assert speed: performance figures come from
``make bench`` only.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess
from benchmarks import event_watchers, import_cost, large_response, poke_efficiency, report, triggerer_scale
from benchmarks.common import LagTicker, bench_payments, percentile, run_forked, submit_payments
from benchmarks.run import scale_plan

KEY = "bench-smoke-key"
RECORDS = 5


@pytest.fixture(scope="module")
def bench_target() -> Iterator[triggerer_scale.Target]:
    """A sandbox subprocess with pending payments, and both clients' connections in the env."""
    with SandboxProcess(SandboxConfig(api_key=KEY, sync_delay=3600)) as sandbox, pytest.MonkeyPatch.context() as mp:
        assert sandbox.process is not None
        target = triggerer_scale.Target(sandbox.url, KEY, sandbox.process.pid)
        submit_payments(sandbox.api_url, KEY, bench_payments(RECORDS))
        for name, value in triggerer_scale.conn_env(target).items():
            mp.setenv(name, value)
        yield target


@pytest.fixture(scope="module")
def scale_rows(bench_target: triggerer_scale.Target) -> list[dict[str, Any]]:
    rows = []
    for client in triggerer_scale.CLIENTS:
        cfg = triggerer_scale.ScaleConfig(client, 12, interval=0.5, warmup=0.6, window=1.5, records=RECORDS)
        rows.append(triggerer_scale.measure(cfg, bench_target))
    return rows


def test_scale_counts_polls_and_requests_for_every_client(scale_rows: list[dict[str, Any]]) -> None:
    by_client = {row["client"]: row for row in scale_rows}
    assert set(by_client) == set(triggerer_scale.CLIENTS)
    for row in scale_rows:
        assert row["polls_per_s"] > 0, row
        assert row["requests_per_s"] > 0, row
        assert row["cpu_ms_per_poll"] > 0, row
        assert row["lag_samples"] > 0 and row["loop_lag_max_ms"] is not None, row
        assert row["waiters_finished_early"] == 0, row  # pending payments / 404s: nobody finishes
        assert row["rss_before_mb"] > 0 and row["rss_after_mb"] > 0
        assert set(row["gc_collections"]) == {"0", "1", "2"}
    # the anchor polls the 404 path; the others read the status endpoint with 200s
    assert set(by_client["http-provider"]["server_responses"]) == {"404"}
    assert set(by_client["confirma"]["server_responses"]) == {"200"}
    # without coalescing, every poll is one request; with it, 12 waiters share one request per round
    ours = by_client["confirma"]
    assert ours["poll_unit"] == "request" and ours["evaluations_per_s"] > 0
    coalesced = by_client["confirma-coalesced"]
    assert coalesced["poll_unit"] == "evaluation"
    assert coalesced["requests_per_s"] <= 1 / 0.5 + 0.5  # about one request per 0.5 s round
    assert coalesced["polls_per_s"] > 4 * coalesced["requests_per_s"]


def test_poke_efficiency_counts_requests_connections_and_the_failing_poke(
    bench_target: triggerer_scale.Target,
) -> None:
    poke_efficiency.prepare(bench_target)
    result = poke_efficiency.measure(bench_target, pokes=3, max_pokes=3)
    ours, anchor = result["clients"]["confirma"], result["clients"]["http-provider"]
    assert ours["requests_per_poke"] == [1] and anchor["requests_per_poke"] == [1]
    assert ours["total_requests"] == 3
    assert ours["connections_opened"] == 1  # one keep-alive session across pokes
    assert anchor["connections_opened"] == 3  # a new session per poke
    assert not ours["any_done"] and not anchor["any_done"]
    assert ours["pokes_until_task_failed"] == 1 and ours["ended_with"] == "AirflowFailException"
    assert anchor["pokes_until_task_failed"] is None


def test_large_response_stages_and_summary_cap() -> None:
    result = large_response.measure(sizes=(300,), caps=(0, 10), repeat=1)
    (size,) = result["sizes"]
    assert size["records"] == 300 and size["body_bytes"] > 300 * 50
    assert set(size["seconds"]) == {"decode", "index", "judge", "summary", "total"}
    assert size["seconds"]["total"] >= size["seconds"]["index"] > 0
    assert size["peak_mb"] > 0
    zero, ten = size["summary"]["0"], size["summary"]["10"]
    assert zero["success_outcome"] == "success" and zero["failed_outcome"] == "failed"
    assert zero["records_listed"] == 0 and zero["records_omitted"] == 297  # 3 of 300 failed
    assert ten["records_listed"] == 10
    assert zero["success_xcom_bytes"] < ten["success_xcom_bytes"] < 2048
    assert zero["counts_and_failures_bytes"] == ten["counts_and_failures_bytes"]


def test_parse_importtime_keeps_only_imports_after_the_marker() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   requests.compat",
            "import time:       500 |        600 | requests",
            f"import time:        20 |         20 | {import_cost.MARKER}",
            "import time:       300 |        300 |   urllib3.util",
            "import time:      1000 |       1300 | urllib3",
            "import time:        50 |       1350 | airflow_provider_confirma.sensors.payment_sync",
        ]
    )
    rows = import_cost.parse_importtime(stderr)
    assert [r["module"] for r in rows] == ["urllib3.util", "urllib3", "airflow_provider_confirma.sensors.payment_sync"]
    assert rows[0]["depth"] == 1 and rows[1]["depth"] == 0
    assert sum(r["self_us"] for r in rows) == 1350


def test_forked_import_times_a_module_per_child() -> None:
    times = import_cost._forked_times(("tabnanny",), runs=2)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_dag_file_rows_time_imports_and_construction_apart_and_render() -> None:
    for imports, dag in import_cost.DAG_FILES.values():  # each DAG file builds (a broken one would time nothing)
        imported, constructed = import_cost._child_dag_file(imports, dag)
        assert imported > 0 and constructed > 0
    imports, dag = import_cost.DAG_FILES["DAG of 2 BaseOperator tasks (reference)"]
    row = import_cost._dag_file_summary(imports, dag, runs=2)
    assert row["runs"] == 2 and 0 < row["construct_median_ms"] <= row["max_ms"]
    table = report.imports_table(
        {
            "runs": 2,
            "targets": {},
            "dag_files": {"reference DAG": {"imports": imports, "beyond_authoring_and_a_dag": row}},
            "cached_bytecode": False,
            "writes_bytecode": False,
        }
    )
    assert "| reference DAG |" in table and "of which constructing" in table
    assert "PYTHONDONTWRITEBYTECODE" in table


def _raise() -> dict[str, Any]:
    raise RuntimeError("boom")


def test_run_forked_returns_the_result_an_error_or_a_timeout(tmp_path: Path) -> None:
    assert run_forked(dict, {"pid": 1}, timeout=30) == {"pid": 1}
    assert "RuntimeError: boom" in run_forked(_raise, timeout=30)["error"]
    began = time.monotonic()
    out = run_forked(time.sleep, 30, timeout=0.5, log_path=str(tmp_path / "child.log"))
    assert "timed out" in out["error"] and time.monotonic() - began < 10


async def test_lag_ticker_records_a_blocked_loop() -> None:
    ticker = LagTicker(0.01)
    ticker.start()
    await asyncio.sleep(0.03)
    time.sleep(0.1)  # noqa: ASYNC251 - block the loop on purpose
    await asyncio.sleep(0.03)
    await ticker.stop()
    stats = ticker.stats(0, float("inf"))
    assert stats["max_ms"] is not None and stats["max_ms"] >= 80
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0 and percentile([], 0.5) is None


def test_plan_is_bounded_and_report_renders(scale_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    plan = scale_plan()
    assert {row["client"] for row in plan} >= {"http-provider", "confirma", "confirma-coalesced"}
    assert sum(c["interval"] + c["warmup"] + c["window"] for c in plan) < 420  # leaves room in 10 minutes
    results = {
        "started_at": "now",
        "command": "test",
        "machine": {"cpu_model": "cpu", "cpus": os.cpu_count(), "versions": {}},
        "load_average_before": [0.0, 0.0, 0.0],
        "scale": scale_rows,
        "pinning": {"pinned": False},
    }
    md, png = tmp_path / "benchmarks.md", tmp_path / "benchmarks.png"
    md.write_text("# Benchmarks\n\nprose stays\n")
    report.write_docs(json.loads(json.dumps(results)), md, png)
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nprose stays\n")
    assert report.START in text and report.END in text
    assert "ConfirmaPaymentSyncTrigger, coalesce=True" in text
    assert png.stat().st_size > 10_000
    report.write_docs(results, md, png)  # idempotent: one generated block
    assert md.read_text().count(report.START) == 1


def _row(client: str, repeat: int, cpu: float, lag: float, pct: float = 99.0) -> dict[str, Any]:
    return {
        "client": client,
        "waiters": 1000,
        "interval": 1.0,
        "repeat": repeat,
        "gc_freeze": False,
        "cpu_ms_per_poll": cpu,
        "loop_lag_max_ms": lag,
        "pct_of_ideal": pct,
        "gc_collections": {"2": 0},
        # the other columns of the scale table
        **dict.fromkeys(
            (
                "polls_per_s",
                "ideal_polls_per_s",
                "requests_per_s",
                "client_cpu_share",
                "loop_lag_p99_ms",
                "rss_per_waiter_kb",
            ),
            1.0,
        ),
    }


def test_the_headline_pair_is_measured_three_times_and_only_once_with_only() -> None:
    plan = scale_plan()
    pairs = [(r["client"], r["repeat"]) for r in plan if r["waiters"] == 1000 and r["interval"] == 1.0]
    pairs = [p for p in pairs if p[0] in ("http-provider", "confirma")]
    assert sorted(pairs).count(("confirma", 0)) == 2  # the plain row and the gc.freeze() row
    assert {repeat for client, repeat in pairs if client == "confirma"} == {0, 1, 2}
    assert {repeat for client, repeat in pairs if client == "http-provider"} == {0, 1, 2}
    # each repeat of ours runs right after the anchor's, side by side
    for repeat in (1, 2):
        at = [(r["client"], r["repeat"]) for r in plan].index(("http-provider", repeat))
        assert (plan[at + 1]["client"], plan[at + 1]["repeat"]) == ("confirma", repeat)
    assert [r["repeat"] for r in scale_plan(only="confirma:1000:1")] == [0]


def test_repeated_targets_use_the_median_ratio_and_the_worst_lag() -> None:
    rows = [
        _row("http-provider", 0, 1.70, 1000.0),
        _row("confirma", 0, 0.44, 13.0, pct=99.3),  # 0.26x
        _row("http-provider", 1, 2.00, 1100.0),
        _row("confirma", 1, 0.46, 250.0, pct=99.7),  # 0.23x, and the worst lag
        _row("http-provider", 2, 2.00, 900.0),
        _row("confirma", 2, 0.44, 5.0, pct=99.5),  # 0.22x
    ]
    found = {what: (measured, met) for what, measured, _, met in report.targets(rows)}
    ratio = found["1,000 waiters, 1 s, coalesce=False: CPU per poll vs the anchor's"]
    assert ratio == ("0.23x (median of 3: 0.26x, 0.23x, 0.22x)", True)
    assert found["1,000 waiters, 1 s, coalesce=False: max loop lag"] == ("250 ms (worst of 3)", False)
    assert found["1,000 waiters, 1 s, coalesce=False: polls/s vs ideal"] == ("99.5 % (median of 3)", True)
    table = report.repeats_table(rows)
    assert table.count("\n| ") == 5 and "**0.23x**" in table  # 3 measurements, header, median
    assert "| 2 | 2.000 | 0.460 | 0.23x | 99.7 % | 250 ms | 0 |" in table
    assert report.scale_table(rows).count("\n| 1,000 |") == 2  # repeats are in their own table


def test_a_single_measurement_keeps_its_own_figures() -> None:
    rows = [_row("http-provider", 0, 1.671, 1000.0), _row("confirma", 0, 0.437, 13.0)]
    found = {what: (measured, met) for what, measured, _, met in report.targets(rows)}
    ratio = found["1,000 waiters, 1 s, coalesce=False: CPU per poll vs the anchor's"]
    assert ratio == ("0.437 / 1.671 ms = 0.26x", True)  # the aim is <= 0.35x (issue 15)
    assert found["1,000 waiters, 1 s, coalesce=False: max loop lag"] == ("13 ms", True)
    assert report.repeats_table(rows) == ""


def test_event_watchers_share_one_request_per_interval_and_fire_once_each() -> None:
    with SandboxProcess(SandboxConfig(api_key=KEY, sync_delay=3600)) as sandbox:
        result = event_watchers.measure(sandbox.url, KEY, watchers=10, interval=0.5, window=3.0)
    for mode in result["modes"].values():
        assert mode["events_while_pending"] == 0 and mode["events_per_watcher_after_sync"] == [1]
        assert mode["requests_per_interval"] <= 1.5  # 10 watchers, not 10 requests per interval
    assert "| Path |" in report.events_table(result)
