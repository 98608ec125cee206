"""``ConfirmaHook`` async path (``arequest``, ``aget_payment_sync_status``, ``shared_client_session``).

HTTP is mocked with ``aioresponses``; keep-alive, refused/reset/silent connections and TLS use real
loopback sockets. The async path must never resolve the connection synchronously.
Kept apart from ``test_confirma.py`` as the async half: own fixtures (no sync connection lookup), own mocks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import traceback
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from airflow.providers.common.compat.sdk import BaseHook
from conftest import TEST_API_KEY  # tests/conftest.py, already imported by pytest
from yarl import URL

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.exceptions import (
    ConfirmaAPIError,
    ConfirmaAuthError,
    ConfirmaClientError,
    ConfirmaConfigError,
    ConfirmaError,
    ConfirmaRateLimitError,
    ConfirmaResponseError,
    ConfirmaServerError,
    ConfirmaTransportError,
)
from airflow_provider_confirma.hooks import confirma as confirma_module
from airflow_provider_confirma.hooks.confirma import ConfirmaHook, shared_client_session
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.models import PaymentSyncRecord
from tests.airflow_compat import only_on_airflow_3_3

from .conftest import CONN_TIMEOUT, PROVISIONING_TOKEN, STAGING_BASE, TINY_POLICY, conn_value

PAYMENT_URL = STAGING_BASE + Endpoint.PAYMENT_SYNC_STATUS.path
PAYMENT_URL_ANY_QUERY = re.compile("^" + re.escape(PAYMENT_URL) + r"(\?.*)?$")
PAYMENTS_BODY = {
    "payments": [
        {"sourceIdentifier": "pay-1", "paymentDate": "2026-02-02", "syncDate": None, "status": 0},
        {"sourceIdentifier": "pay-2", "paymentDate": "2026-02-01", "syncDate": "2026-02-02", "status": 1},
    ]
}


def all_calls(mock: aioresponses) -> list[tuple[str, URL, dict]]:
    return [(method, url, call.kwargs) for (method, url), calls in mock.requests.items() for call in calls]


@pytest.fixture
def no_sync_connection(monkeypatch):
    """Fail loudly if anything resolves the connection or masks secrets synchronously on the event
    loop. Before Airflow 3.3.2 (no async secrets API) the sync calls are made, in a worker thread."""
    from airflow_provider_confirma import compat

    def off_the_loop(real):
        def guarded(*args, **kwargs):
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # a worker thread: allowed
                return real(*args, **kwargs)
            raise AssertionError("sync connection access on the async path")

        return guarded

    real_get_connection = BaseHook.get_connection
    monkeypatch.setattr(BaseHook, "get_connection", staticmethod(off_the_loop(real_get_connection)))
    monkeypatch.setattr(compat, "mask_secret", off_the_loop(compat.mask_secret))


@pytest.fixture
def async_hook(staging_conn, no_sync_connection) -> ConfirmaHook:
    return ConfirmaHook(retry_policy=TINY_POLICY)


@pytest.fixture
def recorded_async_sleeps(monkeypatch) -> list[float]:
    """tenacity's async sleeps (it calls ``asyncio.sleep``), recorded and not slept.

    Only this thread's: a session sandbox (uvicorn in a background thread) sleeps too.
    """
    real_sleep = asyncio.sleep
    sleeps: list[float] = []
    test_thread = threading.get_ident()

    async def fake_sleep(delay, *args, **kwargs):
        if threading.get_ident() != test_thread:
            return await real_sleep(delay, *args, **kwargs)
        if delay:
            sleeps.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return sleeps


# -- requests --------------------------------------------------------------------------------------
def assert_attempt_timeout(kwargs: dict[str, Any], seconds: float) -> None:
    """One attempt's aiohttp timeout: ``seconds`` in all, of which connecting at most 10 s."""
    timeout = kwargs["timeout"]
    assert (timeout.total, timeout.connect) == (seconds, min(seconds, 10.0))


@only_on_airflow_3_3("asserts on the async connection path of 3.3.2")
async def test_async_status_call_headers_timeout_and_records(async_hook):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL_ANY_QUERY, payload=PAYMENTS_BODY)
        records = await async_hook.aget_payment_sync_status(params={"fromDate": "2026-02-01", "ids": ["a", "b"]})
    assert [r.source_identifier for r in records] == ["pay-1", "pay-2"]
    assert all(isinstance(r, PaymentSyncRecord) for r in records)
    ((method, url, kwargs),) = all_calls(mock)
    assert method == "GET"
    assert url.path == API_PREFIX + "/accounting/payment"
    assert url.query_string == "fromDate=2026-02-01&ids=a&ids=b"
    assert kwargs["headers"]["X-Api-Key"] == TEST_API_KEY
    assert kwargs["headers"]["Accept"] == "application/json"
    assert_attempt_timeout(kwargs, CONN_TIMEOUT)
    assert kwargs["ssl"] is True  # verified with the default context
    assert kwargs["allow_redirects"] is False


@only_on_airflow_3_3("asserts on the async connection path of 3.3.2")
async def test_async_hook_timeout_overrides_connection(staging_conn, no_sync_connection):
    hook = ConfirmaHook(timeout=2.5, retry_policy=TINY_POLICY)
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY)
        await hook.aget_payment_sync_status()
    ((_, _, kwargs),) = all_calls(mock)
    assert_attempt_timeout(kwargs, 2.5)


async def test_longest_read_is_the_retry_budget_plus_one_attempt_once_the_connection_is_read(async_hook):
    assert async_hook.longest_read_seconds() is None  # the attempt timeout comes from the connection
    await async_hook.aget_settings()
    assert async_hook.longest_read_seconds() == TINY_POLICY.max_total_seconds + CONN_TIMEOUT
    overridden = ConfirmaHook(timeout=2.5, retry_policy=TINY_POLICY)
    await overridden.aget_settings()
    assert overridden.longest_read_seconds() == TINY_POLICY.max_total_seconds + 2.5


async def test_async_generic_arequest(async_hook):
    with aioresponses() as mock:
        mock.get(STAGING_BASE + "/settlements", payload={"settlements": []})
        assert await async_hook.arequest(Endpoint.SETTLEMENTS) == {"settlements": []}


async def test_async_no_content_is_an_empty_list(async_hook):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, status=204)
        assert await async_hook.aget_payment_sync_status() == []


@pytest.mark.parametrize("endpoint", [e for e in Endpoint if e.method != "GET"], ids=lambda e: e.name)
async def test_async_post_is_refused_before_anything_happens(confirma_conn_env, endpoint):
    hook = ConfirmaHook("no_such_connection")  # not even looked up
    message = f"arequest is for reads only; {endpoint.value} must run on a worker"
    with aioresponses() as mock, pytest.raises(ConfirmaError, match=message):
        await hook.arequest(endpoint)
    assert all_calls(mock) == []


# -- connection resolved asynchronously ------------------------------------------------------------
async def test_async_path_resolves_the_connection_without_sync_calls(async_hook):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY)
        await async_hook.aget_payment_sync_status()
    settings = await async_hook.aget_settings()
    assert settings.base_url == STAGING_BASE
    assert settings.provisioning_token == PROVISIONING_TOKEN
    assert settings.timeout == CONN_TIMEOUT


async def test_async_connection_errors_are_named(confirma_conn_env, no_sync_connection):
    confirma_conn_env("async_bad", conn_value({"environment": "qa"}))
    with pytest.raises(ConfirmaError, match="Confirma connection 'async_bad': extra 'environment' is 'qa'"):
        await ConfirmaHook("async_bad").aget_payment_sync_status()


@only_on_airflow_3_3("asserts on the async connection path of 3.3.2")
async def test_async_uri_connection_with_string_extras(confirma_conn_env, no_sync_connection):
    confirma_conn_env("async_uri", f"confirma://:{TEST_API_KEY}@/?environment=production&timeout=4")
    hook = ConfirmaHook("async_uri", retry_policy=TINY_POLICY)
    with aioresponses() as mock:
        mock.get("https://integrations.confirmafinance.com/api/v1/partner/accounting/payment", payload={"payments": []})
        assert await hook.aget_payment_sync_status() == []
        ((_, _, kwargs),) = all_calls(mock)
    assert_attempt_timeout(kwargs, 4.0)


# -- retries ---------------------------------------------------------------------------------------
async def test_async_retries_503_then_succeeds(async_hook):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, status=503, body="busy")
        mock.get(PAYMENT_URL, status=503, body="busy")
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY)
        records = await async_hook.aget_payment_sync_status()
    assert len(records) == 2
    assert len(all_calls(mock)) == 3


async def test_async_first_failure_counts_as_the_policys_first_attempt(staging_conn, no_sync_connection, caplog):
    hook = ConfirmaHook(retry_policy=RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.01, jitter=0))
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, status=503, body="busy", repeat=True)
        with pytest.raises(ConfirmaServerError):
            await hook.aget_payment_sync_status()
    assert len(all_calls(mock)) == 3  # not 1 + 3: the bare first attempt is attempt 1 of 3
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [m.split(" attempt ")[1].split(" ")[0] for m in retries] == ["1", "2"]


async def test_async_retry_after_is_honoured_and_capped(staging_conn, no_sync_connection, recorded_async_sleeps):
    hook = ConfirmaHook(retry_policy=RetryPolicy(max_attempts=4, retry_after_cap=10, max_total_seconds=60))
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, status=503, headers={"Retry-After": "3"})
        mock.get(PAYMENT_URL, status=429, headers={"Retry-After": "600"})
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY)
        await hook.aget_payment_sync_status()
    assert recorded_async_sleeps == [3.0, 10.0]


async def test_async_rate_limit_and_server_errors_exhaust(async_hook):
    for status, error_type in ((429, ConfirmaRateLimitError), (500, ConfirmaServerError)):
        with aioresponses() as mock:
            mock.get(PAYMENT_URL, status=status, body="no", repeat=True)
            with pytest.raises(error_type):
                await async_hook.aget_payment_sync_status()
        assert len(all_calls(mock)) == TINY_POLICY.max_attempts


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (asyncio.TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError("read"), "timeout"),
        (aiohttp.ServerDisconnectedError(), "reset"),
        (aiohttp.ClientPayloadError("truncated"), "reset"),
    ],
)
async def test_async_transport_errors_are_retried_for_get(async_hook, exception, kind):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, exception=exception)
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY)
        assert len(await async_hook.aget_payment_sync_status()) == 2
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, exception=exception, repeat=True)
        with pytest.raises(ConfirmaTransportError) as info:
            await async_hook.aget_payment_sync_status()
    assert info.value.kind == kind
    assert len(all_calls(mock)) == TINY_POLICY.max_attempts


async def test_async_refused_connection(loopback_hook, closed_port_base, no_sync_connection):
    hook = loopback_hook(closed_port_base)
    with pytest.raises(ConfirmaTransportError) as info:
        await hook.aget_payment_sync_status()
    assert info.value.kind == "connect"


async def test_async_real_reset_and_silence(loopback_hook, resetting_server, hanging_server, no_sync_connection):
    with pytest.raises(ConfirmaTransportError) as info:
        await loopback_hook(resetting_server.base, conn_id="resets").aget_payment_sync_status()
    assert info.value.kind == "reset"
    # aiohttp itself resends an idempotent request once after a disconnect; each of our attempts
    # therefore opens one or two connections.
    assert TINY_POLICY.max_attempts <= resetting_server.accepted <= 2 * TINY_POLICY.max_attempts
    with pytest.raises(ConfirmaTransportError) as info:
        await loopback_hook(hanging_server.base, conn_id="hangs", hook_timeout=0.2).aget_payment_sync_status()
    assert info.value.kind == "timeout"
    assert hanging_server.accepted_settled(TINY_POLICY.max_attempts) == TINY_POLICY.max_attempts


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "content_type", "error_type", "fragment"),
    [
        (401, "denied", "text/plain", ConfirmaAuthError, "returned HTTP 401: API key rejected"),
        (404, "nope", "text/plain", ConfirmaClientError, "returned HTTP 404: body: nope"),
        (200, "<html/>", "text/html", ConfirmaResponseError, "expected JSON, got text/html"),
        (200, "{oops", "application/json", ConfirmaResponseError, "malformed JSON"),
        (200, '{"payments": 5}', "application/json", ConfirmaResponseError, "'payments' is not a list"),
    ],
)
async def test_async_error_mapping(async_hook, status, body, content_type, error_type, fragment):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, status=status, body=body, content_type=content_type)
        with pytest.raises(ConfirmaAPIError) as info:
            await async_hook.aget_payment_sync_status()
    assert type(info.value) is error_type
    assert str(info.value).startswith("Confirma API GET /accounting/payment returned HTTP")
    assert fragment in str(info.value)
    assert len(all_calls(mock)) == 1


async def test_async_errors_and_logs_never_carry_the_key(async_hook, caplog):
    caplog.set_level(logging.DEBUG)
    echo = f"key {TEST_API_KEY} token {PROVISIONING_TOKEN}"
    errors = []
    for status in (401, 503):
        with aioresponses() as mock:
            mock.get(PAYMENT_URL, status=status, body=echo, repeat=True)
            with pytest.raises(ConfirmaAPIError) as info:
                await async_hook.aget_payment_sync_status()
        errors.append(info.value)
    assert str(errors[0]).endswith("body: key *** token ***")
    assert "retrying in" in caplog.text
    for text in [caplog.text, repr(async_hook), repr(await async_hook.aget_settings())] + [
        "".join(traceback.format_exception(e)) + repr(e) for e in errors
    ]:
        assert TEST_API_KEY not in text
        assert PROVISIONING_TOKEN not in text


# -- TLS -------------------------------------------------------------------------------------------
async def test_async_tls_verification_and_ca_bundle(loopback_hook, tls_server, test_ca, no_sync_connection):
    tls_server.routes[Endpoint.PAYMENT_SYNC_STATUS.full_path] = (200, PAYMENTS_BODY)
    with pytest.raises(ConfirmaTransportError) as info:
        await loopback_hook(tls_server.base, conn_id="tls_default").aget_payment_sync_status()
    assert info.value.kind == "connect"
    assert tls_server.seen == []
    hook = loopback_hook(tls_server.base, conn_id="tls_ca", ca_bundle=str(test_ca.cert_path))
    assert len(await hook.aget_payment_sync_status()) == 2


# -- one shared session per event loop -------------------------------------------------------------
async def test_shared_session_is_reused_and_closed_after_the_last_user():
    async with shared_client_session() as first:
        async with shared_client_session() as second:
            assert second is first
        assert not first.closed  # the outer user still holds it
        assert "X-Api-Key" not in first.headers  # no credentials on the shared session
    assert first.closed
    async with shared_client_session() as third:
        assert third is not first
        assert not third.closed
    assert third.closed
    assert asyncio.get_running_loop() not in confirma_module._LOOP_SESSIONS


async def test_concurrent_users_share_one_session():
    seen: list[aiohttp.ClientSession] = []

    async def user() -> None:
        async with shared_client_session() as session:
            seen.append(session)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(user() for _ in range(5)))
    assert len({id(s) for s in seen}) == 1
    assert seen[0].closed


async def test_hooks_in_one_loop_share_pooled_connections(loopback_hook, json_server, no_sync_connection):
    """Two hooks (think: two triggers) polling in one event loop reuse one keep-alive connection."""
    json_server.routes[Endpoint.PAYMENT_SYNC_STATUS.full_path] = (200, PAYMENTS_BODY)
    first = loopback_hook(json_server.base, conn_id="trigger_a")
    second = loopback_hook(json_server.base, conn_id="trigger_b")
    async with shared_client_session() as session:
        for hook in (first, second, first):
            assert len(await hook.aget_payment_sync_status()) == 2
        assert not session.closed
    assert session.closed
    assert len(json_server.seen) == 3
    assert len({seen.client for seen in json_server.seen}) == 1
    assert [s.headers["X-Api-Key"] for s in json_server.seen] == [TEST_API_KEY] * 3


async def test_arequest_alone_opens_and_closes_the_shared_session(async_hook):
    loop = asyncio.get_running_loop()
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY, repeat=True)
        await async_hook.aget_payment_sync_status()
        assert loop not in confirma_module._LOOP_SESSIONS
        async with shared_client_session() as held:
            await async_hook.aget_payment_sync_status()
            assert confirma_module._LOOP_SESSIONS[loop].users == 1
            assert not held.closed


async def test_an_explicit_session_is_used_and_left_open(async_hook):
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, payload=PAYMENTS_BODY)
        async with aiohttp.ClientSession() as mine:
            await async_hook.aget_payment_sync_status(session=mine)
            assert not mine.closed
            assert asyncio.get_running_loop() not in confirma_module._LOOP_SESSIONS


# -- the bound on requests in flight ([confirma] max_concurrent_requests) --------------------------
MAX_CONCURRENT_ENV = "AIRFLOW__CONFIRMA__MAX_CONCURRENT_REQUESTS"


class InFlight:
    """An aioresponses callback answering after ``seconds``; records the most requests in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = self.most = self.served = 0

    async def respond(self, url: URL, **kwargs: Any) -> CallbackResult:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.now -= 1
        self.served += 1
        return CallbackResult(status=200, payload=PAYMENTS_BODY)


async def polls(hook: ConfirmaHook, count: int, session: aiohttp.ClientSession | None = None) -> list[Any]:
    return await asyncio.gather(*(hook.aget_payment_sync_status(session=session) for _ in range(count)))


async def test_requests_in_flight_on_the_shared_session_are_bounded_by_the_config(async_hook, monkeypatch):
    monkeypatch.setenv(MAX_CONCURRENT_ENV, "3")
    server = InFlight(0.02)
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, callback=server.respond, repeat=True)
        async with shared_client_session() as session:
            assert session.connector is not None and session.connector.limit == 3  # as many connections
            results = await polls(async_hook, 10)
    assert server.most == 3
    assert server.served == 10  # the rest waited their turn; none was dropped
    assert all(len(r) == 2 for r in results)


async def test_the_default_bound_is_sixteen_requests_in_flight(async_hook, monkeypatch):
    monkeypatch.delenv(MAX_CONCURRENT_ENV, raising=False)
    server = InFlight(0.02)
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, callback=server.respond, repeat=True)
        await polls(async_hook, 40)  # no session given: each opens the shared one
    assert server.most == confirma_module.DEFAULT_MAX_CONCURRENT_REQUESTS == 16
    assert server.served == 40


async def test_an_explicit_session_is_not_bounded(async_hook, monkeypatch):
    monkeypatch.setenv(MAX_CONCURRENT_ENV, "2")
    server = InFlight(0.02)
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, callback=server.respond, repeat=True)
        async with shared_client_session(), aiohttp.ClientSession() as mine:
            await polls(async_hook, 6, session=mine)
    assert server.most == 6


async def test_waiting_for_a_slot_does_not_count_against_the_attempt_timeout(staging_conn, monkeypatch):
    """One slot, two requests of 0.3 s each, a 0.5 s attempt timeout: the second ends 0.6 s after it
    was asked for, but its attempt took 0.3 s, so it succeeds (and nothing is retried)."""
    monkeypatch.setenv(MAX_CONCURRENT_ENV, "1")
    hook = ConfirmaHook(retry_policy=RetryPolicy(max_attempts=1), timeout=0.5)
    server = InFlight(0.3)
    with aioresponses() as mock:
        mock.get(PAYMENT_URL, callback=server.respond, repeat=True)
        async with shared_client_session():
            results = await polls(hook, 2)
    assert [len(r) for r in results] == [2, 2]
    assert server.served == 2 and server.most == 1


async def test_a_slot_is_released_when_a_request_fails_or_is_cancelled(async_hook, monkeypatch):
    monkeypatch.setenv(MAX_CONCURRENT_ENV, "1")
    answers = [(400, 0.0), (200, 10.0), (200, 0.0)]  # a client error, a request that hangs, a success
    hangs = asyncio.Event()

    async def respond(url: URL, **kwargs: Any) -> CallbackResult:
        status, seconds = answers.pop(0)
        if seconds:
            hangs.set()
        await asyncio.sleep(seconds)
        return CallbackResult(status=status, payload=PAYMENTS_BODY if status == 200 else {"error": "bad"})

    with aioresponses() as mock:
        mock.get(PAYMENT_URL, callback=respond, repeat=True)
        async with shared_client_session():
            with pytest.raises(ConfirmaClientError):
                await async_hook.aget_payment_sync_status()
            hanging = asyncio.ensure_future(async_hook.aget_payment_sync_status())
            await asyncio.wait_for(hangs.wait(), 2.0)
            hanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hanging
            assert len(await asyncio.wait_for(async_hook.aget_payment_sync_status(), 2.0)) == 2
    assert answers == []


@pytest.mark.parametrize("raw", ["0", "-4", "many", "2.5"])
async def test_a_bad_max_concurrent_requests_names_the_option(async_hook, monkeypatch, raw):
    monkeypatch.setenv(MAX_CONCURRENT_ENV, raw)
    with pytest.raises(ConfirmaConfigError, match=r"\[confirma\] max_concurrent_requests must be an integer >= 1, got"):
        await async_hook.aget_payment_sync_status()
    assert asyncio.get_running_loop() not in confirma_module._LOOP_SESSIONS
