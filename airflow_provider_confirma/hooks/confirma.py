"""``ConfirmaHook``: every Confirma partner API call, sync (requests) and async (aiohttp).

One request path per flavour, both under the policy of :mod:`.http_policy`: ``X-Api-Key`` and
``Accept: application/json`` on every call, a timeout on every call, retries only where they are
safe, and errors that never carry the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook, conf
from tenacity import AsyncRetrying, RetryCallState, Retrying
from tenacity.stop import stop_base

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
from airflow_provider_confirma.hooks.connection import (
    CONN_TYPE,
    ConfirmaConnectionSettings,
    form_widgets,
    proxy_for,
    ui_field_behaviour,
)
from airflow_provider_confirma.hooks.http_policy import (
    MAX_RESPONSE_BYTES_OPTION,
    RetryPolicy,
    clean_params,
    content_length,
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


def _log_retry(retry_state: RetryCallState, method: str, path: str) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    log.warning(
        "Confirma %s %s attempt %d failed (%s); retrying in %.2fs",
        method,
        path,
        retry_state.attempt_number,
        exc,
        wait,
    )


def _requests_transport_error(
    method: str, path: str, exc: requests.RequestException, attempt: Attempt | None = None
) -> ConfirmaTransportError:
    """Classify a requests failure by where it happened (``attempt``: what the connection did).

    ``connect`` only when the request provably was never sent: the connection was reached and no
    byte of the request written. Without that record (a transport mocked above the connection), only
    errors urllib3 raises while opening a connection count as never sent. After a write, a TLS error
    is ``tls``, not a handshake failure: a server may have read the whole request first.
    """
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if attempt is not None and attempt.reached:
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
    if isinstance(exc, requests.exceptions.SSLError):
        return ConfirmaTransportError(method, path, "tls", "TLS error after the request was sent")
    return ConfirmaTransportError(method, path, "reset", "connection closed before a complete response")


def _requests_verify(verify: bool | str) -> bool | str:
    """What requests verifies against: the connection's CA bundle, else the bundle requests would
    take from the environment (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``; the session reads no
    environment itself), else its default store. Given per request, so no setting replaces a bundle."""
    if verify is not True:
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


#: bytes asked of the transport per read of a response body
_READ_CHUNK = 64 * 1024


def _body_plan(method: str, path: str, status: int, headers: Mapping[str, str], max_bytes: int) -> tuple[int, bool]:
    """:func:`response_limit` of a response head, failing at once on a ``Content-Length`` too large."""
    limit, whole = response_limit(status, headers.get("Content-Type"), max_bytes)
    size = content_length(headers.get("Content-Length"))
    if whole and size is not None and size > limit:
        raise response_too_large(method, path, status, limit, size)
    return limit, whole


def _bounded(chunks: list[bytes], limit: int, whole: bool, method: str, path: str, status: int) -> bytes:
    """The body read: past ``limit`` an error when the whole body was needed, else cut to the excerpt."""
    body = b"".join(chunks)
    if len(body) > limit:
        if whole:
            raise response_too_large(method, path, status, limit)
        body = body[:limit]
    return body


def _read_requests_body(resp: requests.Response, method: str, path: str, max_bytes: int) -> bytes:
    """The body of a streamed requests response, read at most one chunk past its limit."""
    limit, whole = _body_plan(method, path, resp.status_code, resp.headers, max_bytes)
    chunks: list[bytes] = []
    got = 0
    for chunk in resp.iter_content(min(_READ_CHUNK, limit + 1)):
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            break
    return _bounded(chunks, limit, whole, method, path, resp.status_code)


def _attempt_timeout(method: str, path: str, timeout: float, deadline: float | None) -> float:
    """One attempt's timeout: ``timeout``, cut to the time left before ``deadline``.

    With no time left the attempt is not made: ``ConfirmaTransportError`` of kind ``connect``
    (nothing was sent).
    """
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise ConfirmaTransportError(method, path, "connect", "not sent: the caller's deadline had passed")
    return min(timeout, left)


def _retry_until(kwargs: dict[str, Any], deadline: float | None) -> dict[str, Any]:
    """Tenacity arguments (of ``RetryPolicy.tenacity_kwargs``) that also end the retries by ``deadline``.

    A backoff or ``Retry-After`` sleep that would reach it is not slept: the call ends at once with
    the last error.
    """
    if deadline is None:
        return kwargs
    return {**kwargs, "stop": kwargs["stop"] | _StopBefore(deadline)}


class _StopBefore(stop_base):
    """Stop when the next attempt would start at or after ``deadline`` (a ``time.monotonic()`` instant)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() + (retry_state.upcoming_sleep or 0.0) >= self.deadline


def returned_secrets(body: Any, every_string: bool = False) -> list[str]:
    """The secrets in a decoded response: strings under secret-looking keys
    (:func:`~airflow_provider_confirma.exceptions.is_secret_key`) at any depth and strings under no
    key at all (the body itself, or in a top-level list), or every string."""
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

    :param confirma_conn_id: the Airflow connection holding the API key and environment or host.
    :param timeout: per-request timeout in seconds; defaults to the connection's ``timeout``.
    :param retry_policy: retry bounds; the default retries GETs up to 5 times within 60 s.
    """

    conn_name_attr = "confirma_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Confirma Finance"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields on Airflow 3.0 and 3.1 (from the provider metadata's
        ``conn-fields``, which Airflow 3.2+ reads itself without calling this)."""
        return form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabelled and placeholder fields on Airflow 3.0 and 3.1 (``ui-field-behaviour``)."""
        return ui_field_behaviour()

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
        """The validated connection (read once per hook, synchronously).

        The key and provisioning token are registered with Airflow's log masker as they are sent
        (stripped; Airflow itself masks the field as stored).
        """
        if self._settings is None:
            settings = ConfirmaConnectionSettings.from_connection(self.get_connection(self.confirma_conn_id))
            for secret in settings.secrets:
                compat.mask_secret(secret)
            self._settings = settings
        return self._settings

    async def aget_settings(self) -> ConfirmaConnectionSettings:
        """The validated connection, resolved without blocking the event loop.

        The sync ``get_connection`` / ``extra_dejson`` / ``mask_secret`` tell the supervisor through
        blocking calls, which must not run on a triggerer's event loop: from Airflow 3.3.2 their async
        forms are used; before, :attr:`settings` runs in a worker thread (one hop for all three).
        """
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
        if use_provisioning_token:
            if not settings.provisioning_token:
                raise ConfirmaConfigError(
                    f"Confirma connection '{settings.conn_id}': extra 'partner_provisioning_token' is "
                    "required to create clients"
                )
            key = settings.provisioning_token
        else:
            key = settings.api_key
        return {"X-Api-Key": key, "Accept": "application/json", "User-Agent": USER_AGENT}

    def _timeout(self, settings: ConfirmaConnectionSettings) -> float:
        return self.timeout if self.timeout is not None else settings.timeout

    def longest_read_seconds(self) -> float | None:
        """The most one :meth:`arequest` can last: the retry budget plus one attempt's timeout
        (tenacity starts no attempt past the budget). ``None`` until the connection was read."""
        if self._settings is None:
            return None
        return self.retry_policy.max_total_seconds + self._timeout(self._settings)

    # -- sync ---------------------------------------------------------------------------------
    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook; TLS verification always on.

        Its connections record whether a request was written (:mod:`.sync_transport`); it reads
        nothing from the environment (``trust_env`` off): proxies come from :func:`proxy_for`, per
        request, as on the async path.
        """
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
        """:func:`max_response_bytes`, read once per hook. Stays (docs/benchmarks.md): an Airflow
        config read per request cost 1.29x the CPU per poll (0.32x vs 0.25x the anchor's)."""
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
        """Call ``endpoint`` and return its decoded JSON (``None`` for 204 / empty).

        Each attempt records whether the request was written (:mod:`.sync_transport`), which decides
        whether a failed POST may be retried; the body is read bounded (:func:`max_response_bytes`).

        ``deadline``: a ``time.monotonic()`` instant by which the call ends, retries included: no
        attempt starts after it, no retry sleep reaches it (the call ends with the last error
        instead), and each attempt's timeout is cut to the time left (:func:`_attempt_timeout`,
        :func:`_retry_until`).
        """
        import requests

        from airflow_provider_confirma.hooks.sync_transport import attempt as on_the_wire

        settings = self.settings
        method, path = endpoint.method, endpoint.path
        headers = self._headers(settings, use_provisioning_token)
        data = None
        if json_body is not None:
            data = encode_json(json_body)
            headers["Content-Type"] = "application/json"
        timeout = self._timeout(settings)
        query = clean_params(params)
        secrets = settings.secrets
        url = settings.url(path)
        proxy = proxy_for(url)
        proxies = {"https": proxy, "http": proxy} if proxy else {}
        max_bytes = self._max_bytes
        verify = _requests_verify(settings.verify)
        session = self.session

        def attempt() -> Any:
            limit = _attempt_timeout(method, path, timeout, deadline)
            with on_the_wire() as record:
                try:
                    resp = session.request(
                        method,
                        url,
                        params=query,
                        data=data,
                        headers=headers,
                        timeout=(min(limit, 10.0), limit),
                        verify=verify,
                        proxies=proxies,
                        allow_redirects=False,
                        stream=True,
                    )
                    try:
                        body = _read_requests_body(resp, method, path, max_bytes)
                    finally:
                        resp.close()
                except requests.RequestException as exc:
                    raise _requests_transport_error(method, path, exc, record) from None
            return interpret_response(
                method,
                path,
                resp.status_code,
                resp.headers.get("Content-Type"),
                body,
                resp.headers.get("Retry-After"),
                redact=secrets,
            )

        retrying = Retrying(
            before_sleep=lambda rs: _log_retry(rs, method, path),
            **_retry_until(self.retry_policy.tenacity_kwargs(method), deadline),
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
        """Async twin of :meth:`request` for reads (triggers only read; they never POST)."""
        if endpoint.method != "GET":
            raise ConfirmaError(f"arequest is for reads only; {endpoint.value} must run on a worker")
        if session is None:
            async with shared_client_session() as own:
                return await self.arequest(endpoint, params=params, session=own)
        settings = await self.aget_settings()
        path, url = endpoint.path, settings.url(endpoint.path)
        attempt = functools.partial(
            _aiohttp_attempt,
            session,
            "GET",
            path,
            url,
            clean_params(params),
            self._headers(settings, False),
            self._timeout(settings),
            _ssl_context(settings.verify),
            settings.secrets,
            proxy_for(url),
            self._max_bytes,
        )
        began = time.monotonic()
        # Stays (docs/benchmarks.md): the first attempt runs bare, as nearly every poll succeeds;
        # tenacity for every attempt cost 1.28x the CPU per poll (0.41x vs 0.32x the anchor's).
        # A retryable failure hands over to tenacity, which counts it as attempt 1.
        try:
            return await attempt()
        except Exception as exc:
            if self.retry_policy.max_attempts < 2 or not is_retryable("GET", exc):
                raise
            first: Exception | None = exc
        retrying = AsyncRetrying(
            before_sleep=lambda rs: _log_retry(rs, "GET", path),
            **self.retry_policy.tenacity_kwargs("GET", elapsed=time.monotonic() - began),
        )
        async for retry in retrying:
            with retry:
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await attempt()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- endpoints ----------------------------------------------------------------------------
    def validate_token(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /validate: ``{"isValid": bool, "message": str}``."""
        return self.request(Endpoint.VALIDATE, params=params)

    def renew_token(self, params: Mapping[str, Any] | None = None) -> Any:
        """GET /renew: the response carries the new token (documented as ``{"Message": token}``).

        Every string in it is registered with Airflow's log masker before it is returned.
        """
        body = self.request(Endpoint.RENEW, params=params)
        for secret in returned_secrets(body, every_string=True):
            compat.mask_secret(secret)
        return body

    def create_client(self, body: Mapping[str, Any]) -> Any:
        """POST /client with the partner provisioning token (connection extra).

        The new client's secrets (strings under secret-looking keys such as ``apiKey`` or
        ``accessToken``) are registered with Airflow's log masker before the response is returned.
        """
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
        _check_status_endpoint(endpoint)
        return parse_status_body(endpoint, self.request(endpoint, params=params))

    def get_status_index(
        self, endpoint: Endpoint, params: Mapping[str, Any] | None = None, *, deadline: float | None = None
    ) -> StatusIndex:
        """A sync status endpoint as a :class:`StatusIndex` (records by identifier, typed on read).

        What a sensor's poke judges: cheaper than :meth:`get_sync_status` for large responses.
        ``deadline``: as :meth:`request` (a poke passes the end of the sensor's timeout).
        """
        _check_status_endpoint(endpoint)
        return index_status_body(endpoint, self.request(endpoint, params=params, deadline=deadline))

    async def aget_sync_status(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> list[Any]:
        """Async twin of :meth:`get_sync_status`."""
        _check_status_endpoint(endpoint)
        return parse_status_body(endpoint, await self.arequest(endpoint, params=params, session=session))

    async def aget_status_index(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> StatusIndex:
        """Async twin of :meth:`get_status_index`: what a sync trigger polls."""
        _check_status_endpoint(endpoint)
        return index_status_body(endpoint, await self.arequest(endpoint, params=params, session=session))

    def test_connection(self) -> tuple[bool, str]:
        """A side-effect-free GET /validate; the message never contains the key.

        Retries briefly (:data:`TEST_CONNECTION_RETRY_POLICY`): someone is waiting in the UI.
        """
        policy, self.retry_policy = self.retry_policy, TEST_CONNECTION_RETRY_POLICY
        try:
            body = self.validate_token()
        except ConfirmaError as exc:
            return False, self._for_this_connection(str(exc))
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

    def _for_this_connection(self, message: str) -> str:
        """``message`` speaking of "this connection": the UI tests a copy under a random id
        (Airflow 3.3: e.g. ``'oA2fFcEi'``) that means nothing to the user."""
        return message.replace(f"Confirma connection '{self.confirma_conn_id}'", "This Confirma connection")


STATUS_RECORDS: dict[Endpoint, tuple[str, type[Any]]] = {
    Endpoint.PAYMENT_SYNC_STATUS: ("payments", PaymentSyncRecord),
    Endpoint.LEDGER_SYNC_STATUS: ("ledgers", LedgerSyncRecord),
}


def _check_status_endpoint(endpoint: Endpoint) -> None:
    if endpoint not in STATUS_RECORDS:
        raise ConfirmaConfigError(
            f"{endpoint.value} is not a sync status endpoint; expected one of {sorted(e.value for e in STATUS_RECORDS)}"
        )


def parse_status_body(endpoint: Endpoint, body: Any) -> list[Any]:
    """Typed records of a sync status response; a shape we cannot read is a ConfirmaResponseError."""
    list_key, record_type = STATUS_RECORDS[endpoint]
    try:
        return parse_sync_records(body, list_key, record_type)
    except ValueError as err:
        raise unreadable_status(endpoint, err) from None


def index_status_body(endpoint: Endpoint, body: Any) -> StatusIndex:
    """:func:`parse_status_body` as a :class:`StatusIndex` (records typed when read)."""
    list_key, record_type = STATUS_RECORDS[endpoint]
    try:
        return index_sync_records(body, list_key, record_type)
    except ValueError as err:
        raise unreadable_status(endpoint, err) from None


def unreadable_status(endpoint: Endpoint, err: ValueError) -> ConfirmaResponseError:
    """The error of a status response (or one of its records) that cannot be read."""
    return ConfirmaResponseError(endpoint.method, endpoint.path, 200, "", f"unexpected response: {err}")


# -- async transport ------------------------------------------------------------------------------
async def _aiohttp_attempt(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    url: str,
    query: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
    ssl_ctx: ssl.SSLContext | bool,
    secrets: tuple[str, ...] = (),
    proxy: str | None = None,
    max_bytes: int | None = None,
) -> Any:
    """One aiohttp request, classified by where it failed; ``timeout`` bounds it (aiohttp's
    ``ClientTimeout``, connecting at most 10 s).

    aiohttp raises ``ClientConnectorError`` (DNS, refused, TLS handshake, proxy connection),
    ``ConnectionTimeoutError`` and ``ClientHttpProxyError`` (the proxy refused the tunnel) only while
    its connector opens the connection, before ``req.send`` writes a byte: those are ``connect``.
    Everything later may have reached the server. (Only GETs run here: aiohttp's own resend of an
    idempotent request after a dropped keep-alive connection does not matter to them.)
    """
    import aiohttp

    cap = DEFAULT_MAX_RESPONSE_BYTES if max_bytes is None else max_bytes
    try:
        async with (
            _admission(session),  # before the request: a wait for a slot is not the attempt's time
            session.request(
                method,
                url,
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0)),
                ssl=ssl_ctx,
                proxy=proxy,
                allow_redirects=False,
            ) as resp,
        ):
            status, content_type, retry_after = (
                resp.status,
                resp.headers.get("Content-Type"),
                resp.headers.get("Retry-After"),
            )
            body = await _aread_body(resp, method, path, cap)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.ClientHttpProxyError) as exc:
        raise ConfirmaTransportError(method, path, "connect", type(exc).__name__) from None
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        raise ConfirmaTransportError(method, path, "timeout", "read timeout") from None
    except (aiohttp.ClientError, OSError) as exc:
        tls = isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError)
        kind = "tls" if tls else "reset"
        raise ConfirmaTransportError(method, path, kind, type(exc).__name__) from None
    return interpret_response(method, path, status, content_type, body, retry_after, redact=secrets)


async def _aread_body(resp: aiohttp.ClientResponse, method: str, path: str, max_bytes: int) -> bytes:
    """The body of an aiohttp response, read in chunks at most one byte past its limit.

    A body left unread closes the connection (it cannot carry another request)."""
    limit, whole = _body_plan(method, path, resp.status, resp.headers, max_bytes)
    chunks: list[bytes] = []
    want = limit + 1
    got = 0
    try:
        while got < want:
            chunk = await resp.content.read(min(_READ_CHUNK, want - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return _bounded(chunks, limit, whole, method, path, resp.status)
    finally:
        if got >= want or not resp.content.at_eof():
            resp.close()


_SSL_CONTEXTS: dict[str, ssl.SSLContext] = {}


def _ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """``True`` (aiohttp's default verified context) or a cached context for a CA bundle path."""
    if verify is True:
        return True
    if verify not in _SSL_CONTEXTS:
        _SSL_CONTEXTS[str(verify)] = ssl.create_default_context(cafile=str(verify))
    return _SSL_CONTEXTS[str(verify)]


#: ``[confirma] max_concurrent_requests``: requests in flight at once on an event loop's shared
#: session (see :func:`max_concurrent_requests`).
CONFIG_SECTION = "confirma"
MAX_CONCURRENT_REQUESTS_OPTION = "max_concurrent_requests"
DEFAULT_MAX_CONCURRENT_REQUESTS = 16


def max_concurrent_requests() -> int:
    """How many requests an event loop's shared session has in flight at once (Airflow config).

    A bound keeps a triggerer's memory flat: after the loop stalls, every poll that fell due meanwhile
    starts at once, and each request in flight holds ~100 objects that the garbage collector then
    promotes and walks; past the bound a request waits for a slot, holding a handful. Polls beyond
    ``max_concurrent_requests / latency`` per second wait their turn (none is dropped).
    """
    return _config_count(MAX_CONCURRENT_REQUESTS_OPTION, DEFAULT_MAX_CONCURRENT_REQUESTS, 1)


def _config_count(option: str, default: int, minimum: int) -> int:
    """The integer ``[confirma] <option>`` (``default`` when unset); else ``ConfirmaConfigError``
    naming the option and what was given. Only ASCII digits (with a sign) are read as a number."""
    raw = conf.get(CONFIG_SECTION, option, fallback=None)
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return default
    digits = text.lstrip("+-")
    value = int(text) if digits.isascii() and digits.isdigit() else raw  # else the error shows what was given
    return check_count(value, f"[{CONFIG_SECTION}] {option}", minimum)


DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def max_response_bytes() -> int:
    """``[confirma] max_response_bytes`` (Airflow config): the most of one JSON response read.

    Checked from the response head (``Content-Length``) and while reading, on both paths; default
    64 MiB (a 100,000-record status list is about 16 MB). Error statuses and non-JSON answers are
    read only as far as their message quotes them (a few KB).
    """
    return _config_count(MAX_RESPONSE_BYTES_OPTION, DEFAULT_MAX_RESPONSE_BYTES, 1024)


class _LoopSession:
    def __init__(self, session: aiohttp.ClientSession, slots: int) -> None:
        self.session = session
        self.users = 0
        self.gate = asyncio.Semaphore(slots)


_LOOP_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopSession] = weakref.WeakKeyDictionary()


def _admission(session: aiohttp.ClientSession) -> contextlib.AbstractAsyncContextManager[Any]:
    """A slot of the loop's request bound when ``session`` is its shared session (else none)."""
    entry = _LOOP_SESSIONS.get(asyncio.get_running_loop())
    if entry is not None and entry.session is session:
        return entry.gate
    return contextlib.nullcontext()


async def acquire_client_session() -> aiohttp.ClientSession:
    """The running loop's shared ``aiohttp.ClientSession``, counted as one more user.

    Holds no credentials (the key goes per request), so every trigger in a triggerer can reuse its
    pooled connections. At most :func:`max_concurrent_requests` of its requests (from this module)
    are in flight at once, on as many connections. Each call needs one :func:`release_client_session`.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    entry = _LOOP_SESSIONS.get(loop)
    if entry is None or entry.session.closed:
        slots = max_concurrent_requests()
        connector = aiohttp.TCPConnector(limit=slots, keepalive_timeout=30)
        entry = _LoopSession(aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT}), slots)
        _LOOP_SESSIONS[loop] = entry
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
    """One keep-alive ``aiohttp.ClientSession`` per event loop, shared by all its users.

    Closed when its last user leaves (:func:`acquire_client_session` as a context manager).
    """
    session = await acquire_client_session()
    try:
        yield session
    finally:
        await release_client_session(session)
