"""Fault matrix, hook columns: ``ConfirmaHook`` GET (sync ``requests`` and async ``aiohttp``) and POST
against the real sandbox's chaos, plus :class:`ShapeServer` for response shapes the sandbox never
sends. Each test is one or more cells of the table in docs/reliability.md ("Fault matrix").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_confirma.exceptions import (
    ConfirmaAPIError,
    ConfirmaAuthError,
    ConfirmaRateLimitError,
    ConfirmaResponseError,
    ConfirmaServerError,
    ConfirmaTransportError,
)
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.models import StatusSets, SyncState, evaluate_sync
from tests.reliability.helpers import (
    POST_KEY,
    STATUS_KEY,
    TRANSIENT_FAULTS,
    Reply,
    ShapeServer,
    answered,
    conn_json,
    latency_seed,
    payment,
    policy,
    record,
    records_reply,
    status_gets,
    store_payments,
    wait_until,
)

FLAVOURS = ("sync", "async")
WRONG_KEY = "ck_wrong_SECRET_reliability_5d0c"
#: the exception and message fragment each transient fault ends in once the retries are spent
TRANSIENT_ERRORS: dict[str, tuple[type[Exception], str]] = {
    "500": (ConfirmaServerError, "returned HTTP 500"),
    "502": (ConfirmaServerError, "returned HTTP 502"),
    "503": (ConfirmaServerError, "returned HTTP 503"),
    "429": (ConfirmaRateLimitError, "returned HTTP 429: rate limited"),
    "reset": (ConfirmaTransportError, "failed: reset"),
}


async def read_status(hook: ConfirmaHook, flavour: str) -> list[Any]:
    if flavour == "sync":
        return await asyncio.to_thread(hook.get_payment_sync_status)
    return await hook.aget_payment_sync_status()


@pytest.fixture
def sandbox(confirma_sandbox_conn):
    return confirma_sandbox_conn


# -- GET: transient faults -------------------------------------------------------------------------
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_transient_fault_is_retried_then_succeeds(sandbox, flavour, fault):
    store_payments(sandbox, ["h-1"])
    sandbox.set_chaos(script=[fault, fault], methods=["GET"])
    records = await read_status(ConfirmaHook(retry_policy=policy(3)), flavour)
    assert [(r.source_identifier, r.status) for r in records] == [("h-1", 1)]
    assert status_gets(sandbox) == 3
    assert sum(sandbox.stats()["chaos"].values()) == 2


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_transient_fault_outlasting_the_retries_raises_naming_it(sandbox, flavour, fault):
    sandbox.set_chaos(script=[fault] * 6, methods=["GET"])
    error, fragment = TRANSIENT_ERRORS[fault]
    with pytest.raises(error) as info:
        await read_status(ConfirmaHook(retry_policy=policy(3)), flavour)
    assert fragment in str(info.value)
    assert "GET /accounting/payment" in str(info.value)
    if flavour == "async" and fault == "reset":
        # aiohttp itself resends a GET once when a reused keep-alive connection is reset
        assert 3 <= status_gets(sandbox) <= 6
    else:
        assert status_gets(sandbox) == 3


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_read_timeout_is_retried_then_succeeds(sandbox, flavour):
    store_payments(sandbox, ["h-1"])
    seed = latency_seed([True, False])
    sandbox.set_chaos(latency_ms=1000, latency_rate=0.1, seed=seed, methods=["GET"])
    started = time.monotonic()
    records = await read_status(ConfirmaHook(timeout=0.5, retry_policy=policy(3)), flavour)
    assert [r.source_identifier for r in records] == ["h-1"]
    assert status_gets(sandbox) == 2
    assert sandbox.stats()["chaos"] == {"latency": 1}
    assert time.monotonic() - started >= 0.5  # the first attempt waited for its timeout
    answered(sandbox)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_read_timeout_outlasting_the_retries_raises(sandbox, flavour):
    sandbox.set_chaos(latency_ms=500, methods=["GET"])
    with pytest.raises(ConfirmaTransportError) as info:
        await read_status(ConfirmaHook(timeout=0.15, retry_policy=policy(2)), flavour)
    assert info.value.kind == "timeout"
    assert "GET /accounting/payment failed: timeout" in str(info.value)
    wait_until(lambda: status_gets(sandbox) == 2, what="both attempts to reach the sandbox")
    answered(sandbox)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_429_waits_as_retry_after_says_not_the_backoff(sandbox, flavour):
    store_payments(sandbox, ["h-1"])
    sandbox.set_chaos(script=["429"], methods=["GET"], retry_after=1)
    # Backoff alone would wait 5 s; Retry-After: 1, capped at 0.3 s, must win.
    slow_backoff = policy(2, backoff_initial=5.0, backoff_max=5.0, jitter=0.001, retry_after_cap=0.3)
    started = time.monotonic()
    records = await read_status(ConfirmaHook(retry_policy=slow_backoff), flavour)
    elapsed = time.monotonic() - started
    assert [r.source_identifier for r in records] == ["h-1"]
    assert 0.3 <= elapsed < 2.0
    assert sandbox.stats()["responses"][STATUS_KEY] == {"429": 1, "200": 1}


# -- GET: faults that are not retried --------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "fragment"),
    [("malformed_json", "returned HTTP 200: malformed JSON"), ("wrong_content_type", "expected JSON, got text/html")],
)
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_spoiled_success_fails_at_once(sandbox, flavour, fault, fragment):
    store_payments(sandbox, ["h-1"])
    sandbox.set_chaos(script=[fault], methods=["GET"])
    with pytest.raises(ConfirmaResponseError) as info:
        await read_status(ConfirmaHook(retry_policy=policy(5)), flavour)
    assert fragment in str(info.value)
    assert status_gets(sandbox) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_401_fails_at_once_without_the_key(sandbox, confirma_conn_env, flavour):
    confirma_conn_env("confirma_wrong", conn_json(sandbox.url, WRONG_KEY))
    with pytest.raises(ConfirmaAuthError) as info:
        await read_status(ConfirmaHook("confirma_wrong", retry_policy=policy(5)), flavour)
    assert "returned HTTP 401: API key rejected" in str(info.value)
    assert WRONG_KEY not in str(info.value) and WRONG_KEY not in repr(info.value)
    assert status_gets(sandbox) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_204_is_no_records(sandbox, flavour):
    assert await read_status(ConfirmaHook(retry_policy=policy(1)), flavour) == []
    assert sandbox.stats()["responses"][STATUS_KEY] == {"204": 1}


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_unknown_status_value_is_kept_and_counts_as_failed(sandbox, flavour):
    sandbox.configure(failure_pattern="^odd-", failure_status=7, failure_description="Mystery state")
    store_payments(sandbox, ["odd-1", "h-2"])
    records = await read_status(ConfirmaHook(retry_policy=policy(1)), flavour)
    assert [(r.source_identifier, r.status, r.description) for r in records] == [
        ("odd-1", 7, "Mystery state"),
        ("h-2", 1, "Successfully synced"),
    ]
    progress = evaluate_sync(records, StatusSets(), ["odd-1", "h-2"])
    assert (progress.failed, progress.synced) == (["odd-1"], ["h-2"])


# -- GET: response shapes (ShapeServer) -----------------------------------------------------------
SHAPES: dict[str, tuple[Reply, Any]] = {
    # shape: (reply, expected: a SyncState of "p-1", or an error message fragment)
    "missing_identifier": (records_reply(record("p-1"), {"status": 1}), "payments[1]: record has no sourceIdentifier"),
    "missing_status": (records_reply(record("p-1", status=None)), SyncState.FAILED),
    "status_as_text": (records_reply(record("p-1", status="1")), SyncState.FAILED),
    "null_status": (records_reply(record("p-1", syncDate=None) | {"status": None}), SyncState.FAILED),
    "missing_optional_fields": (records_reply({"sourceIdentifier": "p-1", "status": 1}), SyncState.SYNCED),
    "extra_fields": (
        Reply(200, {"payments": [record("p-1", targetSystem="Netvisor", retries=2)], "nextPage": None}),
        SyncState.SYNCED,
    ),
    "missing_list": (Reply(200, {"items": []}), "expected a JSON object with a 'payments' list, got keys ['items']"),
    "list_not_a_list": (Reply(200, {"payments": {"sourceIdentifier": "p-1"}}), "'payments' is not a list"),
    "bad_date": (
        records_reply(record("p-1", syncDate="yesterday")),
        "payments[0]: syncDate is not a date: 'yesterday'",
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_get_response_shapes(shape_server: ShapeServer, confirma_conn_env, flavour, shape):
    reply, expected = SHAPES[shape]
    scenario = f"hook-{flavour}-{shape}"
    confirma_conn_env("confirma_shape", conn_json(shape_server.script(scenario, reply), "shape-key"))
    hook = ConfirmaHook("confirma_shape", retry_policy=policy(3))
    if not isinstance(expected, SyncState):
        with pytest.raises(ConfirmaResponseError) as info:
            await read_status(hook, flavour)
        assert expected in str(info.value)
        assert shape_server.requests[scenario] == 1  # a shape we cannot read is not retried
        return
    records = await read_status(hook, flavour)
    progress = evaluate_sync(records, StatusSets(), ["p-1"])
    state = {SyncState.SYNCED: progress.synced, SyncState.FAILED: progress.failed, SyncState.MISSING: progress.missing}
    assert state[expected] == ["p-1"]
    if shape == "extra_fields":
        assert records[0].extra == {"targetSystem": "Netvisor", "retries": 2}


# -- POST: never retried ---------------------------------------------------------------------------
POST_FAULTS: dict[str, tuple[type[ConfirmaAPIError | ConfirmaTransportError], str, int]] = {
    # fault: (exception, message fragment, payments stored by the sandbox)
    "500": (ConfirmaServerError, "returned HTTP 500", 0),
    "502": (ConfirmaServerError, "returned HTTP 502", 0),
    "503": (ConfirmaServerError, "returned HTTP 503", 0),
    "429": (ConfirmaRateLimitError, "returned HTTP 429", 0),
    "reset": (ConfirmaTransportError, "failed: reset", 0),
    "reset_after_body": (ConfirmaTransportError, "failed: reset", 2),
    "malformed_json": (ConfirmaResponseError, "malformed JSON", 2),
    "wrong_content_type": (ConfirmaResponseError, "expected JSON, got text/html", 2),
}


@pytest.mark.parametrize("fault", sorted(POST_FAULTS))
def test_post_fault_fails_at_once_and_is_never_resent(sandbox, fault):
    error, fragment, stored = POST_FAULTS[fault]
    sandbox.set_chaos(script=[fault], methods=["POST"])
    with pytest.raises(error) as info:
        ConfirmaHook(retry_policy=policy(5)).submit_payments({"payments": [payment("p-1"), payment("p-2")]})
    assert fragment in str(info.value)
    assert "POST /accounting/payment" in str(info.value)
    stats = sandbox.stats()
    assert stats["requests"] == {POST_KEY: 1}
    assert stats["stored"]["payments"] == stored
    assert stats["duplicates"]["total"] == 0


def test_post_read_timeout_fails_at_once(sandbox):
    sandbox.set_chaos(latency_ms=300, methods=["POST"])
    with pytest.raises(ConfirmaTransportError) as info:
        ConfirmaHook(timeout=0.1, retry_policy=policy(5)).submit_payments({"payments": [payment("p-1")]})
    assert info.value.kind == "timeout"
    assert "POST /accounting/payment failed: timeout" in str(info.value)
    time.sleep(0.4)  # let the delayed request end server-side (the sandbox drops it: its client left)
    stats = sandbox.stats()
    assert stats["requests"] == {POST_KEY: 1}
    assert stats["stored"]["payments"] == 0
    assert stats["duplicates"]["total"] == 0


def test_post_401_fails_at_once_and_stores_nothing(sandbox, confirma_conn_env):
    confirma_conn_env("confirma_wrong", conn_json(sandbox.url, WRONG_KEY))
    with pytest.raises(ConfirmaAuthError) as info:
        ConfirmaHook("confirma_wrong", retry_policy=policy(5)).submit_payments({"payments": [payment("p-1")]})
    assert WRONG_KEY not in str(info.value)
    assert sandbox.stats()["requests"] == {POST_KEY: 1}
    assert sandbox.stats()["stored"]["payments"] == 0


def test_post_204_returns_none(shape_server: ShapeServer, confirma_conn_env):
    confirma_conn_env("confirma_shape", conn_json(shape_server.script("hook-post-204", Reply(204)), "shape-key"))
    hook = ConfirmaHook("confirma_shape", retry_policy=policy(5))
    assert hook.submit_payments({"payments": [payment("p-1")]}) is None
    assert shape_server.requests["hook-post-204"] == 1
