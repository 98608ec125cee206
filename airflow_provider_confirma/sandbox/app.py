"""The sandbox's HTTP face: an ASGI app with every documented endpoint under the API prefix,
admin endpoints under ``/_sandbox``, and a pure-ASGI middleware that checks the ``Host`` header
(DNS rebinding), counts requests, injects chaos and checks ``X-Api-Key`` (the API's keys for API
paths, the start key alone for admin paths).

Built on Starlette, the routing core of FastAPI (installed with it): importing FastAPI alone took
about 1 s of the CLI's 2 s start-up budget (``python -X importtime``), and its per-request
dependency resolution would buy nothing here: bodies are checked with the provider's own pydantic
models, the ones the operators check with before sending.

Paths come from :class:`~airflow_provider_confirma.endpoints.Endpoint`; payload rules from
:mod:`airflow_provider_confirma.payloads`; state and behaviour from :class:`.state.SandboxState`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.json_codec import decode_json, encode_json
from airflow_provider_confirma.payloads import (
    ClientRequest,
    InvoiceActionsRequest,
    LedgerRequest,
    PaymentsRequest,
    RequestModel,
    SalesInvoiceRequest,
    ValidationIssue,
    format_issues,
    payload_issues,
)
from airflow_provider_confirma.sandbox.admin import ADMIN_PREFIX
from airflow_provider_confirma.sandbox.state import SandboxState

#: the sync status endpoints and the state's list key they serve
STATUS_ENDPOINTS = {Endpoint.PAYMENT_SYNC_STATUS: "payments", Endpoint.LEDGER_SYNC_STATUS: "ledgers"}

JSON_TYPE = "application/json"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ConnectionAborter(Protocol):
    """Drops the TCP connection of a request without a response (see :mod:`.server`)."""

    def abort(self, client: Any) -> bool: ...


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode_json(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(status: int, message: str, **extra: Any) -> Response:
    return json_response({"message": message, **extra}, status)


# -- middleware ------------------------------------------------------------------------------------
_CHAOS_STATUS = {"error_500": 500, "error_502": 502, "error_503": 503, "rate_limit": 429}
_CHAOS_TEXT = {
    500: b'{"message":"Internal Server Error (sandbox chaos)"}',
    502: b'{"message":"Bad Gateway (sandbox chaos)"}',
    503: b'{"message":"Service Unavailable (sandbox chaos)"}',
    429: b'{"message":"Too Many Requests (sandbox chaos)"}',
}
_JSON = JSON_TYPE.encode()
_UNAUTHORIZED = b'{"message":"Unauthorized: missing or invalid X-Api-Key"}'
_ADMIN_UNAUTHORIZED = b'{"message":"Unauthorized: the sandbox admin API needs the sandbox\'s X-Api-Key"}'
_BAD_HOST = b'{"message":"Invalid Host header: this sandbox answers only to the address it is bound to"}'
_MALFORMED = b'{"payments": [{"sourceIdentifier": "truncated'
_HTML = b"<html><body><h1>Maintenance</h1><p>sandbox chaos: wrong content type</p></body></html>"


async def _send_simple(
    send: Send, status: int, body: bytes, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[bytes]:
    """The ``Host`` header values a sandbox bound to ``host:port`` answers (lower case, as bytes).

    The bound address, ``extra`` names, and for a loopback or wildcard bind the localhost forms, each
    with ``:port`` (bare too when the port is 80). Anything else is refused, so a web page whose
    DNS name is rebound to 127.0.0.1 cannot reach the sandbox from a browser.
    """
    names = {_host_name(host), *(_host_name(name) for name in extra)}
    try:
        address = ipaddress.ip_address(host.strip("[]"))
        local = address.is_loopback or address.is_unspecified
    except ValueError:
        local = host.lower() == "localhost"
    if local:
        names.update(_LOOPBACK_NAMES)
    out = set()
    for name in names:
        if ("]:" in name) if name.startswith("[") else (":" in name):  # a name given with its port
            out.add(name)
        else:
            out.add(f"{name}:{port}")
            if port == 80:
                out.add(name)
    return frozenset(value.encode("latin-1") for value in out)


def _host_name(name: str) -> str:
    """``name`` as it appears in a Host header: lower case, an IPv6 literal in brackets."""
    name = name.strip().lower()
    if name.count(":") > 1 and not name.startswith("["):
        return f"[{name}]"
    return name


class SandboxMiddleware:
    """Host check for every request; counting, chaos and authentication for API requests; the
    admin key for admin requests; unknown paths pass through.

    The sync status GETs are answered here from the state's cached bytes (no routing, no
    per-request serialization): they are what sensors and benchmarks hit hardest.
    """

    def __init__(
        self, app: ASGIApp, state: SandboxState, hosts: Collection[bytes], aborter: ConnectionAborter | None
    ) -> None:
        self.app = app
        self.state = state
        self.hosts = frozenset(hosts)
        self.aborter = aborter
        self.client_path = Endpoint.CREATE_CLIENT.full_path
        self.status_paths = {endpoint.full_path: kind for endpoint, kind in STATUS_ENDPOINTS.items()}

    async def _reset(self, scope: Scope, key: str) -> None:
        self.state.count_response(key, "reset")
        if self.aborter is None or not self.aborter.abort(scope.get("client")):
            raise ConnectionAbortedError("sandbox chaos: no transport to reset")  # uvicorn answers 500
        for _ in range(3):  # let the transport report the loss before the app returns
            await asyncio.sleep(0)

    async def _status(self, kind: str, scope: Scope, key: str, send: Send) -> int:
        """``GET /accounting/{payment,ledger}``: the cached body, or 204 when nothing is stored."""
        query = scope.get("query_string")
        if query:
            self.state.record_query(key, dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)))
        body = self.state.status_body(kind)
        if body is None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return 204
        await _send_simple(send, 200, body, _JSON)
        return 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        api_key = None
        host_ok = False
        for name, value in scope["headers"]:
            if name == b"host":
                if host_ok or value.lower() not in self.hosts:  # a second Host header is refused too
                    host_ok = False
                    break
                host_ok = True
            elif name == b"x-api-key" and api_key is None:
                api_key = value.decode("latin-1")
        if not host_ok:
            await _send_simple(send, 400, _BAD_HOST, _JSON)
            return
        if not path.startswith(API_PREFIX):
            if (path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")) and not self.state.admin_key_ok(api_key):
                await _send_simple(send, 401, _ADMIN_UNAUTHORIZED, _JSON)
                return
            await self.app(scope, receive, send)
            return
        state = self.state
        method: str = scope["method"]
        key = f"{method} {path}"
        state.count_request(key)

        decision = state.decide_chaos(method, path[len(API_PREFIX) :])
        if decision.latency:
            await asyncio.sleep(decision.latency)
        outcome = decision.outcome
        if outcome in _CHAOS_STATUS:
            status = _CHAOS_STATUS[outcome]
            extra = []
            if status in (429, 503):
                extra.append((b"retry-after", str(state.config.chaos.retry_after).encode()))
            state.count_response(key, status)
            await _send_simple(send, status, _CHAOS_TEXT[status], _JSON, extra)
            return
        if outcome == "reset":
            await self._reset(scope, key)
            return

        provisioning = method == "POST" and path == self.client_path
        if not state.key_ok(api_key, provisioning=provisioning):
            state.count_response(key, 401)
            await _send_simple(send, 401, _UNAUTHORIZED, _JSON)
            return

        kind = self.status_paths.get(path) if method == "GET" else None
        if outcome is None:
            if kind is not None:
                state.count_response(key, await self._status(kind, scope, key, send))
                return
            status_seen: list[int] = []

            async def counting_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_seen.append(message["status"])
                await send(message)

            await self.app(scope, receive, counting_send)
            state.count_response(key, status_seen[0] if status_seen else "none")
            return

        # the request is handled (a POST is stored), then its response is spoiled or dropped
        async def discard(message: Message) -> None:
            return None

        if kind is not None:
            await self._status(kind, scope, key, discard)
        else:
            await self.app(scope, receive, discard)
        if outcome == "reset_after_body":
            await self._reset(scope, key)
            return
        state.count_response(key, f"200 ({outcome})")
        if outcome == "malformed_json":
            await _send_simple(send, 200, _MALFORMED, _JSON)
        else:
            await _send_simple(send, 200, _HTML, b"text/html; charset=utf-8")


# -- request helpers -------------------------------------------------------------------------------
def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _not_json(request: Request) -> Response | None:
    """A 415 ``Response`` unless the request's ``Content-Type`` is JSON."""
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime != JSON_TYPE and not mime.endswith("+json"):
        return error_response(415, f"Content-Type must be {JSON_TYPE}, got {content_type or 'none'}")
    return None


async def _read_json(request: Request) -> Any:
    """The JSON body (fractions as ``Decimal``), or an error ``Response`` (415 / 400)."""
    refused = _not_json(request)
    if refused is not None:
        return refused
    raw = await request.body()
    try:
        return decode_json(raw)
    except ValueError as err:
        return error_response(400, f"malformed JSON body: {err}")


async def _read_valid_json(request: Request, model: type[RequestModel]) -> Any:
    """The JSON body if ``model`` finds no issue in it, else the error ``Response`` (415 / 400 / 422)."""
    body = await _read_json(request)
    if isinstance(body, Response):
        return body
    issues = payload_issues(model, body)
    return _invalid(issues) if issues else body


def _invalid(issues: list[ValidationIssue]) -> Response:
    return error_response(
        422,
        f"Validation failed: {format_issues(issues)}",
        errors=[issue.to_dict() for issue in issues],
    )


# -- the app ---------------------------------------------------------------------------------------
def create_app(state: SandboxState, hosts: Collection[bytes], aborter: ConnectionAborter | None = None) -> ASGIApp:
    """The sandbox ASGI app over ``state``, answering the ``Host`` values ``hosts`` (see
    :func:`allowed_hosts`); ``aborter`` enables connection-reset chaos."""
    routes: list[Route] = []

    # -- onboarding --
    async def validate_token(request: Request) -> Response:
        return json_response({"isValid": True, "message": "Token is valid"})

    async def renew_token(request: Request) -> Response:
        return json_response({"Message": state.renew()})

    async def create_client(request: Request) -> Response:
        body = await _read_valid_json(request, ClientRequest)
        if isinstance(body, Response):
            return body
        return json_response(state.create_client(body))

    # -- invoices --
    async def create_invoice(request: Request) -> Response:
        body = await _read_valid_json(request, SalesInvoiceRequest)
        if isinstance(body, Response):
            return body
        info, duplicate, rejected = state.submit_invoice(body)
        if rejected:
            return error_response(409, f"duplicate invoice number {info.number}", duplicates=[str(info.number)])
        return json_response(
            {
                "invoiceNumber": info.number,
                "caseId": info.case_id,
                "duplicate": duplicate,
                "message": "Invoice already received" if duplicate else "Invoice received",
            }
        )

    async def create_invoice_action(request: Request) -> Response:
        body = await _read_valid_json(request, InvoiceActionsRequest)
        if isinstance(body, Response):
            return body
        queued = state.submit_actions(body["actions"])
        return json_response({"message": f"{len(queued)} action(s) queued", "actions": queued})

    async def case_details(request: Request) -> Response:
        try:
            case = state.case(_query(request))
        except ValueError as err:
            return error_response(400, str(err))
        if case is None:
            return error_response(404, "case not found")
        return json_response(case)

    def query_reader(read: Callable[[dict[str, str]], Any]) -> Callable[[Request], Awaitable[Response]]:
        """A GET handler answering ``read(query)``; a query ``read`` refuses (ValueError) is a 400."""

        async def handler(request: Request) -> Response:
            try:
                return json_response(read(_query(request)))
            except ValueError as err:
                return error_response(400, str(err))

        return handler

    distribution_info = query_reader(state.distribution)
    # -- payments --
    payments = query_reader(state.payments)
    settlements = query_reader(state.settlements)

    # -- accounting --
    async def submit_ledger(request: Request) -> Response:
        body = await _read_valid_json(request, LedgerRequest)
        if isinstance(body, Response):
            return body
        return _submitted("ledgers", state.submit_ledger(body["ledgers"]))

    async def submit_payments(request: Request) -> Response:
        body = await _read_valid_json(request, PaymentsRequest)
        if isinstance(body, Response):
            return body
        return _submitted("payments", state.submit_payments(body["payments"]))

    handlers: dict[Endpoint, Callable[[Request], Awaitable[Response]]] = {
        Endpoint.VALIDATE: validate_token,
        Endpoint.RENEW: renew_token,
        Endpoint.CREATE_CLIENT: create_client,
        Endpoint.CREATE_INVOICE: create_invoice,
        Endpoint.CREATE_INVOICE_ACTION: create_invoice_action,
        Endpoint.CASE_DETAILS: case_details,
        Endpoint.DISTRIBUTION_INFO: distribution_info,
        Endpoint.PAYMENTS: payments,
        Endpoint.SETTLEMENTS: settlements,
        Endpoint.SUBMIT_LEDGER: submit_ledger,
        Endpoint.SUBMIT_PAYMENTS: submit_payments,
    }
    missing = set(Endpoint) - set(handlers) - set(STATUS_ENDPOINTS)  # status GETs: served by the middleware
    if missing:  # pragma: no cover - guards additions to Endpoint
        raise RuntimeError(f"sandbox has no handler for {sorted(e.value for e in missing)}")
    for endpoint, handler in handlers.items():
        routes.append(Route(endpoint.full_path, handler, methods=[endpoint.method], name=endpoint.name))
    routes.extend(_admin_routes(state))
    return SandboxMiddleware(Starlette(routes=routes), state, hosts, aborter)


def _submitted(kind: str, result: Any) -> Response:
    if result.rejected:
        return error_response(
            409, f"duplicate {kind} identifier(s): {', '.join(result.duplicates)}", duplicates=result.duplicates
        )
    return json_response(
        {
            "message": f"{len(result.accepted)} {kind.rstrip('s')} record(s) queued",
            "accepted": result.accepted,
            "duplicates": result.duplicates,
        }
    )


#: admin methods that take a body: JSON only, so a cross-site form or ``text/plain`` POST is refused
_ADMIN_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _admin_routes(state: SandboxState) -> list[Route]:
    """The ``/_sandbox`` endpoints (the middleware has checked the admin key)."""

    async def admin_body(request: Request) -> Any:
        if request.method not in _ADMIN_BODY_METHODS:
            return {}
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as err:
            raise ValueError(f"malformed JSON body: {err}") from None

    def guarded(fn: Callable[[Any], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            if request.method in _ADMIN_BODY_METHODS:
                refused = _not_json(request)
                if refused is not None:
                    return refused
            try:
                return json_response(fn(await admin_body(request)))
            except (ValueError, TypeError) as err:
                return error_response(400, str(err))

        return route

    routes: list[tuple[str, list[str], Callable[[Any], Any]]] = [
        ("/health", ["GET"], lambda _: {"status": "ok"}),
        ("/stats", ["GET"], lambda _: state.stats()),
        ("/records", ["GET"], lambda _: state.records()),
        ("/config", ["GET"], lambda _: state.config.public_dict()),
        ("/config", ["PUT", "POST", "PATCH"], lambda body: state.configure(body).public_dict()),
        ("/chaos", ["GET"], lambda _: state.config.chaos.to_dict()),
        ("/chaos", ["PUT", "POST"], lambda body: state.set_chaos(body).to_dict()),
        ("/chaos", ["DELETE"], lambda _: state.set_chaos(None).to_dict()),
        ("/sync", ["POST"], lambda _: {"settled": state.settle_all()}),
        ("/reset", ["POST"], lambda body: _reset(state, body)),
    ]
    return [Route(ADMIN_PREFIX + path, guarded(fn), methods=methods) for path, methods, fn in routes]


def _reset(state: SandboxState, body: Any) -> dict[str, Any]:
    keep = bool(body.get("keep_config")) if isinstance(body, dict) else False
    state.reset(restore_config=not keep)
    return {"reset": True, "config": state.config.public_dict()}
