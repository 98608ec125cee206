"""The provider's exceptions: one small hierarchy for configuration, transport and API errors.

Messages carry the method, path, status and a short excerpt of the response body; never the API
key, headers or request bodies.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow.sdk.exceptions import AirflowException, AirflowFailException

BODY_EXCERPT_CHARS = 200


def body_excerpt(body: bytes | str | None, limit: int = BODY_EXCERPT_CHARS, redact: Iterable[str] = ()) -> str:
    """A short, single-line, printable excerpt of a response body for error messages.

    Each string in ``redact`` (the API key, should a server echo it back) is replaced by ``***``.
    """
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for secret in redact:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class ConfirmaError(AirflowException):
    """Base class of every error this provider raises."""


class ConfirmaConfigError(ConfirmaError, ValueError):
    """A connection or argument is missing or invalid; the message names the field."""


class ConfirmaArgumentError(ConfirmaConfigError, AirflowFailException):
    """A task argument is invalid once rendered; fails without retry (same input, same error)."""


class ConfirmaTransportError(ConfirmaError):
    """The request did not get a complete HTTP response.

    ``kind`` says where it failed: ``"connect"`` only when no byte of the request was written (DNS,
    refused, connect timeout, TLS handshake, proxy tunnel: safe to retry any method, see
    :attr:`never_sent`); after that the server may have acted on it: ``"timeout"`` (no answer in
    time), ``"tls"`` (a TLS error after the request was written) or ``"reset"`` (the connection
    broke before a complete response).
    """

    def __init__(self, method: str, path: str, kind: str, detail: str = "") -> None:
        self.method, self.path, self.kind, self.detail = method, path, kind, detail
        message = f"Confirma API {method} {path} failed: {kind}"
        super().__init__(f"{message} ({detail})" if detail else message)

    @property
    def never_sent(self) -> bool:
        """``True`` when the request provably never left (``kind == "connect"``)."""
        return self.kind == "connect"

    def __reduce__(self):  # keep picklable/copyable with the custom signature
        return (type(self), (self.method, self.path, self.kind, self.detail))


class ConfirmaAPIError(ConfirmaError):
    """The API answered with an error status, or with a response we cannot use."""

    #: seconds from a ``Retry-After`` header (429/503), used by the retry policy; never in the message
    retry_after: float | None = None

    def __init__(self, method: str, path: str, status: int | None, excerpt: str = "", reason: str = "") -> None:
        self.method, self.path, self.status, self.excerpt, self.reason = method, path, status, excerpt, reason
        parts = [f"Confirma API {method} {path} returned HTTP {status}"]
        if reason:
            parts.append(reason)
        if excerpt:
            parts.append(f"body: {excerpt}")
        super().__init__(": ".join(parts))

    def __reduce__(self):
        return (type(self), (self.method, self.path, self.status, self.excerpt, self.reason))


class ConfirmaAuthError(ConfirmaAPIError):
    """401: the API key is missing, wrong, expired, or for another environment."""


class ConfirmaClientError(ConfirmaAPIError):
    """Any other 4xx: the request was rejected (bad payload, unknown resource, ...)."""


class ConfirmaRateLimitError(ConfirmaClientError):
    """429 that outlasted the retry budget."""


class ConfirmaServerError(ConfirmaAPIError):
    """5xx: the API failed (retried for GET; never retried for POST)."""


class ConfirmaResponseError(ConfirmaAPIError):
    """A success status with a body we cannot use: malformed JSON, wrong content type or shape."""


class PollerStopped(Exception):
    """The shared poller ended (cancelled) before publishing this round; the wait may rejoin.

    Raised to the waiters of :mod:`airflow_provider_confirma.triggers.coalescing`; a transient
    poll error (:func:`~airflow_provider_confirma.hooks.http_policy.is_transient`).
    """
