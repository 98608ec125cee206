"""Secrets never leave through error excerpts or the log masker's blind spots, and hostile response
shapes end in a clear ``ConfirmaResponseError`` (issue 13, items 5, 6, 10 and 13).

* item 5: bodies of the endpoints that return secrets (``GET /renew``, ``POST /client``) are never
  quoted; values under secret-looking keys are redacted from every other excerpt; secrets the API
  returns are registered with Airflow's masker before they are returned;
* item 6: the key is redacted JSON-escaped and URL-encoded too; host user info is refused without
  being echoed; the masker gets the key and provisioning token as they are sent (stripped), on
  the async path without a blocking call;
* item 10: one strict ``Retry-After`` parser; odd values mean normal backoff on both transports;
* item 13: wrong-shape and deeply nested JSON in 2xx answers, read by real operators.

HTTP is mocked at the transport (``responses``, ``aioresponses``) or served by a raw loopback server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import threading
import traceback
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import responses
from aioresponses import aioresponses
from airflow.providers.common.compat.sdk import redact as masker_redact  # what mask_secret feeds

from airflow_provider_confirma.endpoints import API_PREFIX, ENVIRONMENT_HOSTS, SECRET_RETURNING, Endpoint
from airflow_provider_confirma.exceptions import (
    BODY_EXCERPT_CHARS,
    WITHHELD_EXCERPT,
    ConfirmaAPIError,
    ConfirmaConfigError,
    ConfirmaResponseError,
)
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.connection import SecretText
from airflow_provider_confirma.hooks.http_policy import parse_retry_after
from airflow_provider_confirma.operators.base import ConfirmaSubmissionUncertainError, to_xcom_safe
from airflow_provider_confirma.operators.invoices import (
    ConfirmaCreateInvoiceOperator,
    ConfirmaGetCaseDetailsOperator,
    ConfirmaGetDistributionInfoOperator,
)
from airflow_provider_confirma.operators.payments import ConfirmaGetPaymentsOperator, ConfirmaGetSettlementsOperator
from tests.operators.test_invoices import INVOICE
from tests.reliability.helpers import policy

BASE = ENVIRONMENT_HOSTS["staging"] + API_PREFIX
ONE_TRY = policy(1)


def unique(prefix: str) -> str:
    """A fresh secret-like value: Airflow's masker is process-wide, so each test needs its own."""
    return f"{prefix}_{uuid.uuid4().hex}"


def masked(secret: str) -> bool:
    """Whether Airflow's log masker (the one ``mask_secret`` registers with) hides ``secret``."""
    return secret not in str(masker_redact(f"[{secret}]"))


def error_texts(error: BaseException) -> str:
    return "\n".join((str(error), repr(error), "".join(traceback.format_exception(error))))


@pytest.fixture
def keys(confirma_conn_env) -> dict[str, str]:
    """``confirma_default`` on staging with a fresh API key and provisioning token."""
    values = {"key": unique("ck_live"), "token": unique("pp_prov")}
    confirma_conn_env(
        "confirma_default",
        json.dumps(
            {
                "conn_type": "confirma",
                "password": values["key"],
                "extra": {"environment": "staging", "partner_provisioning_token": values["token"]},
            }
        ),
    )
    return values


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# -- item 5: endpoints that return secrets, secret-looking keys, the masker -------------------------------
def test_the_secret_returning_endpoints_are_marked_once() -> None:
    assert {Endpoint.RENEW, Endpoint.CREATE_CLIENT} == SECRET_RETURNING
    assert [e for e in Endpoint if e.returns_secrets] == [Endpoint.RENEW, Endpoint.CREATE_CLIENT]


@pytest.mark.parametrize(
    ("endpoint", "status", "content_type", "template"),
    [
        (Endpoint.RENEW, 200, "text/plain", "{secret}"),
        (Endpoint.RENEW, 200, "application/json", '{{"Message": "{secret}'),  # truncated JSON
        (Endpoint.CREATE_CLIENT, 201, "application/json", '{{"clientId": "c-9", "firstToken": "{secret}"'),
        (Endpoint.CREATE_CLIENT, 200, "text/html", "<p>client created, key {secret}</p>"),
        (Endpoint.RENEW, 400, "application/json", '{{"error": "cannot renew", "Message": "{secret}"}}'),
        (Endpoint.CREATE_CLIENT, 500, "text/plain", "failed after issuing {secret}"),
    ],
    ids=["renew-text-plain", "renew-truncated-json", "client-truncated-json", "client-html", "renew-400", "client-500"],
)
def test_bodies_of_secret_returning_endpoints_are_never_quoted(
    keys, api, endpoint: Endpoint, status: int, content_type: str, template: str
) -> None:
    secret = unique("ck_fresh")
    api.add(
        endpoint.method,
        BASE + endpoint.path,
        body=template.format(secret=secret),
        status=status,
        content_type=content_type,
    )
    hook = ConfirmaHook(retry_policy=ONE_TRY)
    with pytest.raises(ConfirmaAPIError) as info:
        hook.renew_token() if endpoint is Endpoint.RENEW else hook.create_client({"client": {"name": "Oy"}})
    assert secret not in error_texts(info.value)
    assert info.value.excerpt == WITHHELD_EXCERPT
    assert str(info.value).endswith(f"body: {WITHHELD_EXCERPT}")


@pytest.mark.parametrize(
    "template",
    [
        '{{"error": "denied", "apiKey": "{v}"}}',
        '{{"access_token":"{v}","error":"denied"}}',
        '{{"error": "denied", "Password": "{v}"}}',
        '{{"error": "denied", "provisioningToken": "{v}',  # cut off
        '{{"error": "denied", "detail": "{{\\"clientSecret\\": \\"{v}\\"}}"}}',  # JSON inside a string
        '{{"error": "denied", "credentials": ["{v}"]}}',
        "denied: api_key={v}&retry=1",
        "denied\nX-Api-Key: {v}\n",
        "denied; Authorization: Bearer {v}",
    ],
    ids=[
        "apiKey",
        "access_token",
        "Password",
        "cut-provisioningToken",
        "nested-clientSecret",
        "credentials",
        "query-api_key",
        "header-X-Api-Key",
        "bearer",
    ],
)
def test_excerpts_redact_values_under_secret_looking_keys(keys, api, template: str) -> None:
    value = unique("tok")
    api.add(
        responses.GET,
        BASE + Endpoint.PAYMENTS.path,
        body=template.format(v=value),
        status=403,
        content_type="application/json",
    )
    with pytest.raises(ConfirmaAPIError) as info:
        ConfirmaHook(retry_policy=ONE_TRY).get_payments()
    assert value not in error_texts(info.value)
    assert "denied" in info.value.excerpt and "***" in info.value.excerpt


def test_an_unreadable_2xx_excerpt_is_redacted_too(keys, api) -> None:
    value = unique("tok")
    api.add(
        responses.GET,
        BASE + Endpoint.CASE_DETAILS.path,
        body=f"session token={value} ok",
        status=200,
        content_type="text/plain",
    )
    with pytest.raises(ConfirmaResponseError) as info:
        ConfirmaHook(retry_policy=ONE_TRY).get_case_details({"caseId": 1})
    assert value not in error_texts(info.value)
    assert info.value.excerpt == "session token=*** ok"


def test_renewed_token_is_masked_before_it_is_returned(keys, api) -> None:
    token = unique("ck_renewed")
    api.add(responses.GET, BASE + Endpoint.RENEW.path, json={"Message": token})
    assert not masked(token)
    assert ConfirmaHook(retry_policy=ONE_TRY).renew_token() == {"Message": token}
    assert masked(token)


def test_a_new_clients_secrets_are_masked_before_they_are_returned(keys, api) -> None:
    api_key, access, code = unique("ck_client"), unique("at_client"), unique("CUSTCODE")
    body = {"clientId": "c-77", "customerCode": code, "apiKey": api_key, "auth": [{"accessToken": access}]}
    api.add(responses.POST, BASE + Endpoint.CREATE_CLIENT.path, json=body, status=201)
    assert ConfirmaHook(retry_policy=ONE_TRY).create_client({"client": {"name": "Oy"}}) == body
    assert masked(api_key) and masked(access)
    assert not masked(code)  # what is not a secret stays readable in logs


def test_a_bare_string_answer_of_create_client_is_masked(keys, api) -> None:
    new_key = unique("ck_bare")
    api.add(responses.POST, BASE + Endpoint.CREATE_CLIENT.path, json=new_key, status=201)
    assert ConfirmaHook(retry_policy=ONE_TRY).create_client({"client": {"name": "Oy"}}) == new_key
    assert masked(new_key)


# -- item 6: every form of the key, host user info, masking what is sent -------------------------------
KEY = "ck live/Ab+cD=9/x~z_{}"


def _lower_hex(text: str) -> str:
    import re

    return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)


FORMS = {
    "raw": lambda k: k,
    "json-slash": lambda k: json.dumps(k)[1:-1].replace("/", "\\/"),
    "json-u-slash": lambda k: k.replace("/", "\\u002F"),
    "json-u-all-lower": lambda k: "".join(f"\\u{ord(c):04x}" for c in k),
    "json-u-all-upper": lambda k: "".join(f"\\u{ord(c):04X}" for c in k),
    "quote": lambda k: quote(k, safe=""),
    "quote-lower-hex": lambda k: _lower_hex(quote(k, safe="")),
    "quote-keep-slash": lambda k: quote(k),
    "quote_plus": lambda k: quote_plus(k),
    "quote_plus-lower-hex": lambda k: _lower_hex(quote_plus(k)),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_every_encoding_of_the_key_is_redacted(confirma_conn_env, api, form: str, content_type: str) -> None:
    key = KEY.format(uuid.uuid4().hex[:8])
    confirma_conn_env(
        "confirma_default", json.dumps({"conn_type": "confirma", "password": key, "extra": {"environment": "staging"}})
    )
    echoed = FORMS[form](key)
    api.add(
        responses.GET,
        BASE + Endpoint.PAYMENTS.path,
        status=401,
        content_type=content_type,
        body=f'{{"error": "bad key", "echo": "{echoed}"}}',
    )
    with pytest.raises(ConfirmaAPIError) as info:
        ConfirmaHook(retry_policy=ONE_TRY).get_payments()
    text = error_texts(info.value)
    assert echoed not in text and key not in text
    assert "bad key" in info.value.excerpt


def test_a_key_cut_by_the_excerpt_window_never_shows_in_part(confirma_conn_env, api) -> None:
    """Only the head of a large body is redacted and cut; a key across the head's end is dropped."""
    key = unique("ck_window")
    confirma_conn_env(
        "confirma_default", json.dumps({"conn_type": "confirma", "password": key, "extra": {"environment": "staging"}})
    )
    window = 16 * BODY_EXCERPT_CHARS + 12 * len(key)
    for offset in range(1, len(key), 7):  # whitespace collapses: the key's head would move into view
        body = "error " + " " * (window - 6 - offset) + key + "x" * 100_000
        api.upsert(responses.GET, BASE + Endpoint.PAYMENTS.path, body=body, status=500)
        with pytest.raises(ConfirmaAPIError) as info:
            ConfirmaHook(retry_policy=ONE_TRY).get_payments()
        assert key[:offset] not in info.value.excerpt and info.value.excerpt.startswith("error")


@pytest.mark.parametrize(
    "host",
    [
        "https://alice:hunter2pw@api.example.com",
        "alice:hunter2pw@api.example.com",
        "https://alice:hun/ter2pw@api.example.com",  # the '/' ends the authority early: an "invalid port"
        "https://hunter2pw@api.example.com/api/v1/partner",
        "http://alice:hunter2pw@127.0.0.1:8080",
    ],
)
def test_host_user_info_is_refused_without_echoing_it(confirma_conn_env, host: str) -> None:
    confirma_conn_env("confirma_default", json.dumps({"conn_type": "confirma", "host": host, "password": "ck_x_12345"}))
    with pytest.raises(ConfirmaConfigError) as info:
        ConfirmaHook().settings  # noqa: B018
    assert "hunter2pw" not in error_texts(info.value) and "alice" not in str(info.value)
    assert "must not contain user info" in str(info.value)
    ok, message = ConfirmaHook().test_connection()  # what the UI shows
    assert not ok and "hunter2pw" not in message and "user info" in message


def test_a_secret_in_a_bad_host_query_is_not_echoed(confirma_conn_env) -> None:
    host = "https://api.example.com:abc/confirma?api_key=hunter2pw"
    confirma_conn_env("confirma_default", json.dumps({"conn_type": "confirma", "host": host, "password": "ck_x_12345"}))
    with pytest.raises(ConfirmaConfigError, match="has an invalid port") as info:
        ConfirmaHook().settings  # noqa: B018
    assert "hunter2pw" not in str(info.value) and "api_key=***" in str(info.value)


def padded_conn(confirma_conn_env) -> tuple[str, str]:
    key, token = unique("ck_padded"), unique("pp_padded")
    confirma_conn_env(
        "confirma_default",
        json.dumps(
            {
                "conn_type": "confirma",
                "password": f"  {key}\t\n",
                "extra": {"environment": "staging", "partner_provisioning_token": f" {token} "},
            }
        ),
    )
    return key, token


def test_the_masker_gets_the_key_and_token_as_sent(confirma_conn_env, api) -> None:
    key, token = padded_conn(confirma_conn_env)
    api.add(responses.POST, BASE + Endpoint.CREATE_CLIENT.path, json={"clientId": "c-1"}, status=201)
    hook = ConfirmaHook(retry_policy=ONE_TRY)
    assert hook.settings.secrets == (key, token)
    hook.create_client({"client": {"name": "Oy"}})
    assert api.calls[0].request.headers["X-Api-Key"] == token  # what is sent is what is masked
    assert masked(key) and masked(token)


async def test_async_settings_mask_the_sent_key_without_a_blocking_call(confirma_conn_env, monkeypatch) -> None:
    key, token = padded_conn(confirma_conn_env)

    from airflow_provider_confirma import compat

    real = compat.mask_secret

    def off_the_loop(*args: Any, **kwargs: Any) -> None:  # before Airflow 3.3.2: in a worker thread
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return real(*args, **kwargs)
        raise AssertionError("sync mask_secret on the event loop")

    monkeypatch.setattr("airflow.sdk.log.mask_secret", off_the_loop)
    monkeypatch.setattr(compat, "mask_secret", off_the_loop)
    settings = await ConfirmaHook().aget_settings()
    assert settings.secrets == (key, token)
    assert masked(key) and masked(token)


def test_tracebacks_that_show_locals_show_no_secret(confirma_conn_env, api) -> None:
    """Airflow 3.0 renders a task's exception on the console with rich, locals included, after the
    masker ran: the key (also a long one, which rich cuts) and token show as ``'***'`` there."""
    import io

    import structlog

    key, token = padded_conn(confirma_conn_env)
    api.add(responses.POST, BASE + Endpoint.CREATE_CLIENT.path, json={"message": "no"}, status=401)
    hook = ConfirmaHook(retry_policy=ONE_TRY)
    with pytest.raises(ConfirmaAPIError) as failed:
        hook.create_client({"client": {"name": "Oy"}})
    out = io.StringIO()
    structlog.dev.RichTracebackFormatter(max_frames=50)(
        out, (failed.type, failed.value, failed.tb.tb_next)
    )  # not this frame
    shown = out.getvalue()
    assert "X-Api-Key" in shown and "'***'" in shown  # the headers are among the locals shown
    assert key not in shown and token not in shown
    assert api.calls[0].request.headers["X-Api-Key"] == token  # sent as itself
    long_key = SecretText("ck_" + "k" * 200)  # rich shows a long string through a slice of it
    assert repr(long_key) == "'***'" and repr(long_key[:80]) == "'***'" and long_key == "ck_" + "k" * 200


# -- item 10: one strict Retry-After parser -------------------------------------------------------------
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("²", None),  # str.isdigit() is True, float() fails: crashed the sync path
        ("١٢", None),  # Arabic-Indic digits: isdigit() and float() accept them; RFC 9110 does not
        ("\udcb2", None),  # how aiohttp decodes a raw 0xB2 byte
        ("Â²", None),
        ("1.5", None),
        ("-1", None),
        ("+3", None),
        ("1e3", None),
        ("", None),
        (None, None),
        ("soon", None),
        ("Mon, 99 Foo 2026 25:61:61 GMT", None),
        ("Fri, 01 Jan 99999 00:00:00 GMT", None),
        (format_datetime(datetime.fromtimestamp(NOW, timezone.utc) + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW, timezone.utc) - timedelta(days=1), usegmt=True), 0.0),
    ],
)
def test_retry_after_parser_is_strict_and_never_raises(value: Any, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


class RawServer:
    """Loopback HTTP/1.1 server writing scripted raw responses (header bytes as given), one a connection."""

    def __init__(self, *responses_: bytes) -> None:
        self.script = list(responses_)
        self.requests = 0
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                with lock:
                    server.requests += 1
                    reply = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                self.request.sendall(reply)
                self.request.shutdown(socket.SHUT_WR)

        lock = threading.Lock()
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.thread = threading.Thread(target=self.tcp.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.tcp.server_address[1]}"

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()
        self.thread.join(5)


def raw_reply(status: str, body: bytes, *headers: bytes) -> bytes:
    lines = [
        f"HTTP/1.1 {status}".encode(),
        b"Content-Type: application/json",
        b"Connection: close",
        f"Content-Length: {len(body)}".encode(),
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.mark.parametrize(
    "header",
    [b"\xb2", "²".encode(), "١٢".encode(), b"1.5", b"-1", b"soon", b"1"],
    ids=["latin1-superscript-2", "utf8-superscript-2", "arabic-indic-12", "fraction", "negative", "word", "valid"],
)
@pytest.mark.parametrize("transport", ["requests", "aiohttp"])
async def test_odd_retry_after_means_normal_backoff_on_both_transports(
    confirma_conn_env, transport: str, header: bytes
) -> None:
    ok = {"isValid": True, "message": "ok"}
    server = RawServer(
        raw_reply("503 Service Unavailable", b'{"message": "busy"}', b"Retry-After: " + header),
        raw_reply("200 OK", json.dumps(ok).encode()),
    )
    try:
        confirma_conn_env(
            "confirma_default",
            json.dumps({"conn_type": "confirma", "host": server.base, "password": "ck_retry_after_1"}),
        )
        hook = ConfirmaHook(retry_policy=policy(3))
        if transport == "requests":
            import asyncio

            body = await asyncio.to_thread(hook.validate_token)
        else:
            body = await hook.arequest(Endpoint.VALIDATE)
        assert body == ok
        assert server.requests == 2
    finally:
        server.close()


# -- item 13: wrong-shape and deep JSON through the operators -------------------------------------------
def execute(op: Any) -> Any:
    return op.execute({})


def distribution_op() -> ConfirmaGetDistributionInfoOperator:
    return ConfirmaGetDistributionInfoOperator(task_id="dist", http_retry_policy=ONE_TRY)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metaData": [1]}, "metaData should be an object, got array"),
        ({"metaData": "all fine"}, "metaData should be an object, got string"),
        ({"metaData": {"totalCount": {"n": 3}}}, "metaData.totalCount should be an integer, got object"),
        ({"metaData": {"failedCount": "2"}}, "metaData.failedCount should be an integer, got string"),
        ([{"metaData": {}}], "the body should be an object, got array"),
    ],
)
def test_distribution_info_of_the_wrong_shape_names_the_field(keys, api, body: Any, field: str) -> None:
    api.add(responses.GET, BASE + Endpoint.DISTRIBUTION_INFO.path, json=body)
    with pytest.raises(ConfirmaResponseError) as info:
        execute(distribution_op())
    assert "GET /invoice/distribution" in str(info.value)
    assert field in str(info.value)


def test_distribution_info_of_the_documented_shape_still_reads(keys, api) -> None:
    body = {"metaData": {"totalCount": 2, "successfulCount": 1, "failedCount": None}, "data": []}
    api.add(responses.GET, BASE + Endpoint.DISTRIBUTION_INFO.path, json=body)
    assert execute(distribution_op())["summary"]["totalCount"] == 2


@pytest.mark.parametrize(
    ("op", "endpoint", "body", "field"),
    [
        (
            lambda: ConfirmaGetCaseDetailsOperator(task_id="case", case_id=5),
            Endpoint.CASE_DETAILS,
            [1, 2],
            "the body should be an object, got array",
        ),
        (
            lambda: ConfirmaGetPaymentsOperator(task_id="pay"),
            Endpoint.PAYMENTS,
            [{"amount": 1}, None],
            "[1] should be an object, got null",
        ),
        (
            lambda: ConfirmaGetPaymentsOperator(task_id="pay"),
            Endpoint.PAYMENTS,
            {"payments": []},
            "the body should be a JSON array, got object",
        ),
        (
            lambda: ConfirmaGetSettlementsOperator(task_id="set"),
            Endpoint.SETTLEMENTS,
            {"settlements": [{"settlementAmount": 1, "currency": "EUR"}, [3]]},
            "settlements[1] should be an object, got array",
        ),
    ],
    ids=["case-list", "payments-null-record", "payments-object", "settlements-list-record"],
)
def test_readers_name_the_wrong_shaped_field(keys, api, op: Any, endpoint: Endpoint, body: Any, field: str) -> None:
    api.add(responses.GET, BASE + endpoint.path, json=body)
    with pytest.raises(ConfirmaResponseError) as info:
        execute(op())
    assert endpoint.value in str(info.value) and field in str(info.value)


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


DEEP = {
    "arrays-100000": "[" * 100_000 + "]" * 100_000,
    "objects-500": nested(500),
    "mixed-65": '{"a":[' * 32 + "{}" + "]}" * 32,
}


@pytest.mark.parametrize("body", list(DEEP))
@pytest.mark.parametrize(
    ("make", "endpoint"),
    [
        (lambda: ConfirmaGetCaseDetailsOperator(task_id="case", case_id=5), Endpoint.CASE_DETAILS),
        (lambda: ConfirmaGetPaymentsOperator(task_id="pay"), Endpoint.PAYMENTS),
        (lambda: ConfirmaGetDistributionInfoOperator(task_id="dist"), Endpoint.DISTRIBUTION_INFO),
        (
            lambda: ConfirmaCreateInvoiceOperator(task_id="inv", invoice=json.loads(json.dumps(INVOICE))),
            Endpoint.CREATE_INVOICE,
        ),
    ],
    ids=["case", "payments", "distribution", "create-invoice"],
)
def test_deeply_nested_bodies_are_refused_by_the_decoder(keys, api, make: Any, endpoint: Endpoint, body: str) -> None:
    api.add(endpoint.method, BASE + endpoint.path, body=DEEP[body], content_type="application/json")
    with pytest.raises(Exception) as info:
        execute(make())
    error = info.value
    if endpoint.method == "POST":  # an unreadable 2xx to a submission: it may have been stored
        assert isinstance(error, ConfirmaSubmissionUncertainError)
        error = error.__cause__
    assert isinstance(error, ConfirmaResponseError)
    assert f"{endpoint.value} returned HTTP 200: JSON nested deeper than 64 levels; refused" in str(error)


def test_nesting_up_to_the_limit_still_reads(keys, api) -> None:
    api.add(responses.GET, BASE + Endpoint.CASE_DETAILS.path, body=nested(63), content_type="application/json")
    data = execute(ConfirmaGetCaseDetailsOperator(task_id="case", case_id=5))["data"]
    for _ in range(63):
        data = data["a"]
    assert data == 1


@pytest.mark.parametrize("text", ['[{\\"[\\', "]]]]}}", '\\"' * 70 + "[" * 70, "ä[ö{"])
def test_depth_counts_structure_not_brackets_inside_strings(text: str) -> None:
    from airflow_provider_confirma.json_codec import JSONTooDeepError, decode_json

    at_limit = '{"a":[' * 32 + json.dumps(text) + "]}" * 32  # 64 levels, brackets and escapes in a string
    assert decode_json(at_limit.encode()) == decode_json(at_limit)
    with pytest.raises(JSONTooDeepError):
        decode_json(f"[{at_limit}]")
    assert decode_json(json.dumps([text] * 3, ensure_ascii=False).encode()) == [text] * 3


async def test_deep_bodies_are_refused_on_the_async_path_too(keys) -> None:
    with aioresponses() as mock:
        body = "[" * 5000 + "]" * 5000  # aioresponses cannot feed 200 kB
        mock.get(BASE + Endpoint.PAYMENT_SYNC_STATUS.path, body=body, content_type="application/json")
        with pytest.raises(ConfirmaResponseError, match="JSON nested deeper than 64 levels"):
            await ConfirmaHook(retry_policy=ONE_TRY).aget_payment_sync_status()


def test_to_xcom_safe_refuses_runaway_nesting_naming_the_path() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(TypeError, match=r"nested deeper than 100 levels"):
        to_xcom_safe(value)
