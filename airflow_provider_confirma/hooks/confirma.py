"""``ConfirmaHook``: every Confirma partner API call, sync (requests) and async (aiohttp), under the
policy of :mod:`.http_policy`; errors never carry the key."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook, conf
from tenacity import AsyncRetrying, RetryCallState, Retrying

from airflow_provider_confirma import compat
from airflow_provider_confirma.arguments import DEFAULT_CONN_ID, check_count, check_timeout
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import (
    ConfirmaConfigError,
    ConfirmaError,
    ConfirmaResponseError,
    ConfirmaTransportError,
    is_secret_key,
    redact_text,
)
from airflow_provider_confirma.hooks.connection import CONN_TYPE, ConfirmaConnectionSettings, proxy_for
from airflow_provider_confirma.hooks.http_policy import (
    MAX_RESPONSE_BYTES_OPTION,
    RetryPolicy,
    clean_params,
    encode_json,
    interpret_response,
    is_retryable,
    response_limit,
    response_too_large,
)
from airflow_provider_confirma.models import (
    LedgerSyncRecord,
    PaymentSyncRecord,
    StatusIndex,
    index_sync_records,
    parse_sync_records,
)

if TYPE_CHECKING:
    import aiohttp
    import requests

    from airflow_provider_confirma.hooks.sync_transport import Attempt

log = logging.getLogger(__name__)

USER_AGENT = "airflow-provider-confirma"
#: The retry bounds of a hook given none (GETs up to 5 attempts within 60 s).
DEFAULT_RETRY_POLICY = RetryPolicy()
#: A connection test answers a person in the UI: two attempts within 5 seconds.
TEST_CONNECTION_RETRY_POLICY = RetryPolicy(max_attempts=2, max_total_seconds=5.0, backoff_max=1.0)
#: the most seconds an attempt spends connecting, on both transports
CONNECT_TIMEOUT = 10.0

CONFIG_SECTION = "confirma"
MAX_CONCURRENT_REQUESTS_OPTION = "max_concurrent_requests"
DEFAULT_MAX_CONCURRENT_REQUESTS = 16
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def _config_count(option: str, default: int, minimum: int) -> int:
    """The integer ``[confirma] <option>`` (``default`` when unset), else an error naming it."""
    raw = conf.get(CONFIG_SECTION, option, fallback=None)
    text = "" if raw is None else str(raw).strip()
    if not text:
        return default
    value = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else raw  # else the error shows what was given
    return check_count(value, f"[{CONFIG_SECTION}] {option}", minimum)


def max_concurrent_requests() -> int:
    """``[confirma] max_concurrent_requests``: requests in flight at once on a loop's shared session
    (keeps a triggerer's memory flat when all polls due after a stall start at once; others wait)."""
    return _config_count(MAX_CONCURRENT_REQUESTS_OPTION, DEFAULT_MAX_CONCURRENT_REQUESTS, 1)


def max_response_bytes() -> int:
    """``[confirma] max_response_bytes``: the most of one JSON response read (default 64 MiB)."""
    return _config_count(MAX_RESPONSE_BYTES_OPTION, DEFAULT_MAX_RESPONSE_BYTES, 1024)


def _log_retry(retry_state: RetryCallState, method: str, path: str) -> None:
    log.warning(
        "Confirma %s %s attempt %d failed (%s); retrying in %.2fs",
        method,
        path,
        retry_state.attempt_number,
        retry_state.outcome.exception() if retry_state.outcome else None,
        retry_state.upcoming_sleep,
    )


def _bounded(body: bytes, limit: int, whole: bool, method: str, path: str, status: int) -> bytes:
    """A body read to ``limit + 1`` bytes: past ``limit`` an error if it was needed whole, else cut."""
    if len(body) <= limit:
        return body
    if whole:
        raise response_too_large(method, path, status, limit)
    return body[:limit]


def _read_requests_body(resp: requests.Response, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of a streamed requests response, 64 KiB a read (one read of it all
    would allocate the whole limit for a body of unknown length)."""
    body = bytearray()
    for chunk in resp.iter_content(min(64 * 1024, limit + 1)):
        body += chunk
        if len(body) > limit:
            break
    return bytes(body)


def _requests_transport_error(
    method: str, path: str, exc: requests.RequestException, attempt: Attempt
) -> ConfirmaTransportError:
    """A requests failure by where it happened: ``connect`` only when provably never sent (``attempt``
    wrote no byte; with no connection reached, as under a mocked transport: it failed opening one)."""
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if attempt.reached:
        never_sent = not attempt.written
    else:
        never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or isinstance(reason, NewConnectionError)
    if never_sent:
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            detail = "connect timeout"
        elif isinstance(exc, requests.exceptions.SSLError):
            detail = "TLS handshake failed"
        elif isinstance(exc, requests.exceptions.ProxyError):
            detail = "the proxy refused or failed the connection"
        else:
            detail = "connection refused or unreachable"
        return ConfirmaTransportError(method, path, "connect", detail)
    if isinstance(exc, requests.exceptions.Timeout) or isinstance(reason, ReadTimeoutError):
        return ConfirmaTransportError(method, path, "timeout", "read timeout")
    if isinstance(exc, requests.exceptions.SSLError):  # after a write: the server may have read it all
        return ConfirmaTransportError(method, path, "tls", "TLS error after the request was sent")
    return ConfirmaTransportError(method, path, "reset", "connection closed before a complete response")


def _requests_verify(verify: bool | str) -> bool | str:
    """The connection's CA bundle, else the one requests would take from the environment (the session
    reads none itself), else its default store; given per request, so no setting replaces a bundle."""
    if verify is not True:
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


@functools.lru_cache
def _ca_context(cafile: str) -> ssl.SSLContext:
    """An aiohttp TLS context for a CA bundle, built once (building one takes milliseconds)."""
    return ssl.create_default_context(cafile=cafile)


def _connection_type() -> dict[str, Any]:
    from airflow_provider_confirma.get_provider_info import get_provider_info

    return next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == CONN_TYPE)


def returned_secrets(body: Any, every_string: bool = False) -> list[str]:
    """The strings of a decoded response under secret-looking keys or under no key, or every string."""
    found: list[str] = []
    stack: list[tuple[Any, Any]] = [(None, body)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, Mapping):
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((key, item) for item in value)
        elif isinstance(value, str) and value and (every_string or key is None or is_secret_key(key)):
            found.append(value)
    return found


class ConfirmaHook(BaseHook):
    """Client of the Confirma Finance partner API (``confirma`` connection type).

    :param confirma_conn_id: the Airflow connection of the API key and environment or host.
    :param timeout: per-request timeout in seconds; defaults to the connection's ``timeout``.
    :param retry_policy: retry bounds; the default retries GETs up to 5 times within 60 s.
    """

    conn_name_attr = "confirma_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Confirma Finance"

    # The connection form on Airflow 3.0 and 3.1, from the provider metadata (3.2+ read it themselves).
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The metadata's ``conn-fields`` as WTForms fields (all text: none is an integer)."""
        from wtforms import PasswordField, StringField
        from wtforms.validators import Optional, any_of

        fields: dict[str, Any] = {}
        for name, spec in _connection_type()["conn-fields"].items():
            schema = spec.get("schema", {})
            field_class = PasswordField if schema.get("format") == "password" else StringField
            default = schema.get("default")
            fields[name] = field_class(
                spec.get("label", name),
                validators=[any_of(schema["enum"])] if "enum" in schema else [Optional()],
                description=spec.get("description", ""),
                default=None if default is None else str(default),  # a number as text: 2.5 s is allowed
            )
        return fields

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The metadata's ``ui-field-behaviour``: hidden, relabelled and placeholder fields."""
        behaviour = _connection_type()["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour.get("hidden-fields", [])),
            "relabeling": dict(behaviour.get("relabeling", {})),
            "placeholders": dict(behaviour.get("placeholders", {})),
        }

    def __init__(
        self,
        confirma_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        retry_policy: RetryPolicy | None = None,
        logger_name: str | None = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.confirma_conn_id = confirma_conn_id
        self.timeout = check_timeout(timeout)
        self.retry_policy = retry_policy or DEFAULT_RETRY_POLICY
        self._settings: ConfirmaConnectionSettings | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(confirma_conn_id={self.confirma_conn_id!r})"

    # -- connection ---------------------------------------------------------------------------
    @property
    def settings(self) -> ConfirmaConnectionSettings:
        """The validated connection, read once per hook; its secrets go to Airflow's log masker."""
        if self._settings is None:
            settings = ConfirmaConnectionSettings.from_connection(self.get_connection(self.confirma_conn_id))
            for secret in settings.secrets:
                compat.mask_secret(secret)
            self._settings = settings
        return self._settings

    async def aget_settings(self) -> ConfirmaConnectionSettings:
        """:attr:`settings` without blocking the event loop: through Airflow 3.3.2's async secrets API,
        or on older Airflow through :attr:`settings` in a worker thread."""
        if self._settings is not None:
            return self._settings
        if not compat.has_async_secrets_api():
            from asgiref.sync import sync_to_async

            return await sync_to_async(lambda: self.settings)()
        conn = await self.aget_connection(self.confirma_conn_id)
        settings = ConfirmaConnectionSettings.from_connection(conn, extra=await conn.aextra_dejson())
        for secret in settings.secrets:
            await compat.amask_secret(secret)
        self._settings = settings
        return settings

    def _headers(self, settings: ConfirmaConnectionSettings, use_provisioning_token: bool) -> dict[str, str]:
        key = settings.api_key
        if use_provisioning_token:
            if not settings.provisioning_token:
                raise ConfirmaConfigError(
                    f"Confirma connection '{settings.conn_id}': extra 'partner_provisioning_token' is "
                    "required to create clients"
                )
            key = settings.provisioning_token
        return {"X-Api-Key": key, "Accept": "application/json", "User-Agent": USER_AGENT}

    def _timeout(self, settings: ConfirmaConnectionSettings) -> float:
        return self.timeout if self.timeout is not None else settings.timeout

    def longest_read_seconds(self) -> float | None:
        """The most one :meth:`arequest` lasts (retry budget plus one attempt), ``None`` before the connection."""
        if self._settings is None:
            return None
        return self.retry_policy.max_total_seconds + self._timeout(self._settings)

    # -- sync ---------------------------------------------------------------------------------
    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook; it reads nothing from the environment (see :func:`proxy_for`)."""
        import requests  # lazy: DAG files import the operators and sensors, not the transport

        from airflow_provider_confirma.hooks.sync_transport import MarkingAdapter

        session = requests.Session()
        session.trust_env = False
        session.verify = self.settings.verify
        for prefix in ("https://", "http://"):
            session.mount(prefix, MarkingAdapter())
        return session

    @cached_property
    def _max_bytes(self) -> int:
        # Stays (docs/benchmarks.md): a config read per request cost 1.29x the CPU per poll.
        return max_response_bytes()

    def get_conn(self) -> requests.Session:
        return self.session

    def request(
        self,
        endpoint: Endpoint,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        use_provisioning_token: bool = False,
        deadline: float | None = None,
    ) -> Any:
        """Call ``endpoint`` and return its decoded JSON (``None`` for 204 / empty); a failed POST is
        retried only when no byte of it was written (:mod:`.sync_transport`).

        :param deadline: a ``time.monotonic()`` instant the call ends by, retries and their sleeps included.
        """
        import requests

        from airflow_provider_confirma.hooks.sync_transport import attempt as on_the_wire

        settings = self.settings
        method, path, url = endpoint.method, endpoint.path, settings.url(endpoint.path)
        headers = self._headers(settings, use_provisioning_token)
        data = None
        if json_body is not None:
            data = encode_json(json_body)
            headers["Content-Type"] = "application/json"
        proxy = proxy_for(url)
        send = functools.partial(
            self.session.request,
            method,
            url,
            params=clean_params(params),
            data=data,
            headers=headers,
            verify=_requests_verify(settings.verify),
            proxies={"https": proxy, "http": proxy} if proxy else {},
            allow_redirects=False,
            stream=True,
        )
        timeout, max_bytes = self._timeout(settings), self._max_bytes

        def attempt() -> Any:
            seconds = timeout if deadline is None else min(timeout, deadline - time.monotonic())
            if seconds <= 0:
                raise ConfirmaTransportError(method, path, "connect", "not sent: the caller's deadline had passed")
            with on_the_wire() as record:
                try:
                    with send(timeout=(min(seconds, CONNECT_TIMEOUT), seconds)) as resp:
                        status, head = resp.status_code, resp.headers
                        limit, whole = response_limit(method, path, status, head, max_bytes)
                        body = _bounded(_read_requests_body(resp, limit), limit, whole, method, path, status)
                except requests.RequestException as exc:
                    raise _requests_transport_error(method, path, exc, record) from None
            return interpret_response(
                method, path, status, head.get("Content-Type"), body, head.get("Retry-After"), redact=settings.secrets
            )

        retrying = Retrying(
            before_sleep=lambda rs: _log_retry(rs, method, path),
            **self.retry_policy.tenacity_kwargs(method, deadline=deadline),
        )
        return retrying(attempt)

    # -- async --------------------------------------------------------------------------------
    async def arequest(
        self,
        endpoint: Endpoint,
        *,
        params: Mapping[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> Any:
        """Async twin of :meth:`request` for reads (triggers never POST)."""
        import aiohttp

        if endpoint.method != "GET":
            raise ConfirmaError(f"arequest is for reads only; {endpoint.value} must run on a worker")
        if session is None:
            async with shared_client_session() as own:
                return await self.arequest(endpoint, params=params, session=own)
        settings = await self.aget_settings()
        path, url = endpoint.path, settings.url(endpoint.path)
        query, headers, timeout = clean_params(params), self._headers(settings, False), self._timeout(settings)
        tls = True if settings.verify is True else _ca_context(str(settings.verify))
        proxy, max_bytes = proxy_for(url), self._max_bytes
        shared = _LOOP_SESSIONS.get(asyncio.get_running_loop())
        # a slot of the loop's bound is taken before the request: a wait for it is not the attempt's time
        gate = shared.gate if shared is not None and shared.session is session else contextlib.nullcontext()

        async def attempt() -> Any:
            # aiohttp raises these three only while opening the connection, before a byte of the request
            never_sent = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.ClientHttpProxyError)
            client_timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, CONNECT_TIMEOUT))
            try:
                async with (
                    gate,
                    session.get(
                        url,
                        params=query,
                        headers=headers,
                        timeout=client_timeout,
                        ssl=tls,
                        proxy=proxy,
                        allow_redirects=False,
                    ) as resp,
                ):
                    limit, whole = response_limit("GET", path, resp.status, resp.headers, max_bytes)
                    try:  # a body left unread closes its connection (aiohttp)
                        body = await resp.content.readexactly(limit + 1)
                    except asyncio.IncompleteReadError as end:
                        body = end.partial
            except never_sent as exc:
                raise ConfirmaTransportError("GET", path, "connect", type(exc).__name__) from None
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                raise ConfirmaTransportError("GET", path, "timeout", "read timeout") from None
            except (aiohttp.ClientError, OSError) as exc:
                kind = "tls" if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError) else "reset"
                raise ConfirmaTransportError("GET", path, kind, type(exc).__name__) from None
            status, head = resp.status, resp.headers
            body = _bounded(body, limit, whole, "GET", path, status)
            return interpret_response(
                "GET", path, status, head.get("Content-Type"), body, head.get("Retry-After"), redact=settings.secrets
            )

        began = time.monotonic()
        # Stays (docs/benchmarks.md): the first attempt runs bare, as nearly every poll succeeds;
        # tenacity for every attempt cost 1.28x the CPU per poll.
        try:
            return await attempt()
        except Exception as exc:
            if not is_retryable("GET", exc):
                raise
            first = exc
        retrying = AsyncRetrying(
            before_sleep=lambda rs: _log_retry(rs, "GET", path),
            **self.retry_policy.tenacity_kwargs("GET", elapsed=time.monotonic() - began),
        )
        async for retry in retrying:
            with retry:
                if retry.retry_state.attempt_number == 1:
                    raise first  # the bare attempt's failure is tenacity's attempt 1
                return await attempt()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- endpoints ----------------------------------------------------------------------------
    def validate_token(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /validate: ``{"isValid": bool, "message": str}``."""
        return self.request(Endpoint.VALIDATE, params=params)

    def renew_token(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /renew (documented as ``{"Message": token}``); every string of it goes to the log masker."""
        body = self.request(Endpoint.RENEW, params=params)
        for secret in returned_secrets(body, every_string=True):
            compat.mask_secret(secret)
        return body

    def create_client(self, body: Mapping[str, Any]) -> Any:
        """POST /client with the partner provisioning token; the new client's secrets go to the log masker."""
        response = self.request(Endpoint.CREATE_CLIENT, json_body=body, use_provisioning_token=True)
        for secret in returned_secrets(response):
            compat.mask_secret(secret)
        return response

    def create_invoice(self, body: Mapping[str, Any]) -> Any:
        """POST /invoice (one SalesInvoiceRequest)."""
        return self.request(Endpoint.CREATE_INVOICE, json_body=body)

    def create_invoice_action(self, body: Mapping[str, Any]) -> Any:
        """POST /invoice/action (``{"actions": [...]}``)."""
        return self.request(Endpoint.CREATE_INVOICE_ACTION, json_body=body)

    def get_case_details(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /invoice/case; the docs do not list its query parameters, so they pass through."""
        return self.request(Endpoint.CASE_DETAILS, params=params)

    def get_distribution_info(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /invoice/distribution (e.g. ``fromInvDate``, ``toInvDate``, ``invoiceNumber``)."""
        return self.request(Endpoint.DISTRIBUTION_INFO, params=params)

    def get_payments(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /payments (documented window: ``fromDate``/``toDate``); a JSON array."""
        return self.request(Endpoint.PAYMENTS, params=params)

    def get_settlements(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /settlements (last 30 days when no window is given)."""
        return self.request(Endpoint.SETTLEMENTS, params=params)

    def submit_ledger(self, body: Mapping[str, Any]) -> Any:
        """POST /accounting/ledger (``{"ledgers": {...}}``). Never retried once sent."""
        return self.request(Endpoint.SUBMIT_LEDGER, json_body=body)

    def get_ledger_sync_status(self, params: Mapping[str, Any] | None = None) -> list[LedgerSyncRecord]:
        """GET /accounting/ledger as typed records (204 → empty list)."""
        return self.get_sync_status(Endpoint.LEDGER_SYNC_STATUS, params)

    async def aget_ledger_sync_status(
        self, params: Mapping[str, Any] | None = None, session: aiohttp.ClientSession | None = None
    ) -> list[LedgerSyncRecord]:
        """Async twin of :meth:`get_ledger_sync_status` (for triggers)."""
        return await self.aget_sync_status(Endpoint.LEDGER_SYNC_STATUS, params, session=session)

    def submit_payments(self, body: Mapping[str, Any]) -> Any:
        """POST /accounting/payment (``{"payments": [...]}``). Never retried once sent."""
        return self.request(Endpoint.SUBMIT_PAYMENTS, json_body=body)

    def get_payment_sync_status(self, params: Mapping[str, Any] | None = None) -> list[PaymentSyncRecord]:
        """GET /accounting/payment as typed records (204 → empty list)."""
        return self.get_sync_status(Endpoint.PAYMENT_SYNC_STATUS, params)

    async def aget_payment_sync_status(
        self, params: Mapping[str, Any] | None = None, session: aiohttp.ClientSession | None = None
    ) -> list[PaymentSyncRecord]:
        """Async twin of :meth:`get_payment_sync_status` (for triggers)."""
        return await self.aget_sync_status(Endpoint.PAYMENT_SYNC_STATUS, params, session=session)

    def get_sync_status(self, endpoint: Endpoint, params: Mapping[str, Any] | None = None) -> list[Any]:
        """A sync status endpoint (:data:`STATUS_RECORDS`: payment or ledger) as typed records."""
        check_status_endpoint(endpoint)
        return _read_status(parse_sync_records, endpoint, self.request(endpoint, params=params))

    def get_status_index(
        self, endpoint: Endpoint, params: Mapping[str, Any] | None = None, *, deadline: float | None = None
    ) -> StatusIndex:
        """A sync status endpoint as a :class:`StatusIndex` (records typed on read): what a poke judges.

        :param deadline: as :meth:`request` (a poke passes the end of the sensor's timeout).
        """
        check_status_endpoint(endpoint)
        return index_status_body(endpoint, self.request(endpoint, params=params, deadline=deadline))

    async def aget_sync_status(
        self, endpoint: Endpoint, params: Mapping[str, Any] | None = None, session: aiohttp.ClientSession | None = None
    ) -> list[Any]:
        """Async twin of :meth:`get_sync_status`."""
        check_status_endpoint(endpoint)
        records = await self.arequest(endpoint, params=params, session=session)
        return _read_status(parse_sync_records, endpoint, records)

    async def aget_status_index(
        self, endpoint: Endpoint, params: Mapping[str, Any] | None = None, session: aiohttp.ClientSession | None = None
    ) -> StatusIndex:
        """Async twin of :meth:`get_status_index`: what a sync trigger polls."""
        check_status_endpoint(endpoint)
        return index_status_body(endpoint, await self.arequest(endpoint, params=params, session=session))

    def test_connection(self) -> tuple[bool, str]:
        """A side-effect-free GET /validate under :data:`TEST_CONNECTION_RETRY_POLICY`; the message
        never contains the key."""
        policy, self.retry_policy = self.retry_policy, TEST_CONNECTION_RETRY_POLICY
        try:
            body = self.validate_token()
        except ConfirmaError as exc:
            # the UI tests a copy under a random id (Airflow 3.3), which means nothing to the user
            return False, str(exc).replace(f"Confirma connection '{self.confirma_conn_id}'", "This Confirma connection")
        except Exception as exc:  # the UI wants a message, not a traceback
            return False, f"{type(exc).__name__}: could not reach the Confirma API"
        finally:
            self.retry_policy = policy
        message = body.get("message") if isinstance(body, Mapping) else None
        said = ""
        if isinstance(message, str) and message.strip():  # what the API said, shortened, no secret it echoes
            said = f" (Confirma: {redact_text(message, self.settings.secrets)[:200]})"
        if isinstance(body, Mapping) and body.get("isValid") is True:
            return True, f"API key is valid{said}"
        return False, f"API key is not valid{said or ': no isValid=true in the response'}"


STATUS_RECORDS: dict[Endpoint, tuple[str, type[Any]]] = {
    Endpoint.PAYMENT_SYNC_STATUS: ("payments", PaymentSyncRecord),
    Endpoint.LEDGER_SYNC_STATUS: ("ledgers", LedgerSyncRecord),
}


def check_status_endpoint(endpoint: Any, owner: type | None = None) -> None:
    """Refuse a hook argument, or the endpoint class ``owner`` sets, that is no sync status endpoint."""
    if endpoint in STATUS_RECORDS:
        return
    if owner is not None:
        raise TypeError(f"{owner.__name__} sets no sync status endpoint; use a subclass per endpoint")
    raise ConfirmaConfigError(
        f"{endpoint.value} is not a sync status endpoint; expected one of {sorted(e.value for e in STATUS_RECORDS)}"
    )


def _read_status(read: Any, endpoint: Endpoint, body: Any) -> Any:
    """``read`` (:func:`parse_sync_records` or :func:`index_sync_records`) of a status response."""
    list_key, record_type = STATUS_RECORDS[endpoint]
    try:
        return read(body, list_key, record_type)
    except ValueError as err:
        raise unreadable_status(endpoint, err) from None


def index_status_body(endpoint: Endpoint, body: Any) -> StatusIndex:
    """A status response as a :class:`StatusIndex` (records typed when read)."""
    return _read_status(index_sync_records, endpoint, body)


def unreadable_status(endpoint: Endpoint, err: ValueError) -> ConfirmaResponseError:
    """The error of a status response (or one of its records) that cannot be read."""
    return ConfirmaResponseError(endpoint.method, endpoint.path, 200, "", f"unexpected response: {err}")


# -- the event loop's shared aiohttp session -------------------------------------------------------
@dataclass
class _LoopSession:
    session: aiohttp.ClientSession
    gate: asyncio.Semaphore
    users: int = 0


_LOOP_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = weakref.WeakKeyDictionary()


async def acquire_client_session() -> aiohttp.ClientSession:
    """The running loop's shared ``aiohttp.ClientSession`` (no credentials: the key goes per request),
    counted as one more user until :func:`release_client_session`."""
    import aiohttp

    loop = asyncio.get_running_loop()
    entry = _LOOP_SESSIONS.get(loop)
    if entry is None or entry.session.closed:
        slots = max_concurrent_requests()
        connector = aiohttp.TCPConnector(limit=slots, keepalive_timeout=30)
        session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})
        entry = _LOOP_SESSIONS[loop] = _LoopSession(session, asyncio.Semaphore(slots))
    entry.users += 1
    return entry.session


async def release_client_session(session: aiohttp.ClientSession) -> None:
    """One user of ``session`` is done; the last one closes it."""
    loop = asyncio.get_running_loop()
    entry = _LOOP_SESSIONS.get(loop)
    if entry is None or entry.session is not session:
        return  # it was closed under its users and replaced: nothing left to release
    entry.users -= 1
    if entry.users == 0:
        del _LOOP_SESSIONS[loop]
        await entry.session.close()


@contextlib.asynccontextmanager
async def shared_client_session() -> AsyncIterator[aiohttp.ClientSession]:
    """:func:`acquire_client_session` as a context manager."""
    session = await acquire_client_session()
    try:
        yield session
    finally:
        await release_client_session(session)
