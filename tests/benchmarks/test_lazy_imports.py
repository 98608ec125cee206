"""DAG parse cost guard: what importing the sensor and operator modules, and constructing their
tasks in a DAG, may cost and load beyond ``airflow.sdk``.

A DAG processor does both at every parse of a DAG file. The rule (issue 15): the sensor and
operator modules import what they use at the top (the hook, the verdict, the trigger), within a
budget of 50 ms beyond ``airflow.sdk`` as an installed provider imports them (bytecode compiled);
only the HTTP transports (``requests``, ``aiohttp`` and theirs) and the sandbox load on first use,
so a DAG parse never loads them. The budget itself is a figure of ``make bench`` (docs/benchmarks.md,
"DAG parse cost"), not of a timed unit test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MODULES = (
    "airflow_provider_confirma.sensors.payment_sync",
    "airflow_provider_confirma.sensors.ledger_sync",
    "airflow_provider_confirma.operators.payments",
    "airflow_provider_confirma.operators.accounting",
    "airflow_provider_confirma.operators.invoices",
)
#: packages (and their submodules) that a DAG parse must not load: the transports and the sandbox
FORBIDDEN = (
    "requests",
    "urllib3",
    "charset_normalizer",
    "aiohttp",
    "yarl",
    "multidict",
    "airflow_provider_confirma.sandbox",
    "airflow_provider_confirma.payloads",  # the payload models: built where a payload is checked
    "airflow_provider_confirma.validation",
)

#: a DAG file as users write one: templated payload and identifiers, a deferrable sensor, a
#: status operator with static identifiers and custom status codes, a windowed GET operator
DAG_FILE = """
from airflow.providers.common.compat.sdk import DAG
from airflow_provider_confirma.operators.accounting import (
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.payments import ConfirmaGetSettlementsOperator
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

with DAG("lazy_imports", schedule=None):
    submit = ConfirmaSubmitPaymentsOperator(task_id="submit", payments="{{ var.json.payments | tojson }}")
    wait = ConfirmaPaymentSyncSensor(
        task_id="wait",
        source_identifiers=submit.output,
        query_params={"fromDate": "{{ ds }}"},
        success_statuses=[1, 2],
        deferrable=True,
        emit_asset=True,
    )
    status = ConfirmaGetPaymentSyncStatusOperator(task_id="status", source_identifiers=["pay-1", "pay-2"])
    settlements = ConfirmaGetSettlementsOperator(task_id="settlements", request_timeout=30)
    submit >> wait >> status >> settlements
"""


def _new_modules() -> dict[str, list[str]]:
    """In a fresh interpreter after ``import airflow.sdk``: the modules the imports loaded, and
    the ones constructing the DAG's tasks loaded on top."""
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "imported = set(sys.modules) - before\n"
        f"exec({DAG_FILE!r}, {{}})\n"
        "constructed = set(sys.modules) - before - imported\n"
        "print(json.dumps({'imported': sorted(imported), 'constructed': sorted(constructed)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=True
    )
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _forbidden(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_dag_parse_loads_no_transport_nor_the_sandbox() -> None:
    new = _new_modules()
    assert set(MODULES) <= set(new["imported"])  # the imports did run
    assert "airflow_provider_confirma.triggers.payment_sync" in new["imported"]  # the sensor names its class
    assert _forbidden(new["imported"]) == [], new["imported"]
    assert _forbidden(new["constructed"]) == [], new["constructed"]


def test_the_hook_still_talks_http_with_requests_loaded_on_first_use(confirma_sandbox_conn) -> None:
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook

    hook = ConfirmaHook()
    assert hook.validate_token()["isValid"] is True
    assert type(hook.session).__module__ == "requests.sessions"


def test_assets_are_built_only_for_tasks_that_emit_them() -> None:
    code = (
        "import airflow.sdk\n"
        "from airflow.sdk import DAG\n"
        "from airflow_provider_confirma.assets import sync_asset\n"
        "from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor\n"
        "with DAG('assets', schedule=None):\n"
        "    quiet = ConfirmaPaymentSyncSensor(task_id='quiet', source_identifiers=['a'])\n"
        "    print(sync_asset.cache_info().currsize, quiet.outlets)\n"
        "    loud = ConfirmaPaymentSyncSensor(task_id='loud', source_identifiers=['a'], emit_asset=True)\n"
        "    print(sync_asset.cache_info().currsize, [a.uri for a in loud.outlets])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=True
    )
    assert proc.stdout.splitlines()[-2:] == ["0 []", "1 ['confirma://accounting/payment']"]
