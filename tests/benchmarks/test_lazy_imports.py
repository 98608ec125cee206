"""DAG parse cost guard: importing the sensor and operator modules loads no HTTP transport.

A DAG file imports these modules at every parse; ``requests`` (and ``aiohttp``) are only needed
when a task or trigger runs (``make bench`` measures the import times).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MODULES = (
    "airflow_provider_confirma.sensors.payment_sync",
    "airflow_provider_confirma.operators.payments",
    "airflow_provider_confirma.operators.accounting",
    "airflow_provider_confirma.operators.invoices",
)


def test_dag_authoring_imports_load_no_http_transport() -> None:
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n" + "".join(f"import {m}\n" for m in MODULES) + "new = set(sys.modules) - before\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in new})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=True
    )
    packages = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "airflow_provider_confirma" in packages  # the imports did run
    assert not packages & {"requests", "urllib3", "charset_normalizer", "aiohttp", "yarl", "multidict"}, packages


def test_the_hook_still_talks_http_with_requests_loaded_on_first_use(confirma_sandbox_conn) -> None:
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    hook = ConfirmaHook()
    assert hook.validate_token()["isValid"] is True
    assert type(hook.session).__module__ == "requests.sessions"
