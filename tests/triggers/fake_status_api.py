"""A scripted sync status endpoint (GET /accounting/payment, or /accounting/ledger for the ledger
variant) behind aioresponses, connections for the trigger tests, and the helpers they share (build a
trigger, run it to its first event, wait for polls to arrive).

Fixtures are re-exported by ``tests/triggers/conftest.py``; helpers are imported from here.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from aioresponses import CallbackResult, aioresponses

from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from tests.sync_variants import DESCRIPTIONS, PAYMENT, SyncVariant

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
    """Answers each GET from ``statuses`` (identifier -> status) or a queued failure, with records
    of ``variant`` (payments by default)."""

    statuses: dict[str, int] = field(default_factory=dict)
    #: queued answers before normal ones: an int HTTP status, or (status, content type, body)
    failures: list[Any] = field(default_factory=list)
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    descriptions: dict[str, str] = field(default_factory=dict)
    variant: SyncVariant = PAYMENT

    def records(self) -> list[dict[str, Any]]:
        """The status list; a failed record without a ``descriptions`` entry has no description."""
        described = {ident: self.descriptions.get(ident, DESCRIPTIONS.get(s)) for ident, s in self.statuses.items()}
        return [{**self.variant.record(i, s), "description": described[i]} for i, s in self.statuses.items()]

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
            status=200, body=json.dumps({self.variant.list_key: self.records()}), content_type="application/json"
        )

    def calls_to(self, host: str) -> list[Call]:
        return [c for c in self.calls if c.host == host]


def status_url(host: str = HOST, variant: SyncVariant = PAYMENT) -> re.Pattern[str]:
    return re.compile(re.escape(host + variant.endpoint.full_path) + r"(\?.*)?$")


@contextmanager
def serving(variant: SyncVariant = PAYMENT) -> Iterator[FakeStatusAPI]:
    """A :class:`FakeStatusAPI` of ``variant`` on ``HOST`` and ``OTHER_HOST``; nothing else answers."""
    api = FakeStatusAPI(variant=variant)
    with aioresponses() as mocked:
        mocked.get(status_url(HOST, variant), callback=api.respond, repeat=True)
        mocked.get(status_url(OTHER_HOST, variant), callback=api.respond, repeat=True)
        yield api


@pytest.fixture
def fake_api() -> Iterator[FakeStatusAPI]:
    """The payment status endpoint, scripted."""
    with serving(PAYMENT) as api:
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


def sync_trigger(variant: SyncVariant, **overrides: Any) -> Any:
    """A sync trigger of ``variant`` on ``confirma_test``: 0.05 s polls of one attempt, ending in 10 s."""
    kwargs: dict[str, Any] = {
        "confirma_conn_id": "confirma_test",
        "poll_interval": 0.05,
        "end_time": time.time() + 10,
        "http_retry_policy": ONE_ATTEMPT,
    }
    kwargs.update(overrides)
    return variant.trigger(**kwargs)


def payment_trigger(**overrides: Any) -> ConfirmaPaymentSyncTrigger:
    """:func:`sync_trigger` of the payment wait."""
    return sync_trigger(PAYMENT, **overrides)


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


async def flip_after(api: FakeStatusAPI, polls: int, statuses: dict[str, int]) -> None:
    """Change the API's answers once it has served ``polls`` requests (fails after 5 s)."""
    await wait_for_calls(api, polls)
    api.statuses.update(statuses)
