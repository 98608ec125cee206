"""Poke efficiency: what one sensor poke costs the API, and how soon a failed payment fails the task.

``ConfirmaPaymentSyncSensor`` (poke mode) against ``HttpSensor`` of apache-airflow-providers-http
with an equivalent ``response_check``, both on the sandbox, calling ``poke()`` as a worker does in
poke mode (one operator instance, one poke after the other, no sleep between them):

* requests per poke, counted by the server (``/_sandbox/stats``);
* TCP connections opened per poke, counted in this process by wrapping ``socket.socket.connect``
  (only connects made inside a poke are counted);
* pokes until a failed payment ends the task: ours raises ``AirflowFailException`` at the first
  poke that shows it; ``HttpSensor``'s check only sees "not synced yet", so it pokes on until its
  timeout (the run stops after a bounded number of pokes).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.common import bench_identifier
from benchmarks.triggerer_scale import CONN_ID, HTTP_CONN_ID, Target

#: identifiers of this prefix fail in the sandbox (set with ``configure(failure_pattern=...)``)
FAIL_PREFIX = "benchfail-"
FAILURE_PATTERN = f"^{FAIL_PREFIX}"
MAX_POKES = 50


class ConnectCounter:
    """Counts ``socket.socket.connect`` calls to one port while active (a context manager)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.count = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[ConnectCounter]:
        original = socket.socket.connect
        counter = self

        def connect(sock: socket.socket, address: Any) -> None:
            if isinstance(address, tuple) and len(address) >= 2 and address[1] == counter.port:
                counter.count += 1
            return original(sock, address)

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            socket.socket.connect = original  # type: ignore[method-assign]


def _status_requests(target: Target) -> int:
    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.sandbox import SandboxAdmin

    stats = SandboxAdmin(target.url, target.api_key).stats()
    return int(stats["requests"].get(f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}", 0))


def _synced_check(identifier: str) -> Any:
    """HttpSensor's ``response_check``: the payment is listed with status 1."""

    def check(response: Any) -> bool:
        payments = (response.json() or {}).get("payments") or []
        return any(p.get("sourceIdentifier") == identifier and p.get("status") == 1 for p in payments)

    return check


def _sensors(identifier: str, target: Target) -> dict[str, Any]:
    from airflow.providers.http.sensors.http import HttpSensor

    from airflow_provider_confirma.endpoints import Endpoint
    from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

    return {
        "confirma": ConfirmaPaymentSyncSensor(
            task_id="confirma_wait",
            confirma_conn_id=CONN_ID,
            source_identifiers=[identifier],
            poke_interval=60,
            timeout=3600,
            mode="poke",
        ),
        "http-provider": HttpSensor(
            task_id="http_wait",
            http_conn_id=HTTP_CONN_ID,
            endpoint=Endpoint.PAYMENT_SYNC_STATUS.full_path,
            method="GET",
            headers={"X-Api-Key": target.api_key, "Accept": "application/json"},
            response_check=_synced_check(identifier),
            poke_interval=60,
            timeout=3600,
            mode="poke",
        ),
    }


def _pokes(sensor: Any, target: Target, counter: ConnectCounter, pokes: int) -> dict[str, Any]:
    per_poke = []
    for _ in range(pokes):
        before = _status_requests(target)
        connects = counter.count
        began = time.perf_counter()
        with counter.active():
            result = sensor.poke({})
        per_poke.append(
            {
                "requests": _status_requests(target) - before,
                "connections": counter.count - connects,
                "ms": round((time.perf_counter() - began) * 1000, 2),
                "done": bool(result),
            }
        )
    return {
        "pokes": pokes,
        "requests_per_poke": sorted({p["requests"] for p in per_poke}),
        "total_requests": sum(p["requests"] for p in per_poke),
        "connections_opened": sum(p["connections"] for p in per_poke),
        "connections_per_poke": [p["connections"] for p in per_poke],
        "median_poke_ms": sorted(p["ms"] for p in per_poke)[len(per_poke) // 2],
        "any_done": any(p["done"] for p in per_poke),
    }


def _until_failed(sensor: Any, max_pokes: int) -> dict[str, Any]:
    for number in range(1, max_pokes + 1):
        try:
            sensor.poke({})
        except Exception as exc:
            return {
                "pokes_until_task_failed": number,
                "ended_with": type(exc).__name__,
                "message": str(exc)[:240],
            }
    return {
        "pokes_until_task_failed": None,
        "ended_with": f"still waiting after {max_pokes} pokes (ends at its timeout: timeout / poke_interval pokes)",
        "message": "",
    }


def measure(target: Target, pokes: int = 5, max_pokes: int = 20) -> dict[str, Any]:
    """Both sensors against ``target``: payment ``bench_identifier(0)`` must be pending and
    ``FAIL_PREFIX + "000001"`` failed (see :func:`prepare`)."""
    if not 1 <= pokes <= MAX_POKES or not 1 <= max_pokes <= MAX_POKES:
        raise ValueError(f"pokes and max_pokes must be between 1 and {MAX_POKES}")
    from urllib.parse import urlsplit

    port = urlsplit(target.url).port
    assert port is not None
    counter = ConnectCounter(port)
    out: dict[str, Any] = {"pokes": pokes, "max_pokes": max_pokes, "mode": "poke", "clients": {}}
    pending = _sensors(bench_identifier(0), target)
    failing = _sensors(f"{FAIL_PREFIX}000001", target)
    for name in ("confirma", "http-provider"):
        out["clients"][name] = {
            **_pokes(pending[name], target, counter, pokes),
            **_until_failed(failing[name], max_pokes),
        }
    return out


def prepare(target: Target) -> None:
    """Store one payment that fails at once (the pending bench payments stay pending)."""
    from decimal import Decimal

    from airflow_provider_confirma.endpoints import API_PREFIX
    from airflow_provider_confirma.sandbox import SandboxAdmin
    from benchmarks.common import submit_payments

    admin = SandboxAdmin(target.url, target.api_key)
    previous = admin.config()
    admin.configure(sync_delay=0, failure_pattern=FAILURE_PATTERN)
    payment = {
        "paymentIdentifier": f"{FAIL_PREFIX}000001",
        "invoiceNumber": "99001",
        "paymentDate": "2026-02-01",
        "amount": Decimal("5.00"),
        "currency": "EUR",
    }
    submit_payments(target.url + API_PREFIX, target.api_key, [payment])
    admin.configure(sync_delay=previous["sync_delay"], failure_pattern=previous["failure_pattern"])
