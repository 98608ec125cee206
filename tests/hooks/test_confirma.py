"""``ConfirmaHook`` sync path: headers, timeouts, session reuse, retries, errors, endpoints, TLS;
and the sync status readers chosen by endpoint (``get_sync_status`` / ``aget_sync_status``, sync and async).

HTTP is mocked at the transport with ``responses`` (async with ``aioresponses``); connection-level
failures (refused, reset, no answer), keep-alive and TLS use real loopback sockets (fixtures in ``conftest.py``).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import subprocess
import sys
import time
import traceback
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import certifi
import pytest
import requests
import responses
from aioresponses import aioresponses
from conftest import TEST_API_KEY  # tests/conftest.py, already imported by pytest
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

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
from airflow_provider_confirma.hooks.confirma import TEST_CONNECTION_RETRY_POLICY, ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy, encode_json
from airflow_provider_confirma.models import LedgerSyncRecord, PaymentSyncRecord

from .conftest import CONN_TIMEOUT, PROVISIONING_TOKEN, STAGING_BASE, TINY_POLICY, conn_value

PAYMENT_URL = STAGING_BASE + Endpoint.PAYMENT_SYNC_STATUS.path
SUBMIT_URL = STAGING_BASE + Endpoint.SUBMIT_PAYMENTS.path
VALIDATE_URL = STAGING_BASE + Endpoint.VALIDATE.path

PAYMENTS_BODY = {
    "payments": [
        {"sourceIdentifier": "pay-1", "paymentDate": "2026-02-02", "syncDate": None, "status": 0},
        {"sourceIdentifier": "pay-2", "paymentDate": "2026-02-01", "syncDate": "2026-02-02", "status": 1},
    ]
}
PAYMENT_SUBMISSION = {
    "payments": [
        {
            "paymentIdentifier": "pay-1",
            "invoiceNumber": "10001",
            "paymentDate": date(2026, 2, 1),
            "amount": Decimal("12.30"),
            "currency": "EUR",
        }
    ]
}


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens (the request never left the client)."""
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def reset() -> requests.exceptions.ConnectionError:
    """What requests raises when the server drops the connection mid-request."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert TEST_API_KEY not in text
        assert PROVISIONING_TOKEN not in text


# -- hook identity ---------------------------------------------------------------------------------
def test_hook_attributes():
    assert ConfirmaHook.conn_name_attr == "confirma_conn_id"
    assert ConfirmaHook.default_conn_name == "confirma_default"
    assert ConfirmaHook.conn_type == "confirma"
    assert ConfirmaHook.hook_name == "Confirma Finance"
    assert ConfirmaHook().confirma_conn_id == "confirma_default"
    assert ConfirmaHook("other").confirma_conn_id == "other"


@pytest.mark.parametrize("timeout", [0, -1, "5", True, float("inf"), float("nan")])
def test_bad_hook_timeout_is_refused(timeout):
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        ConfirmaHook(timeout=timeout)


def test_default_retry_policy_is_bounded():
    policy = ConfirmaHook().retry_policy
    assert policy == RetryPolicy()
    assert policy.max_attempts == 5 and policy.max_total_seconds == 60


# -- every call: headers, timeout, one session -----------------------------------------------------
def test_get_sends_key_accept_and_connection_timeout(hook, rsps):
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    hook.get_payment_sync_status()
    (call,) = rsps.calls
    assert call.request.method == "GET"
    assert call.request.headers["X-Api-Key"] == TEST_API_KEY
    assert call.request.headers["Accept"] == "application/json"
    assert "Content-Type" not in call.request.headers
    assert call.request.body is None
    assert call.request.req_kwargs["timeout"] == (10.0, CONN_TIMEOUT)  # connect capped at 10 s
    # TLS verified: against the system store, or the bundle the environment names for requests.
    assert call.request.req_kwargs["verify"] == (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )


def test_post_sends_json_content_type(hook, rsps):
    rsps.post(SUBMIT_URL, json={"accepted": 1})
    assert hook.submit_payments(PAYMENT_SUBMISSION) == {"accepted": 1}
    request = rsps.calls[0].request
    assert request.headers["X-Api-Key"] == TEST_API_KEY
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.req_kwargs["timeout"] == (10.0, CONN_TIMEOUT)


def test_hook_timeout_overrides_the_connection(staging_conn, rsps):
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    rsps.post(SUBMIT_URL, json={})
    hook = ConfirmaHook(timeout=3.5, retry_policy=TINY_POLICY)
    hook.get_payment_sync_status()
    hook.submit_payments(PAYMENT_SUBMISSION)
    assert [c.request.req_kwargs["timeout"] for c in rsps.calls] == [(3.5, 3.5), (3.5, 3.5)]


def test_default_timeout_without_connection_setting(confirma_conn_env, rsps):
    confirma_conn_env("confirma_default", conn_value({"environment": "staging"}))
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    ConfirmaHook().get_payment_sync_status()
    assert rsps.calls[0].request.req_kwargs["timeout"] == (10.0, 30.0)


def test_one_session_per_hook(hook, rsps):
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    hook.get_payment_sync_status()
    session = hook.session
    hook.get_payment_sync_status()
    assert hook.session is session
    assert hook.get_conn() is session
    assert isinstance(session, requests.Session)
    assert ConfirmaHook(retry_policy=TINY_POLICY).session is not session


def test_requests_reuse_one_keep_alive_connection(loopback_hook, json_server):
    json_server.routes[Endpoint.VALIDATE.full_path] = (200, {"isValid": True, "message": "ok"})
    hook = loopback_hook(json_server.base)
    for _ in range(3):
        hook.validate_token()
    assert len(json_server.seen) == 3
    assert len({seen.client for seen in json_server.seen}) == 1  # one TCP connection for all three
    assert json_server.seen[0].headers["X-Api-Key"] == TEST_API_KEY
    other = loopback_hook(json_server.base)
    other.validate_token()
    assert json_server.seen[3].client != json_server.seen[0].client


def test_redirects_are_not_followed(hook, rsps):
    rsps.get(VALIDATE_URL, status=302, headers={"Location": "https://elsewhere.example/steal"})
    with pytest.raises(ConfirmaResponseError, match="returned HTTP 302: unexpected status"):
        hook.validate_token()
    assert len(rsps.calls) == 1


# -- retries ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_get_retries_on_429_and_5xx_then_succeeds(hook, rsps, status):
    rsps.get(PAYMENT_URL, status=status, body="busy")
    rsps.get(PAYMENT_URL, status=status, body="busy")
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    records = hook.get_payment_sync_status()
    assert [r.source_identifier for r in records] == ["pay-1", "pay-2"]
    assert len(rsps.calls) == 3


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (refused(), "connect"),
        (requests.exceptions.ConnectTimeout("connect timed out"), "connect"),
        (requests.exceptions.ReadTimeout("read timed out"), "timeout"),
        (reset(), "reset"),
    ],
)
def test_get_retries_on_transport_errors(hook, rsps, failure, kind):
    rsps.get(PAYMENT_URL, body=failure)
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    assert len(hook.get_payment_sync_status()) == 2
    assert len(rsps.calls) == 2
    rsps.replace(responses.GET, PAYMENT_URL, body=failure)
    with pytest.raises(ConfirmaTransportError) as info:
        hook.get_payment_sync_status()
    assert info.value.kind == kind
    assert len(rsps.calls) == 2 + TINY_POLICY.max_attempts


def test_rate_limit_exhausted(hook, rsps):
    rsps.get(PAYMENT_URL, status=429, body='{"error": "slow down"}', headers={"Retry-After": "1"})
    with pytest.raises(ConfirmaRateLimitError) as info:
        hook.get_payment_sync_status()
    assert len(rsps.calls) == TINY_POLICY.max_attempts
    assert str(info.value) == (
        'Confirma API GET /accounting/payment returned HTTP 429: rate limited: body: {"error": "slow down"}'
    )


def test_server_error_exhausted(hook, rsps):
    rsps.get(PAYMENT_URL, status=503, body="<h1>maintenance</h1>")
    with pytest.raises(ConfirmaServerError) as info:
        hook.get_payment_sync_status()
    assert len(rsps.calls) == TINY_POLICY.max_attempts
    assert info.value.status == 503
    assert str(info.value) == "Confirma API GET /accounting/payment returned HTTP 503: body: <h1>maintenance</h1>"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(hook, rsps, status):
    rsps.get(PAYMENT_URL, status=status, body="no")
    with pytest.raises(ConfirmaClientError if status != 401 else ConfirmaAuthError):
        hook.get_payment_sync_status()
    assert len(rsps.calls) == 1


@pytest.fixture
def recorded_sleeps(monkeypatch) -> list[float]:
    """tenacity's sleeps, recorded instead of slept (tenacity calls ``time.sleep``)."""
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    return sleeps


def test_retry_after_seconds_is_honoured(staging_conn, rsps, recorded_sleeps):
    hook = ConfirmaHook(retry_policy=RetryPolicy(max_attempts=3, retry_after_cap=30))
    rsps.get(PAYMENT_URL, status=503, headers={"Retry-After": "7"})
    rsps.get(PAYMENT_URL, status=429, headers={"Retry-After": "2"})
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    hook.get_payment_sync_status()
    assert recorded_sleeps == [7.0, 2.0]


def test_retry_after_http_date_is_honoured(staging_conn, rsps, recorded_sleeps):
    hook = ConfirmaHook(retry_policy=RetryPolicy(max_attempts=2, retry_after_cap=30))
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    rsps.get(PAYMENT_URL, status=503, headers={"Retry-After": when})
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    hook.get_payment_sync_status()
    (slept,) = recorded_sleeps
    assert 18 < slept <= 20


def test_retry_after_is_capped(staging_conn, rsps, recorded_sleeps):
    hook = ConfirmaHook(retry_policy=RetryPolicy(max_attempts=2, retry_after_cap=4, max_total_seconds=60))
    rsps.get(PAYMENT_URL, status=503, headers={"Retry-After": "3600"})
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    hook.get_payment_sync_status()
    assert recorded_sleeps == [4.0]


def test_backoff_without_retry_after_is_exponential(staging_conn, rsps, recorded_sleeps):
    policy = RetryPolicy(max_attempts=4, backoff_initial=1.0, backoff_max=100, jitter=0.25)
    rsps.get(PAYMENT_URL, status=500)
    with pytest.raises(ConfirmaServerError):
        ConfirmaHook(retry_policy=policy).get_payment_sync_status()
    assert len(recorded_sleeps) == 3
    for slept, base in zip(recorded_sleeps, [1.0, 2.0, 4.0], strict=True):
        assert base <= slept <= base + 0.25


# -- POST: never retried once it may have reached the server ---------------------------------------
@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        ({"status": 500, "body": "oops"}, ConfirmaServerError),
        ({"status": 503, "body": "later", "headers": {"Retry-After": "0"}}, ConfirmaServerError),
        ({"status": 429, "body": "slow"}, ConfirmaRateLimitError),
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, ConfirmaTransportError),
        ({"body": reset()}, ConfirmaTransportError),
    ],
)
def test_post_is_sent_exactly_once(hook, rsps, response, error_type):
    rsps.post(SUBMIT_URL, **response)
    rsps.post(SUBMIT_URL, json={"accepted": 1})  # would be used by a (wrong) retry
    with pytest.raises(error_type):
        hook.submit_payments(PAYMENT_SUBMISSION)
    assert len(rsps.calls) == 1


def test_post_is_retried_when_the_connection_was_refused(hook, rsps):
    rsps.post(SUBMIT_URL, body=refused())
    rsps.post(SUBMIT_URL, json={"accepted": 1})
    assert hook.submit_payments(PAYMENT_SUBMISSION) == {"accepted": 1}
    assert len(rsps.calls) == 2


def test_post_to_a_real_resetting_server_is_sent_once(loopback_hook, resetting_server):
    hook = loopback_hook(resetting_server.base)
    with pytest.raises(ConfirmaTransportError) as info:
        hook.submit_payments(PAYMENT_SUBMISSION)
    assert info.value.kind == "reset"
    assert resetting_server.accepted == 1
    with pytest.raises(ConfirmaTransportError):
        hook.get_payment_sync_status()
    assert resetting_server.accepted == 1 + TINY_POLICY.max_attempts


def test_post_to_a_real_silent_server_times_out_once(loopback_hook, hanging_server):
    hook = loopback_hook(hanging_server.base, hook_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ConfirmaTransportError) as info:
        hook.submit_payments(PAYMENT_SUBMISSION)
    assert info.value.kind == "timeout"
    assert hanging_server.accepted_settled(1) == 1
    assert time.monotonic() - started < 5
    with pytest.raises(ConfirmaTransportError, match="timeout"):
        hook.get_payment_sync_status()
    assert hanging_server.accepted_settled(1 + TINY_POLICY.max_attempts) == 1 + TINY_POLICY.max_attempts


def test_refused_connection_is_retried_for_post_and_get(loopback_hook, closed_port_base, caplog):
    hook = loopback_hook(closed_port_base)
    caplog.set_level(logging.WARNING, logger="airflow_provider_confirma")
    for call in (lambda: hook.submit_payments(PAYMENT_SUBMISSION), hook.get_payment_sync_status):
        caplog.clear()
        with pytest.raises(ConfirmaTransportError) as info:
            call()
        assert info.value.kind == "connect"
        retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
        assert len(retries) == TINY_POLICY.max_attempts - 1


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "content_type", "error_type", "message"),
    [
        (
            401,
            '{"message": "Unauthorized"}',
            "application/json",
            ConfirmaAuthError,
            "Confirma API GET /accounting/payment returned HTTP 401: API key rejected (missing, wrong, expired or "
            'of another environment): body: {"message": "Unauthorized"}',
        ),
        (
            404,
            "Not Found",
            "text/plain",
            ConfirmaClientError,
            "Confirma API GET /accounting/payment returned HTTP 404: body: Not Found",
        ),
        (
            200,
            "<html>login</html>",
            "text/html",
            ConfirmaResponseError,
            "Confirma API GET /accounting/payment returned HTTP 200: expected JSON, got text/html: "
            "body: <html>login</html>",
        ),
        (
            200,
            '{"payments": [',
            "application/json",
            ConfirmaResponseError,
            'Confirma API GET /accounting/payment returned HTTP 200: malformed JSON: body: {"payments": [',
        ),
        (
            200,
            '[{"sourceIdentifier": "a"}]',
            "application/json",
            ConfirmaResponseError,
            "Confirma API GET /accounting/payment returned HTTP 200: unexpected response: expected a JSON object "
            "with a 'payments' list, got list",
        ),
        (
            200,
            '{"payments": [{"status": 1}]}',
            "application/json",
            ConfirmaResponseError,
            "Confirma API GET /accounting/payment returned HTTP 200: unexpected response: payments[0]: record has "
            "no sourceIdentifier",
        ),
    ],
)
def test_error_mapping_and_messages(hook, rsps, status, body, content_type, error_type, message):
    rsps.get(PAYMENT_URL, status=status, body=body, content_type=content_type)
    with pytest.raises(ConfirmaAPIError) as info:
        hook.get_payment_sync_status()
    assert type(info.value) is error_type
    assert str(info.value) == message
    assert len(rsps.calls) == 1


def test_errors_never_carry_the_key(hook, rsps, caplog):
    """Every error kind, retries included: no key in messages, reprs, tracebacks or logs."""
    caplog.set_level(logging.DEBUG)
    echo = f'{{"error": "bad key {TEST_API_KEY}", "token": "{PROVISIONING_TOKEN}"}}'
    failures = [
        {"status": 401, "body": echo},
        {"status": 404, "body": echo},
        {"status": 429, "body": echo},
        {"status": 503, "body": echo},
        {"status": 200, "body": echo, "content_type": "text/html"},
        {"body": refused()},
        {"body": reset()},
        {"body": requests.exceptions.ReadTimeout(f"read timed out {TEST_API_KEY}")},
    ]
    errors: list[ConfirmaError] = []
    for failure in failures:
        rsps.replace(responses.GET, PAYMENT_URL, **failure) if rsps.registered() else rsps.get(PAYMENT_URL, **failure)
        with pytest.raises(ConfirmaError) as info:
            hook.get_payment_sync_status()
        errors.append(info.value)
    assert len(rsps.calls) == 3 * 1 + 5 * TINY_POLICY.max_attempts  # 401, 404, HTML once; the rest retried
    assert "bad key ***" in str(errors[0])
    for error in errors:
        assert error.__cause__ is None
        assert_no_secret(str(error), repr(error), "".join(traceback.format_exception(error)))
    assert "retrying in" in caplog.text
    assert_no_secret(caplog.text, repr(hook), repr(hook.settings), str(hook.settings))
    assert_no_secret(*(str(r.args) for r in caplog.records))


def test_create_client_error_bodies_are_never_quoted(hook, rsps):
    rsps.post(STAGING_BASE + "/client", status=400, body=f"token {PROVISIONING_TOKEN} not allowed")
    with pytest.raises(ConfirmaClientError) as info:
        hook.create_client({"client": {"name": "Oy"}})
    assert str(info.value).endswith("body: (not shown: this endpoint returns secrets)")
    assert PROVISIONING_TOKEN not in str(info.value)


# -- 204 and empty results -------------------------------------------------------------------------
def test_no_content_is_an_empty_list_for_status_endpoints(hook, rsps):
    rsps.get(PAYMENT_URL, status=204)
    rsps.get(STAGING_BASE + "/accounting/ledger", status=204)
    rsps.get(STAGING_BASE + "/settlements", status=204)
    assert hook.get_payment_sync_status() == []
    assert hook.get_ledger_sync_status() == []
    assert hook.get_settlements() is None


def test_status_endpoints_return_typed_records(hook, rsps):
    rsps.get(PAYMENT_URL, json=PAYMENTS_BODY)
    rsps.get(
        STAGING_BASE + "/accounting/ledger",
        json={"ledgers": [{"sourceIdentifier": "lg-1", "documentDate": "2026-01-31", "status": 2}]},
    )
    payments = hook.get_payment_sync_status()
    ledgers = hook.get_ledger_sync_status()
    assert all(isinstance(r, PaymentSyncRecord) for r in payments)
    assert payments[1].sync_date is not None and payments[1].sync_date.isoformat() == "2026-02-02"
    assert isinstance(ledgers[0], LedgerSyncRecord)
    assert ledgers[0].document_date is not None and ledgers[0].document_date.isoformat() == "2026-01-31"


# -- sync status readers by endpoint: get_sync_status / aget_sync_status and the ledger reader the
# ledger trigger polls (async HTTP mocked with aioresponses) -----------------------------------------
LEDGER_URL = STAGING_BASE + Endpoint.LEDGER_SYNC_STATUS.path
LEDGER_URL_ANY_QUERY = re.compile("^" + re.escape(LEDGER_URL) + r"(\?.*)?$")
LEDGERS_BODY = {
    "ledgers": [
        {
            "sourceIdentifier": "ml-1",
            "documentDate": "2026-02-02",
            "documentName": "Accruals",
            "documentStatus": "Approved",
            "syncDate": "2026-02-03",
            "status": 1,
            "description": "Successfully synced",
        },
        {"sourceIdentifier": "ml-2", "documentDate": "2026-02-02", "syncDate": None, "status": 0},
    ]
}


@pytest.fixture
def async_hook(staging_conn) -> ConfirmaHook:
    return ConfirmaHook(retry_policy=TINY_POLICY)


async def test_aget_ledger_sync_status_reads_typed_ledger_records(async_hook):
    with aioresponses() as mock:
        mock.get(LEDGER_URL_ANY_QUERY, payload=LEDGERS_BODY)
        records = await async_hook.aget_ledger_sync_status({"fromDate": "2026-02-01"})
    assert [type(r) for r in records] == [LedgerSyncRecord, LedgerSyncRecord]
    assert [(r.source_identifier, r.status) for r in records] == [("ml-1", 1), ("ml-2", 0)]
    assert records[0].document_name == "Accruals"
    ((method, url), _) = next(iter(mock.requests.items()))
    assert method == "GET"
    assert url.path == API_PREFIX + "/accounting/ledger"
    assert url.query_string == "fromDate=2026-02-01"


async def test_aget_ledger_sync_status_no_content_is_an_empty_list(async_hook):
    with aioresponses() as mock:
        mock.get(LEDGER_URL, status=204)
        assert await async_hook.aget_ledger_sync_status() == []


async def test_aget_ledger_sync_status_reads_the_ledgers_list_only(async_hook):
    """The list key is the ledger endpoint's own: payments in the same body are not ledger records."""
    with aioresponses() as mock:
        mock.get(LEDGER_URL, payload={**PAYMENTS_BODY, **LEDGERS_BODY})
        records = await async_hook.aget_ledger_sync_status()
    assert [r.source_identifier for r in records] == ["ml-1", "ml-2"]


async def test_aget_ledger_sync_status_names_the_endpoint_of_a_bad_body(async_hook):
    with aioresponses() as mock:
        mock.get(LEDGER_URL, payload={"ledgers": {"sourceIdentifier": "ml-1"}})
        with pytest.raises(ConfirmaResponseError, match=r"/accounting/ledger.*'ledgers' is not a list"):
            await async_hook.aget_ledger_sync_status()


@pytest.mark.parametrize(
    ("endpoint", "body", "record_type"),
    [
        (Endpoint.PAYMENT_SYNC_STATUS, PAYMENTS_BODY, PaymentSyncRecord),
        (Endpoint.LEDGER_SYNC_STATUS, LEDGERS_BODY, LedgerSyncRecord),
    ],
    ids=["payment", "ledger"],
)
async def test_sync_and_async_readers_agree_per_endpoint(hook, rsps, async_hook, endpoint, body, record_type):
    rsps.get(STAGING_BASE + endpoint.path, json=body)
    synced = hook.get_sync_status(endpoint)
    with aioresponses() as mock:
        mock.get(STAGING_BASE + endpoint.path, payload=body)
        awaited = await async_hook.aget_sync_status(endpoint)
    assert all(type(r) is record_type for r in synced + awaited)
    assert [r.to_xcom() for r in synced] == [r.to_xcom() for r in awaited]
    assert len(synced) == len(body[next(iter(body))])


@pytest.mark.parametrize("endpoint", [Endpoint.PAYMENTS, Endpoint.SUBMIT_LEDGER], ids=lambda e: e.name)
async def test_a_non_status_endpoint_is_refused_before_any_request(hook, rsps, async_hook, endpoint):
    message = f"{re.escape(endpoint.value)} is not a sync status endpoint"
    with pytest.raises(ConfirmaConfigError, match=message):
        hook.get_sync_status(endpoint)
    with aioresponses() as mock:
        with pytest.raises(ConfirmaConfigError, match=message):
            await async_hook.aget_sync_status(endpoint)
        assert not mock.requests
    assert len(rsps.calls) == 0


# -- a method for every endpoint -------------------------------------------------------------------
GET_METHODS = {
    Endpoint.VALIDATE: "validate_token",
    Endpoint.RENEW: "renew_token",
    Endpoint.CASE_DETAILS: "get_case_details",
    Endpoint.DISTRIBUTION_INFO: "get_distribution_info",
    Endpoint.PAYMENTS: "get_payments",
    Endpoint.SETTLEMENTS: "get_settlements",
    Endpoint.LEDGER_SYNC_STATUS: "get_ledger_sync_status",
    Endpoint.PAYMENT_SYNC_STATUS: "get_payment_sync_status",
}
POST_METHODS = {
    Endpoint.CREATE_CLIENT: "create_client",
    Endpoint.CREATE_INVOICE: "create_invoice",
    Endpoint.CREATE_INVOICE_ACTION: "create_invoice_action",
    Endpoint.SUBMIT_LEDGER: "submit_ledger",
    Endpoint.SUBMIT_PAYMENTS: "submit_payments",
}


def test_every_endpoint_has_a_method():
    assert set(GET_METHODS) | set(POST_METHODS) == set(Endpoint)
    assert all(e.method == "GET" for e in GET_METHODS)
    assert all(e.method == "POST" for e in POST_METHODS)


@pytest.mark.parametrize("endpoint", list(GET_METHODS), ids=lambda e: e.name)
def test_get_methods_hit_their_path_and_pass_params_through(hook, rsps, endpoint):
    rsps.get(STAGING_BASE + endpoint.path, json={"payments": [], "ledgers": []})
    params = {
        "fromDate": date(2026, 1, 1),
        "toDate": "2026-01-31",
        "someUndocumentedParam": "a b&c=d",
        "sourceIdentifier": ["pay-1", "pay-2"],
        "onlyFailed": True,
        "skipped": None,
    }
    getattr(hook, GET_METHODS[endpoint])(params=params)
    (call,) = rsps.calls
    parts = urlsplit(call.request.url)
    assert call.request.method == "GET"
    assert parts.path == API_PREFIX + endpoint.path
    assert parse_qs(parts.query) == {
        "fromDate": ["2026-01-01"],
        "toDate": ["2026-01-31"],
        "someUndocumentedParam": ["a b&c=d"],
        "sourceIdentifier": ["pay-1", "pay-2"],
        "onlyFailed": ["true"],
    }
    assert call.request.body is None


@pytest.mark.parametrize("endpoint", list(GET_METHODS), ids=lambda e: e.name)
def test_get_methods_without_params(hook, rsps, endpoint):
    rsps.get(STAGING_BASE + endpoint.path, json={"payments": [], "ledgers": []})
    getattr(hook, GET_METHODS[endpoint])()
    assert rsps.calls[0].request.url == STAGING_BASE + endpoint.path


@pytest.mark.parametrize("endpoint", list(POST_METHODS), ids=lambda e: e.name)
def test_post_methods_send_exact_decimal_json(hook, rsps, endpoint):
    rsps.post(STAGING_BASE + endpoint.path, json={"ok": True})
    body = {
        "amounts": [Decimal("12.30"), Decimal("-124.00"), Decimal("0.10")],
        "vatPercentage": Decimal("25.5"),
        "date": date(2026, 1, 31),
        "text": "Åbo",
    }
    assert getattr(hook, POST_METHODS[endpoint])(body) == {"ok": True}
    (call,) = rsps.calls
    assert call.request.method == "POST"
    assert call.request.url == STAGING_BASE + endpoint.path
    raw = call.request.body
    assert raw == encode_json(body)
    assert b'"amounts":[12.30,-124.00,0.10]' in raw
    assert b'"vatPercentage":25.5' in raw
    assert json.loads(raw, parse_float=Decimal)["amounts"][0].as_tuple() == Decimal("12.30").as_tuple()
    expected_key = PROVISIONING_TOKEN if endpoint is Endpoint.CREATE_CLIENT else TEST_API_KEY
    assert call.request.headers["X-Api-Key"] == expected_key


def test_request_takes_any_endpoint(hook, rsps):
    rsps.get(STAGING_BASE + "/invoice/case", json={"case": {"id": 1}})
    assert hook.request(Endpoint.CASE_DETAILS, params={"caseId": 1}) == {"case": {"id": 1}}
    assert rsps.calls[0].request.url == STAGING_BASE + "/invoice/case?caseId=1"


def test_create_client_without_provisioning_token_fails_before_sending(confirma_conn_env, rsps):
    confirma_conn_env("no_token", conn_value({"environment": "staging"}))
    hook = ConfirmaHook("no_token", retry_policy=TINY_POLICY)
    with pytest.raises(ConfirmaConfigError) as info:
        hook.create_client({"client": {"name": "Oy"}})
    assert str(info.value) == (
        "Confirma connection 'no_token': extra 'partner_provisioning_token' is required to create clients"
    )
    assert len(rsps.calls) == 0


def test_connection_errors_surface_on_first_call(confirma_conn_env):
    confirma_conn_env("broken", conn_value({"environment": "qa"}))
    with pytest.raises(ConfirmaConfigError, match="Confirma connection 'broken': extra 'environment' is 'qa'"):
        ConfirmaHook("broken").get_payment_sync_status()


# -- test_connection -------------------------------------------------------------------------------
def test_test_connection_success_is_a_get_to_validate(hook, rsps):
    rsps.get(VALIDATE_URL, json={"isValid": True, "message": "Token is valid"})
    assert hook.test_connection() == (True, "API key is valid (Confirma: Token is valid)")
    (call,) = rsps.calls
    assert (call.request.method, urlsplit(call.request.url).path) == ("GET", API_PREFIX + "/validate")


def test_test_connection_never_echoes_what_the_api_echoes(hook, rsps):
    rsps.get(VALIDATE_URL, json={"isValid": True, "message": f"Token {TEST_API_KEY} is valid " + "x" * 500})
    ok, message = hook.test_connection()
    assert ok and message.startswith("API key is valid (Confirma: Token *** is valid x")
    assert_no_secret(message)
    assert len(message) < 260  # the API's text is cut at 200 characters


def test_test_connection_invalid_key(hook, rsps):
    rsps.get(VALIDATE_URL, json={"isValid": False, "message": "Token expired"})
    assert hook.test_connection() == (False, "API key is not valid (Confirma: Token expired)")


def test_test_connection_unexpected_body(hook, rsps):
    rsps.get(VALIDATE_URL, json={"status": "ok"})
    assert hook.test_connection() == (False, "API key is not valid: no isValid=true in the response")


def test_test_connection_unauthorized(hook, rsps):
    rsps.get(VALIDATE_URL, status=401, body=f"unknown key {TEST_API_KEY}")
    ok, message = hook.test_connection()
    assert ok is False
    assert "GET /validate returned HTTP 401: API key rejected" in message
    assert_no_secret(message)


def test_test_connection_unreachable(loopback_hook, closed_port_base):
    ok, message = loopback_hook(closed_port_base).test_connection()
    assert ok is False
    assert message == "Confirma API GET /validate failed: connect (connection refused or unreachable)"


def test_test_connection_retries_briefly_then_restores_the_policy(hook, rsps):
    rsps.get(VALIDATE_URL, status=503)
    ok, message = hook.test_connection()
    assert ok is False and "HTTP 503" in message
    # Someone waits in the UI: two attempts, not the hook's five.
    assert len(rsps.calls) == 2
    assert hook.retry_policy is not TEST_CONNECTION_RETRY_POLICY


def test_test_connection_bad_configuration(confirma_conn_env):
    confirma_conn_env("half", json.dumps({"conn_type": "confirma", "password": TEST_API_KEY}))
    ok, message = ConfirmaHook("half").test_connection()
    assert ok is False
    # the UI tests a copy under a random id: the message speaks of this connection instead
    assert "This Confirma connection: set extra 'environment'" in message
    assert "'half'" not in message


def test_airflow_connection_test_uses_the_hook(rsps, monkeypatch):
    """The path Airflow's REST connection test takes (every supported version): a transient
    Connection exported as ``AIRFLOW_CONN_<ID>``, then Connection -> get_hook -> test_connection."""
    from airflow.models.connection import Connection

    rsps.get(VALIDATE_URL, json={"isValid": True, "message": "Token is valid"})
    conn = Connection(
        conn_id="ui_form", conn_type="confirma", password=TEST_API_KEY, extra=json.dumps({"environment": "staging"})
    )
    monkeypatch.setenv("AIRFLOW_CONN_UI_FORM", conn.get_uri())
    assert conn.test_connection() == (True, "API key is valid (Confirma: Token is valid)")
    assert rsps.calls[0].request.headers["X-Api-Key"] == TEST_API_KEY


def test_airflow_cli_connection_test(json_server):
    """``airflow connections test`` (enabled by ``[core] test_connection``) runs the hook's GET /validate."""
    json_server.routes[Endpoint.VALIDATE.full_path] = (200, {"isValid": True, "message": "Token is valid"})
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_CONFIRMA_CLI": conn_value(host=json_server.base),
    }
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", "confirma_cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Connection success!" in result.stdout
    assert_no_secret(result.stdout, result.stderr)
    (seen,) = json_server.seen
    assert (seen.method, seen.path) == ("GET", API_PREFIX + "/validate")
    assert seen.headers["X-Api-Key"] == TEST_API_KEY


# -- TLS -------------------------------------------------------------------------------------------
def test_tls_is_verified_against_the_system_store(loopback_hook, tls_server):
    tls_server.routes[Endpoint.VALIDATE.full_path] = (200, {"isValid": True, "message": "ok"})
    hook = loopback_hook(tls_server.base)
    with pytest.raises(ConfirmaTransportError) as info:
        hook.validate_token()
    assert info.value.kind == "connect"
    assert "TLS handshake failed" in str(info.value)
    assert tls_server.seen == []


def test_ca_bundle_is_used_and_not_replaced_by_requests_env(loopback_hook, tls_server, test_ca, monkeypatch):
    tls_server.routes[Endpoint.VALIDATE.full_path] = (200, {"isValid": True, "message": "ok"})
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # a bundle without our test CA
    hook = loopback_hook(tls_server.base, ca_bundle=str(test_ca.cert_path))
    assert hook.settings.verify == str(test_ca.cert_path)
    assert hook.validate_token() == {"isValid": True, "message": "ok"}
    assert hook.test_connection() == (True, "API key is valid (Confirma: ok)")
