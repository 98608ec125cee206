"""Fault matrix, trigger column: ``ConfirmaPaymentSyncTrigger.run()`` in this test's event loop (as the
triggerer runs it, rebuilt from its serialized kwargs) against the real sandbox's chaos, with a tiny
poll interval; :class:`ShapeServer` for response shapes the sandbox never sends.

Every trigger here uses a hook policy of 2 attempts per poll and ``max_consecutive_errors=3``, so a
transient fault is retried by the hook inside a poll, then by the next poll; an ``error`` event
ends the wait once 3 polls in a row failed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string

from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import deserialize, serialize
from tests.dag_helpers import when_requests
from tests.reliability.helpers import (
    STATUS_KEY,
    TRANSIENT_FAULTS,
    Reply,
    ShapeServer,
    answered,
    conn_json,
    latency_seed,
    policy,
    record,
    records_reply,
    status_gets,
    store_payments,
)
from tests.triggers.fake_status_api import first_event

#: the ChaosConfig fraction of each transient fault
CHAOS_FRACTION = {"500": "error_500", "502": "error_502", "503": "error_503", "429": "rate_limit", "reset": "reset"}
LAST_ERROR = {
    "500": "ConfirmaServerError: Confirma API GET /accounting/payment returned HTTP 500",
    "502": "ConfirmaServerError: Confirma API GET /accounting/payment returned HTTP 502",
    "503": "ConfirmaServerError: Confirma API GET /accounting/payment returned HTTP 503",
    "429": "ConfirmaRateLimitError: Confirma API GET /accounting/payment returned HTTP 429: rate limited",
    "reset": "ConfirmaTransportError: Confirma API GET /accounting/payment failed: reset",
}
WRONG_KEY = "ck_wrong_SECRET_trigger_reliability_0e7d"


def make_trigger(**overrides: Any) -> ConfirmaPaymentSyncTrigger:
    """A trigger as the triggerer gets it: serialized, sent through serde, rebuilt from its kwargs."""
    kwargs: dict[str, Any] = {
        "source_identifiers": ["t-1"],
        "poll_interval": 0.02,
        "end_time": time.time() + 20,
        "http_retry_policy": policy(2),
        "max_consecutive_errors": 3,
    }
    kwargs.update(overrides)
    classpath, serialized = ConfirmaPaymentSyncTrigger(**kwargs).serialize()
    return import_string(classpath)(**deserialize(json.loads(json.dumps(serialize(serialized)))))


@pytest.fixture
def sandbox(confirma_sandbox_conn):
    return confirma_sandbox_conn


# -- transient faults ------------------------------------------------------------------------------
@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "own-poll"])
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
async def test_transient_fault_is_retried_then_succeeds(sandbox, fault, coalesce):
    store_payments(sandbox, ["t-1"])
    # poll 1: both attempts fail (1 error in a row); poll 2: one failure, then the records
    sandbox.set_chaos(script=[fault] * 3, methods=["GET"])
    payload = await first_event(make_trigger(coalesce=coalesce))
    assert payload["status"] == "success"
    assert payload["summary"]["counts"]["synced"] == 1
    assert sum(sandbox.stats()["chaos"].values()) == 3
    assert status_gets(sandbox) >= 4


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
async def test_transient_fault_persisting_ends_in_an_error_event_naming_it(sandbox, fault):
    store_payments(sandbox, ["t-1"])
    sandbox.set_chaos(**{CHAOS_FRACTION[fault]: 1.0}, methods=["GET"])
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert payload["message"].startswith(
        f"Confirma payment sync status poll failed 3 times in a row; last error: {LAST_ERROR[fault]}"
    )
    if fault == "reset":  # aiohttp resends a GET once when a reused connection is reset
        assert 6 <= status_gets(sandbox) <= 12
    else:
        assert status_gets(sandbox) == 6  # 3 polls x 2 attempts, then it stops


async def test_read_timeout_is_retried_then_succeeds(sandbox, confirma_conn_env):
    confirma_conn_env("confirma_default", conn_json(sandbox.url, sandbox.api_key, timeout=0.5))
    store_payments(sandbox, ["t-1"])
    seed = latency_seed([True, True, True, False, False, False])
    sandbox.set_chaos(latency_ms=1200, latency_rate=0.1, seed=seed, methods=["GET"])
    payload = await first_event(make_trigger())
    assert payload["status"] == "success"
    assert status_gets(sandbox) == 4
    assert sandbox.stats()["chaos"] == {"latency": 3}
    answered(sandbox)


async def test_read_timeout_persisting_ends_in_an_error_event(sandbox, confirma_conn_env):
    confirma_conn_env("confirma_default", conn_json(sandbox.url, sandbox.api_key, timeout=0.15))
    sandbox.set_chaos(latency_ms=400, methods=["GET"])
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert "failed 3 times in a row; last error: ConfirmaTransportError" in payload["message"]
    assert "failed: timeout (read timeout)" in payload["message"]
    assert status_gets(sandbox) == 6
    answered(sandbox)


# -- faults that end the wait at once --------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "fragment"),
    [("malformed_json", "returned HTTP 200: malformed JSON"), ("wrong_content_type", "expected JSON, got text/html")],
)
async def test_spoiled_success_is_an_error_event_at_once(sandbox, fault, fragment):
    store_payments(sandbox, ["t-1"])
    sandbox.set_chaos(script=[fault], methods=["GET"])
    payload = await first_event(make_trigger())
    assert payload["status"] == "error"
    assert payload["message"].startswith("Confirma payment sync status poll failed: ConfirmaResponseError: ")
    assert fragment in payload["message"]
    assert status_gets(sandbox) == 1


async def test_401_is_an_error_event_at_once_without_the_key(sandbox, confirma_conn_env):
    confirma_conn_env("confirma_wrong", conn_json(sandbox.url, WRONG_KEY))
    payload = await first_event(make_trigger(confirma_conn_id="confirma_wrong"))
    assert payload["status"] == "error"
    assert "ConfirmaAuthError" in payload["message"] and "HTTP 401: API key rejected" in payload["message"]
    assert WRONG_KEY not in json.dumps(payload)
    assert status_gets(sandbox) == 1


# -- what the API says -----------------------------------------------------------------------------
async def test_204_keeps_waiting_until_records_appear(sandbox):
    with when_requests(sandbox, STATUS_KEY, 2, lambda: store_payments(sandbox, ["t-1"])) as seen:
        payload = await first_event(make_trigger())
    assert payload["status"] == "success"
    assert seen["at"] >= 2
    responses = sandbox.stats()["responses"][STATUS_KEY]
    assert responses["204"] >= 2 and responses["200"] >= 1


async def test_unknown_status_value_is_a_failed_event_naming_it(sandbox):
    sandbox.configure(failure_pattern="^t-", failure_status=7, failure_description="Mystery state")
    store_payments(sandbox, ["t-1"])
    payload = await first_event(make_trigger())
    assert payload["status"] == "failed"
    assert payload["message"] == "Confirma payment sync failed for 1 of 1 record(s): t-1 (status 7: Mystery state)"
    assert payload["summary"]["counts"]["failed"] == 1


PENDING = records_reply(record("t-1", status=0))
SHAPES: dict[str, tuple[Reply, str, str]] = {
    # shape: (the reply after one pending poll, event status, message fragment)
    # an unrelated record without an identifier is skipped by a wait on identifiers (test_record_safety.py)
    "missing_identifier": (
        records_reply(record("t-1"), {"status": 1}),
        "success",
        "1/1 synced; waiting: -; failed: -; unreadable records skipped: 1",
    ),
    "missing_status": (records_reply(record("t-1", status=None)), "failed", "t-1 (status None: Mystery state)"),
    "status_as_text": (records_reply(record("t-1", status="1")), "failed", "t-1 (status None: Mystery state)"),
    "extra_fields": (
        Reply(200, {"payments": [record("t-1", targetSystem="Netvisor")], "nextPage": None}),
        "success",
        "1/1 synced",
    ),
    "missing_list": (Reply(200, {"items": []}), "error", "expected a JSON object with a 'payments' list"),
    "missing_optional_fields": (records_reply({"sourceIdentifier": "t-1", "status": 1}), "success", "1/1 synced"),
    "bad_date": (records_reply(record("t-1", syncDate="yesterday")), "error", "syncDate is not a date: 'yesterday'"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_response_shapes(shape_server: ShapeServer, confirma_conn_env, shape):
    reply, status, fragment = SHAPES[shape]
    replies = [PENDING, reply]
    scenario = f"trigger-{shape}"
    confirma_conn_env("confirma_shape", conn_json(shape_server.script(scenario, *replies), "shape-key"))
    payload = await first_event(make_trigger(confirma_conn_id="confirma_shape"))
    assert payload["status"] == status
    assert fragment in payload["message"]
    assert shape_server.requests[scenario] == len(replies)  # it waited through the pending poll(s)
