"""Fixtures of the operator tests: a staging connection, HTTP mocked at the transport (``responses``),
a task context with or without a data interval, and checks on what went over the wire and into XCom."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pendulum
import pytest
import responses
from airflow.providers.common.compat.sdk import DAG
from airflow.sdk.execution_time.context import OutletEventAccessors
from conftest import TEST_API_KEY  # tests/conftest.py, already imported by pytest

from airflow_provider_confirma.endpoints import ENVIRONMENT_HOSTS, Endpoint
from airflow_provider_confirma.hooks.http_policy import RetryPolicy

STAGING = ENVIRONMENT_HOSTS["staging"]

#: Three attempts, millisecond waits.
TINY_POLICY = RetryPolicy(
    max_attempts=3, max_total_seconds=5.0, backoff_initial=0.001, backoff_max=0.005, jitter=0.001, retry_after_cap=0.01
)


def url(endpoint: Endpoint) -> str:
    return STAGING + endpoint.full_path


@pytest.fixture(autouse=True)
def staging_conn(confirma_conn_env) -> None:
    """``confirma_default`` on staging (every request goes to the mocked staging host)."""
    confirma_conn_env(
        "confirma_default",
        json.dumps({"conn_type": "confirma", "password": TEST_API_KEY, "extra": {"environment": "staging"}}),
    )


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    """Every request must be mocked; unexpected ones fail with ConnectionError (which a test would see)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def calls_to(api: responses.RequestsMock, endpoint: Endpoint) -> list[Any]:
    return [
        c.request
        for c in api.calls
        if c.request.method == endpoint.method and c.request.path_url.split("?")[0] == endpoint.full_path
    ]


def sent_json(request: Any) -> Any:
    """A request body as the server would parse it (numbers with a fraction as Decimal)."""
    return json.loads(request.body, parse_float=Decimal)


def query_of(request: Any) -> dict[str, str]:
    """The query string of a request, one value per name."""
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def assert_no_float(value: Any, path: str = "$") -> None:
    """Fail naming the first float anywhere in ``value`` (and anything not JSON-safe)."""
    assert not isinstance(value, float), f"float at {path}: {value!r}"
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"non-string key at {path}: {k!r}"
            assert_no_float(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_no_float(v, f"{path}[{i}]")
    else:
        assert value is None or isinstance(value, (str, int, bool)), f"not JSON-safe at {path}: {value!r}"


def make_dag(tz: str = "UTC") -> DAG:
    return DAG("confirma_operator_test", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz=tz))


@pytest.fixture
def context() -> Callable[..., dict[str, Any]]:
    """A task context: ``interval=(start, end)`` gives a data interval; ``None`` (default) none at all."""

    def build(interval: tuple[Any, Any] | None = None, dag: DAG | None = None, **extra: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {"outlet_events": OutletEventAccessors(), "dag": dag or make_dag()}
        if interval is not None:
            start, end = interval
            ctx.update(
                data_interval_start=start,
                data_interval_end=end,
                logical_date=start,
                ds=start.strftime("%Y-%m-%d"),
            )
        ctx.update(extra)
        return ctx

    return build


def run(op: Any, ctx: dict[str, Any]) -> Any:
    """Render the operator's templates against ``ctx`` (as the task runner does), then execute it."""
    op.render_template_fields(ctx)
    return op.execute(ctx)


def status_body(*records: tuple[str, int]) -> dict[str, Any]:
    """A ``GET /accounting/payment`` body: ``(identifier, status)`` pairs."""
    return {
        "payments": [
            {
                "sourceIdentifier": ident,
                "invoiceNumber": "10001",
                "paymentDate": "2026-02-02",
                "syncDate": "2026-02-03" if status == 1 else None,
                "status": status,
                "description": {0: "Pending", 1: "Successfully synced"}.get(status, "Failed"),
            }
            for ident, status in records
        ]
    }
