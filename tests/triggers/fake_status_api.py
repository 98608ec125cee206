"""A scripted GET /accounting/payment behind aioresponses, connections for the trigger tests, and
the helpers they share (run a trigger to its first event, wait for polls to arrive).

Fixtures are re-exported by ``tests/triggers/conftest.py``; helpers are imported from here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from aioresponses import CallbackResult, aioresponses

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.hooks.http_policy import RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

#: Distinctive enough to grep for in serialized kwargs, events and messages.
TRIGGER_KEY = "ck_test_SECRET_trigger_7d1e0c"
OTHER_KEY = "ck_test_SECRET_other_91bb42"
HOST = "http://127.0.0.1:8999"
OTHER_HOST = "http://127.0.0.1:8998"
#: One attempt per poll, so a test counts polls, not the hook's retries.
ONE_ATTEMPT = RetryPolicy(max_attempts=1, max_total_seconds=2, backoff_initial=0.01, backoff_max=0.01, jitter=0.01)


@dataclass
class Call:
    host: str
    params: dict[str, str]
    api_key: str | None
    at: float


@dataclass
class FakeStatusAPI:
    """Answers each GET from ``statuses`` (identifier -> status) or a queued failure."""

    statuses: dict[str, int] = field(default_factory=dict)
    #: queued answers before normal ones: an int HTTP status, or (status, content type, body)
    failures: list[Any] = field(default_factory=list)
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "sourceIdentifier": ident,
                "invoiceNumber": "10001",
                "paymentDate": "2026-02-02",
                "syncDate": "2026-02-03" if status == 1 else None,
                "status": status,
                "description": self.descriptions.get(ident, {0: "Pending", 1: "Successfully synced"}.get(status)),
            }
            for ident, status in self.statuses.items()
        ]

    async def respond(self, url: Any, **kwargs: Any) -> CallbackResult:
        loop = asyncio.get_running_loop()
        headers = kwargs.get("headers") or {}
        params = {k: str(v) for k, v in (kwargs.get("params") or {}).items()}
        self.calls.append(Call(f"{url.scheme}://{url.host}:{url.port}", params, headers.get("X-Api-Key"), loop.time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, int):
                return CallbackResult(status=failure, body="temporarily unavailable", content_type="text/plain")
            status, content_type, body = failure
            return CallbackResult(status=status, body=body, content_type=content_type)
        return CallbackResult(
            status=200, body=json.dumps({"payments": self.records()}), content_type="application/json"
        )

    def calls_to(self, host: str) -> list[Call]:
        return [c for c in self.calls if c.host == host]


def status_url(host: str = HOST) -> re.Pattern[str]:
    return re.compile(re.escape(host + Endpoint.PAYMENT_SYNC_STATUS.full_path) + r"(\?.*)?$")


@pytest.fixture
def fake_api() -> Iterator[FakeStatusAPI]:
    api = FakeStatusAPI()
    with aioresponses() as mocked:
        mocked.get(status_url(HOST), callback=api.respond, repeat=True)
        mocked.get(status_url(OTHER_HOST), callback=api.respond, repeat=True)
        yield api


@pytest.fixture
def trigger_conns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``confirma_test`` and ``confirma_other`` (another host and key) as environment connections."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_CONFIRMA_TEST", json.dumps({"conn_type": "confirma", "password": TRIGGER_KEY, "host": HOST})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_CONFIRMA_OTHER",
        json.dumps({"conn_type": "confirma", "password": OTHER_KEY, "host": OTHER_HOST}),
    )


def payment_trigger(**overrides: Any) -> ConfirmaPaymentSyncTrigger:
    """A payment sync trigger on ``confirma_test``: 0.05 s polls of one attempt, ending in 10 s."""
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

    kwargs: dict[str, Any] = {
        "confirma_conn_id": "confirma_test",
        "poll_interval": 0.05,
        "end_time": time.time() + 10,
        "http_retry_policy": ONE_ATTEMPT,
    }
    kwargs.update(overrides)
    return ConfirmaPaymentSyncTrigger(**kwargs)


async def first_event(trigger: ConfirmaSyncStatusTrigger, within: float = 10) -> dict[str, Any]:
    """The payload of the trigger's first event (its generator closed after), within ``within`` s;
    it must be JSON-safe, as the triggerer sends it on."""
    gen = trigger.run()
    try:
        event = await asyncio.wait_for(gen.__anext__(), within)
    finally:
        await gen.aclose()
    json.dumps(event.payload)
    return event.payload


async def resolved(*triggers: ConfirmaSyncStatusTrigger) -> tuple[ConfirmaSyncStatusTrigger, ...]:
    """``triggers`` with their connections resolved (each wait resolves its own before it joins a
    poll, and may yield meanwhile): started together, they then join the same first round."""
    for trigger in triggers:
        await trigger.hook.aget_settings()
    return triggers


async def events(*triggers: ConfirmaSyncStatusTrigger) -> list[dict[str, Any]]:
    """The first events of ``triggers`` run together, their connections resolved beforehand."""
    return list(await asyncio.gather(*(first_event(t) for t in await resolved(*triggers))))


async def wait_for_calls(api: FakeStatusAPI, count: int) -> None:
    """Until ``api`` has served ``count`` requests (fails after 5 s)."""
    deadline = time.monotonic() + 5
    while len(api.calls) < count:
        assert time.monotonic() < deadline, f"only {len(api.calls)} polls arrived"
        await asyncio.sleep(0.002)
