"""Shared pieces of the reliability tests: retry policies, payments stored in the sandbox, a chaos
seed that delays exactly the requests a test wants, and :class:`ShapeServer`, a loopback HTTP server
that answers with response shapes the sandbox never produces (records with missing, extra or
unknown fields, a 204 followed by records).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.json_codec import encode_json
from airflow_provider_confirma.sandbox.config import ChaosConfig
from airflow_provider_confirma.sandbox.state import ChaosEngine
from tests.dag_helpers import request_key

STATUS_PATH = Endpoint.PAYMENT_SYNC_STATUS.path
STATUS_KEY = request_key(Endpoint.PAYMENT_SYNC_STATUS)
POST_KEY = request_key(Endpoint.SUBMIT_PAYMENTS)

#: the sandbox chaos script names of the transient faults, as the matrix rows name them
TRANSIENT_FAULTS = ("500", "502", "503", "429", "reset")


def policy(attempts: int, **overrides: Any) -> RetryPolicy:
    """A retry policy with millisecond waits (Retry-After capped at 10 ms)."""
    fields: dict[str, Any] = {
        "max_attempts": attempts,
        "max_total_seconds": 10.0,
        "backoff_initial": 0.001,
        "backoff_max": 0.005,
        "jitter": 0.001,
        "retry_after_cap": 0.01,
    }
    fields.update(overrides)
    return RetryPolicy(**fields)


def payment(ident: str, amount: str = "12.30") -> dict[str, Any]:
    return {
        "paymentIdentifier": ident,
        "invoiceNumber": "900001",
        "paymentDate": "2026-02-02",
        "amount": Decimal(amount),
        "currency": "EUR",
    }


def store_payments(sandbox: Any, identifiers: Iterable[str]) -> None:
    """POST payments to the sandbox directly (not through the code under test)."""
    response = requests.post(
        sandbox.api_url + Endpoint.SUBMIT_PAYMENTS.path,
        data=encode_json({"payments": [payment(i) for i in identifiers]}),
        headers={"X-Api-Key": sandbox.api_key, "Content-Type": "application/json"},
        timeout=10,
    )
    response.raise_for_status()


def conn_json(host: str, key: str, **extra: Any) -> str:
    return json.dumps({"conn_type": "confirma", "host": host, "password": key, "extra": extra})


def latency_seed(delayed: Sequence[bool], rate: float = 0.1, method: str = "GET", path: str = STATUS_PATH) -> int:
    """A chaos seed whose latency draws delay exactly the requests marked ``True`` (1st, 2nd, ...).

    Found with the sandbox's own :class:`ChaosEngine`, whose n-th draw for a path is fixed by the
    seed: a timeout cell is then as deterministic as a scripted one.
    """
    for seed in range(200_000):
        engine = ChaosEngine(ChaosConfig(latency_ms=1, latency_rate=rate, seed=seed, methods=(method,)))
        if all((engine.decide(method, path).latency > 0) == want for want in delayed):
            return seed
    raise AssertionError(f"no seed delays exactly {list(delayed)} at rate {rate}")


# -- a server for response shapes the sandbox never sends ---------------------------------------------
def record(ident: str, status: Any = 1, **changes: Any) -> dict[str, Any]:
    """One ``payments[]`` entry as documented; ``changes`` adds fields, ``None`` values are left out."""
    base: dict[str, Any] = {
        "sourceIdentifier": ident,
        "invoiceNumber": "900001",
        "paymentDate": "2026-02-02",
        "syncDate": "2026-02-03" if status == 1 else None,
        "status": status,
        "description": {0: "Pending", 1: "Successfully synced"}.get(status, "Mystery state"),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None or k == "syncDate"}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes as they are
    content_type: str = "application/json"


def records_reply(*records: dict[str, Any]) -> Reply:
    return Reply(200, {"payments": list(records)})


class ShapeServer:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 answering every request of a *scenario* from a script.

    A connection whose host is :meth:`host` of a scenario (``http://127.0.0.1:PORT/<scenario>``)
    sends its API calls to ``/<scenario>/api/v1/partner/...``; each request takes the next reply of
    the scenario's script, and the last reply repeats.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                scenario, _, rest = self.path.lstrip("/").partition("/")
                reply = server.next_reply(scenario, "/" + rest.split("?", 1)[0])
                body = b""
                if reply.status != 204:
                    body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                if reply.status != 204:
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="shape-server", daemon=True)

    def next_reply(self, scenario: str, path: str) -> Reply:
        with self.lock:
            self.requests[scenario] += 1
            script = self.scripts.get(scenario)
            if not script or not path.startswith(API_PREFIX):
                return Reply(404, {"message": f"no scenario {scenario!r} for {path}"})
            return script.pop(0) if len(script) > 1 else script[0]

    def script(self, scenario: str, *replies: Reply) -> str:
        """Set the replies of ``scenario``; returns its connection host."""
        if "/" in scenario or not replies:
            raise ValueError("a scenario is one path segment with at least one reply")
        with self.lock:
            self.scripts[scenario] = list(replies)
            self.requests[scenario] = 0
        return self.host(scenario)

    def host(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}"

    def __enter__(self) -> ShapeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def wait_until(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def status_gets(sandbox: Any) -> int:
    """The payment status GETs the sandbox has served so far."""
    return sandbox.stats()["requests"].get(STATUS_KEY, 0)


def answered(sandbox: Any) -> None:
    """Wait until the sandbox has answered every status GET (delayed ones outlive their client)."""
    wait_until(
        lambda: sum(sandbox.stats()["responses"].get(STATUS_KEY, {}).values()) == status_gets(sandbox), what="answers"
    )


class StateStore:
    """The calls of Airflow's ``TaskStateStoreAccessor`` the provider makes (get, set, delete); values
    are kept as JSON, as Airflow keeps them."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
