"""ConfirmaLedgerSyncTrigger: polls GET /accounting/ledger (not the payment endpoint), judges ledger
records, speaks the ledger noun, serializes to its own classpath, and never shares a poll with payments.

The shared behaviour (timeouts, errors, coalescing, no sync I/O) is tested once on the payment
trigger; these tests pin what the ledger subclass changes.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.hooks.connection import ConfirmaConnectionSettings
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.ledger_sync import ConfirmaLedgerSyncTrigger
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import deserialize, serialize
from tests.triggers.fake_status_api import HOST, ONE_ATTEMPT, TRIGGER_KEY, first_event

pytestmark = pytest.mark.usefixtures("trigger_conns")


def url(endpoint: Endpoint) -> re.Pattern[str]:
    return re.compile(re.escape(HOST + endpoint.full_path) + r"(\?.*)?$")


class FakeLedgerAPI:
    """GET /accounting/ledger answering from ``statuses``; records every call."""

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        #: status changes applied from the n-th call on (1-based)
        self.changes_at: dict[int, dict[str, int]] = {}
        self.calls: list[dict[str, str]] = []

    async def respond(self, request_url: Any, **kwargs: Any) -> CallbackResult:
        self.calls.append({k: str(v) for k, v in (kwargs.get("params") or {}).items()})
        self.statuses.update(self.changes_at.get(len(self.calls), {}))
        ledgers = [
            {
                "sourceIdentifier": ident,
                "documentDate": "2026-02-02",
                "documentName": "5001",
                "documentStatus": "Approved",
                "syncDate": "2026-02-03" if status == 1 else None,
                "status": status,
                "description": {0: "Pending", 1: "Successfully synced"}.get(status, "Account 3000 is closed"),
            }
            for ident, status in self.statuses.items()
        ]
        return CallbackResult(status=200, body=json.dumps({"ledgers": ledgers}), content_type="application/json")


@pytest.fixture
def ledger_api():
    api = FakeLedgerAPI()
    with aioresponses() as mocked:
        mocked.get(url(Endpoint.LEDGER_SYNC_STATUS), callback=api.respond, repeat=True)
        yield api


def make_trigger(**overrides: Any) -> ConfirmaLedgerSyncTrigger:
    kwargs: dict[str, Any] = {
        "confirma_conn_id": "confirma_test",
        "source_identifiers": ["ml-1", "ml-2"],
        "poll_interval": 0.05,
        "end_time": time.time() + 10,
        "http_retry_policy": ONE_ATTEMPT,
    }
    kwargs.update(overrides)
    return ConfirmaLedgerSyncTrigger(**kwargs)


async def test_success_after_pending_polls_of_the_ledger_endpoint(ledger_api: FakeLedgerAPI):
    ledger_api.statuses.update({"ml-1": 1, "ml-2": 0})
    ledger_api.changes_at[3] = {"ml-2": 1}
    payload = await first_event(make_trigger(query_params={"fromDate": "2026-02-01"}))
    assert payload["status"] == "success"
    summary = payload["summary"]
    assert summary["counts"] == {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    # Ledger records keep their own fields in the summary.
    assert [(r["sourceIdentifier"], r["documentStatus"]) for r in summary["records"]] == [
        ("ml-1", "Approved"),
        ("ml-2", "Approved"),
    ]
    assert len(ledger_api.calls) == 3  # two pending polls, then synced
    assert all(call == {"fromDate": "2026-02-01"} for call in ledger_api.calls)


async def test_failed_ledger_emits_failed_naming_it_as_a_ledger(ledger_api: FakeLedgerAPI):
    ledger_api.statuses.update({"ml-1": 1, "ml-2": 2})
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert payload["message"] == (
        "Confirma ledger sync failed for 1 of 2 record(s): ml-2 (status 2: Account 3000 is closed)"
    )


async def test_timeout_message_names_the_ledger_sync(ledger_api: FakeLedgerAPI):
    ledger_api.statuses.update({"ml-1": 0})
    payload = await first_event(make_trigger(end_time=time.time() + 0.2))
    assert payload["status"] == "timeout"
    assert "waiting for Confirma ledger sync" in payload["message"]
    assert payload["summary"]["counts"]["pending"] == 1


async def test_a_payment_answer_is_never_read_as_ledgers():
    """Only the ledger path is polled: a payment endpoint that would say "synced" is not asked."""
    with aioresponses() as mocked:
        payments = {"payments": [{"sourceIdentifier": "ml-1", "status": 1}]}
        mocked.get(url(Endpoint.PAYMENT_SYNC_STATUS), payload=payments, repeat=True)
        mocked.get(url(Endpoint.LEDGER_SYNC_STATUS), status=401, body="bad key", repeat=True)
        payload = await first_event(make_trigger(source_identifiers=["ml-1"]))
        paths = {key[1].path for key in mocked.requests}
    assert payload["status"] == "error"
    assert payload["message"].startswith("Confirma ledger sync status poll failed: ConfirmaAuthError")
    assert paths == {Endpoint.LEDGER_SYNC_STATUS.full_path}


def test_ledger_and_payment_waits_never_share_a_poll():
    same = {"confirma_conn_id": "confirma_test", "query_params": {"fromDate": "2026-02-01"}, "end_time": time.time()}
    ledger = ConfirmaLedgerSyncTrigger(**same)
    payment = ConfirmaPaymentSyncTrigger(**same)
    conn = ConfirmaConnectionSettings(conn_id="confirma_test", base_url=HOST + API_PREFIX, api_key=TRIGGER_KEY)
    assert ledger.poll_key(conn) != payment.poll_key(conn)
    assert ledger.poll_key(conn)[0] == Endpoint.LEDGER_SYNC_STATUS.value
    assert ledger.poll_key(conn) == ConfirmaLedgerSyncTrigger(**same).poll_key(conn)


def test_serialize_names_the_ledger_classpath_and_round_trips_without_the_key():
    trigger = make_trigger(success_statuses={1, 5}, pending_statuses=[0], query_params={"ids": ["ml-1", "ml-2"]})
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_confirma.triggers.ledger_sync.ConfirmaLedgerSyncTrigger"
    assert TRIGGER_KEY not in json.dumps(kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON primitives only
    rebuilt = import_string(classpath)(**deserialize(serialize(kwargs)))
    assert type(rebuilt) is ConfirmaLedgerSyncTrigger
    assert rebuilt.serialize() == (classpath, kwargs)


def test_the_base_trigger_needs_an_endpoint_subclass():
    with pytest.raises(TypeError, match="sets no sync status endpoint"):
        ConfirmaSyncStatusTrigger(end_time=time.time() + 10)
