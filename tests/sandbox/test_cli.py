"""The ``confirma-sandbox`` CLI: option parsing, the printed connection value, the subprocess runner."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.sandbox import SandboxConfig, SandboxProcess
from airflow_provider_confirma.sandbox.cli import build_parser, config_from_args, main

CONSOLE_SCRIPT = Path(sys.executable).with_name("confirma-sandbox")


def parse(*argv: str) -> SandboxConfig:
    return config_from_args(build_parser().parse_args(list(argv)))


def test_flags_build_the_config():
    config = parse(
        "--sync-delay",
        "0.5",
        "--failure-pattern",
        "^bad",
        "--failure-status",
        "9",
        "--chaos-503",
        "0.2",
        "--chaos-reset-after-body",
        "0.1",
        "--chaos-methods",
        "POST",
        "--chaos-script",
        "503,ok",
        "--retry-after",
        "3",
    )
    assert (config.sync_delay, config.failure_pattern, config.failure_status) == (0.5, "^bad", 9)
    chaos = config.chaos
    assert (chaos.error_503, chaos.reset_after_body, chaos.methods, chaos.script, chaos.retry_after) == (
        0.2,
        0.1,
        ("POST",),
        ("error_503", "ok"),
        3,
    )


def test_flags_override_config_json():
    base = SandboxConfig(sync_delay=9, failure_pattern="^j", chaos={"error_500": 0.5, "seed": 4})
    config = parse("--config-json", json.dumps(base.public_dict()), "--sync-delay", "1", "--chaos-seed", "5")
    assert (config.failure_pattern, config.sync_delay) == ("^j", 1.0)
    assert (config.chaos.error_500, config.chaos.seed) == (0.5, 5)


def test_bad_option_exits_with_the_setting_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--failure-rate", "2"])
    assert exit_info.value.code == 2
    assert "failure_rate must be between 0 and 1" in capsys.readouterr().err


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)


def test_console_script_starts_and_prints_the_connection_value():
    assert CONSOLE_SCRIPT.exists(), "reinstall the package: the confirma-sandbox console script is missing"
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--port", "0", "--sync-delay", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CONFIRMA_SANDBOX_API_KEY": "cli-key"},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        value = None
        output = []
        while value is None:
            line = lines.get(timeout=20)
            output.append(line)
            if line.startswith("AIRFLOW_CONN_CONFIRMA_DEFAULT="):
                value = line.split("=", 1)[1].strip()
        conn = json.loads(value)
        assert conn["conn_type"] == "confirma" and conn["password"] == "cli-key"
        assert conn["host"].startswith("http://127.0.0.1:")
        assert any("/api/v1/partner" in line for line in output)
        response = requests.get(
            conn["host"] + Endpoint.VALIDATE.full_path, headers={"X-Api-Key": conn["password"]}, timeout=5
        )
        assert response.json()["isValid"] is True
    finally:
        process.terminate()
        process.wait(10)
    assert process.returncode == 0  # uvicorn shuts down cleanly on SIGTERM


def test_sandbox_process_runner(tmp_path):
    config = SandboxConfig(api_key="proc-key", sync_delay=0, failure_pattern="^x")
    with SandboxProcess(config, extra_args=["--conn-id", "confirma_e2e"]) as sandbox:
        assert sandbox.port and sandbox.admin.health()
        assert sandbox.conn_env("confirma_e2e") == {"AIRFLOW_CONN_CONFIRMA_E2E": sandbox.conn_value}
        assert "AIRFLOW_CONN_CONFIRMA_E2E=" in sandbox.log_text
        headers = {"X-Api-Key": "proc-key"}
        body = {
            "payments": [
                {
                    "paymentIdentifier": i,
                    "invoiceNumber": "1",
                    "paymentDate": "2026-01-01",
                    "amount": 1,
                    "currency": "EUR",
                }
                for i in ("x1", "ok")
            ]
        }
        assert requests.post(sandbox.api_url + Endpoint.SUBMIT_PAYMENTS.path, json=body, headers=headers, timeout=5).ok
        statuses = requests.get(sandbox.api_url + Endpoint.PAYMENT_SYNC_STATUS.path, headers=headers, timeout=5).json()
        assert {r["sourceIdentifier"]: r["status"] for r in statuses["payments"]} == {"x1": 2, "ok": 1}
        process = sandbox.process
    assert process is not None and process.poll() is not None  # stopped on exit


def test_sandbox_process_reports_a_failed_start():
    with socket_in_use() as port, pytest.raises(RuntimeError, match="cannot listen"):
        SandboxProcess(port=port).start()


class socket_in_use:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_python_dash_m_entry_point_has_help():
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_confirma.sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 0
    for option in (
        "--host",
        "--port",
        "--api-key-file",
        "--allowed-host",
        "--sync-delay",
        "--failure-rate",
        "--failure-pattern",
        "--chaos-503",
    ):
        assert option in result.stdout
