"""Test-session set-up: a throwaway AIRFLOW_HOME before Airflow is imported, and shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="confirma-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_HOME / "dags"))
(_HOME / "dags").mkdir(exist_ok=True)

REPO_ROOT = Path(__file__).resolve().parent.parent
#: A key distinctive enough to grep for in logs, messages and XCom.
TEST_API_KEY = "ck_test_SECRET_4f9a7e2b1c"


def _aioresponses_aiohttp_314_compat() -> None:
    """aioresponses 0.7.9 builds ``ClientResponse`` without the ``stream_writer`` that aiohttp 3.14
    requires (pnuckowski/aioresponses#289, fix pending in #288): supply a finished writer's stand-in."""
    import inspect
    from types import SimpleNamespace

    import aiohttp
    import aioresponses.core

    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        return

    class ClientResponse(aiohttp.ClientResponse):
        def __init__(self, method, url, *, stream_writer=None, **kwargs):
            writer = stream_writer if stream_writer is not None else SimpleNamespace(output_size=0)
            super().__init__(method, url, stream_writer=writer, **kwargs)

    aioresponses.core.ClientResponse = ClientResponse


_aioresponses_aiohttp_314_compat()


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """The metadata DB of the throwaway AIRFLOW_HOME, migrated once per test session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return airflow_home


@pytest.fixture
def confirma_conn_env(monkeypatch: pytest.MonkeyPatch):
    """Set ``AIRFLOW_CONN_<ID>`` for a test; returns a setter ``(conn_id, value)``."""

    def set_conn(conn_id: str, value: str) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)

    return set_conn
