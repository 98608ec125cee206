"""The pytest plugin: registered through ``pytest11``, cheap to import, one server per session reset
before each test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

HEAVY = ("uvicorn", "starlette", "fastapi", "airflow", "requests", "aiohttp", "httptools", "uvloop")


def test_registered_as_a_pytest11_entry_point():
    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("confirma_sandbox") == "airflow_provider_confirma.sandbox.pytest_plugin"


def test_importing_the_plugin_loads_no_server_code():
    code = (
        "import json, sys; import airflow_provider_confirma.sandbox.pytest_plugin; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == []


INNER_TESTS = """
import os, json, requests
from airflow_provider_confirma.endpoints import Endpoint

SUBMIT = Endpoint.SUBMIT_PAYMENTS.path
PAYMENT = {"paymentIdentifier": "p1", "invoiceNumber": "1", "paymentDate": "2026-01-01", "amount": 1, "currency": "EUR"}
PORTS = []

def test_first_submits(confirma_sandbox):
    PORTS.append(confirma_sandbox.port)
    confirma_sandbox.configure(sync_delay=100)
    confirma_sandbox.set_chaos(error_500=0.5)
    r = requests.post(confirma_sandbox.api_url + SUBMIT, json={"payments": [PAYMENT]},
                      headers={"X-Api-Key": confirma_sandbox.api_key}, timeout=5)
    assert r.status_code in (200, 500)
    assert confirma_sandbox.stats()["total_requests"] == 1

def test_second_sees_a_clean_sandbox(confirma_sandbox_conn):
    PORTS.append(confirma_sandbox_conn.port)
    assert PORTS[0] == PORTS[1]  # one server per session
    conn = json.loads(os.environ["AIRFLOW_CONN_CONFIRMA_DEFAULT"])
    sandbox = confirma_sandbox_conn
    assert conn == {"conn_type": "confirma", "host": sandbox.url, "password": sandbox.api_key}
    url = conn["host"] + Endpoint.PAYMENT_SYNC_STATUS.full_path
    r = requests.get(url, headers={"X-Api-Key": conn["password"]}, timeout=5)
    assert r.status_code == 204
    stats = confirma_sandbox_conn.stats()
    assert stats["total_requests"] == 1 and stats["chaos"] == {}
    assert confirma_sandbox_conn.admin.config()["sync_delay"] == 0.0
"""


def test_fixture_in_a_user_test_suite(tmp_path):
    (tmp_path / "test_user_dag.py").write_text(textwrap.dedent(INNER_TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
