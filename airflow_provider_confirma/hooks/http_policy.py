"""The HTTP policy of every Confirma call: what is retried (never a POST that may have reached the
server), backoff and ``Retry-After``, how much of a response is read, and what a response means."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay, wait_exponential_jitter

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import (
    WITHHELD_EXCERPT,
    ConfirmaAPIError,
    ConfirmaAuthError,
    ConfirmaClientError,
    ConfirmaConfigError,
    ConfirmaRateLimitError,
    ConfirmaResponseError,
    ConfirmaServerError,
    ConfirmaTransportError,
    body_excerpt,
    describe_error,  # re-exported: it was defined here
)
from airflow_provider_confirma.json_codec import JSONTooDeepError, decode_json, encode_json

__all__ = [
    "SAFE_METHODS",
    "RetryPolicy",
    "clean_params",
    "content_length",
    "describe_error",
    "encode_json",
    "interpret_response",
    "is_retryable",
    "is_transient",
    "parse_retry_after",
    "response_limit",
    "response_too_large",
    "retry_policy_from",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop, per call. The defaults suit a status poll."""

    max_attempts: int = 5
    max_total_seconds: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5
    retry_after_cap: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        for name in ("max_total_seconds", "backoff_initial", "backoff_max", "retry_after_cap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")

    def tenacity_kwargs(self, method: str, elapsed: float = 0.0, deadline: float | None = None) -> dict[str, Any]:
        """Arguments of ``tenacity.Retrying`` / ``AsyncRetrying`` for one call of ``method``.

        :param elapsed: seconds the call spent before the retry loop began (they count against the budget).
        :param deadline: a ``time.monotonic()`` instant no retry sleep may reach.
        """
        budget = self.max_total_seconds - elapsed
        if deadline is not None:
            budget = min(budget, deadline - time.monotonic())
        backoff = wait_exponential_jitter(multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.jitter)

        def wait(retry_state: RetryCallState) -> float:
            retry_after = getattr(retry_state.outcome.exception() if retry_state.outcome else None, "retry_after", None)
            if retry_after is not None:  # the server said how long (capped)
                return min(max(float(retry_after), 0.0), self.retry_after_cap)
            return float(backoff(retry_state))

        return {
            "retry": retry_if_exception(lambda exc: is_retryable(method, exc)),
            "stop": stop_after_attempt(self.max_attempts) | stop_before_delay(max(0.0, budget)),
            "wait": wait,
            "reraise": True,
        }


def retry_policy_from(value: RetryPolicy | Mapping[str, Any] | None, name: str = "retry_policy") -> RetryPolicy | None:
    """A :class:`RetryPolicy` from itself or a dict of its fields (as trigger kwargs carry it); a wrong
    type, an unknown field or a bad bound is a ``ConfirmaConfigError`` naming ``name``."""
    if value is None or isinstance(value, RetryPolicy):
        return value
    if not isinstance(value, Mapping):
        raise ConfirmaConfigError(f"{name} must be a RetryPolicy or a dict of its fields, got {type(value).__name__}")
    known = [f.name for f in fields(RetryPolicy)]
    unknown = sorted(str(key) for key in value if key not in known)
    if unknown:
        raise ConfirmaConfigError(f"{name} has unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        return RetryPolicy(**value)
    except ValueError as err:
        raise ConfirmaConfigError(f"{name}: {err}") from None


def is_retryable(method: str, exc: BaseException) -> bool:
    """Retry GETs on transport errors, 429 and 5xx; other methods only when never sent."""
    if isinstance(exc, ConfirmaTransportError):
        return exc.never_sent or method in SAFE_METHODS
    if isinstance(exc, (ConfirmaRateLimitError, ConfirmaServerError)):
        return method in SAFE_METHODS
    return False


def is_transient(exc: BaseException) -> bool:
    """Poll errors worth another poll: what a GET is retried for (transport, 429, 5xx)."""
    return is_retryable("GET", exc)


_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, else ``None``; never raises.

    Only what RFC 9110 allows: ASCII delta-seconds or an HTTP date (a past date is 0).
    """
    if not isinstance(value, str):
        return None
    value = value.strip(" \t")
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    if not value.isascii() or not value[:1].isalpha():  # an HTTP date starts with the day name
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (TypeError, ValueError, OverflowError, OSError, AttributeError):
        return None


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


#: bytes of a response read only for an error message (an error status, a non-JSON success)
EXCERPT_READ_BYTES = 8192
MAX_RESPONSE_BYTES_OPTION = "max_response_bytes"


def response_limit(method: str, path: str, status: int, headers: Mapping[str, str], max_bytes: int) -> tuple[int, bool]:
    """``(bytes to read, whole body needed)`` of a response, from its head.

    A JSON success is needed whole (a ``Content-Length`` past ``max_bytes`` fails at once); anything
    else only for its excerpt.
    """
    if 200 <= status < 300 and status != 204 and _is_json(headers.get("Content-Type")):
        size = content_length(headers.get("Content-Length"))
        if size is not None and size > max_bytes:
            raise response_too_large(method, path, status, max_bytes, size)
        return max_bytes, True
    return min(EXCERPT_READ_BYTES, max_bytes), False


def content_length(value: str | None) -> int | None:
    """A ``Content-Length`` header in bytes (``None`` when absent or unreadable)."""
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def response_too_large(method: str, path: str, status: int, max_bytes: int, size: int | None = None) -> Exception:
    """The error of a JSON success larger than ``[confirma] max_response_bytes``."""
    told = f"of {size} bytes (Content-Length) " if size is not None else ""
    return ConfirmaResponseError(
        method,
        path,
        status,
        "",
        f"response {told}is larger than [confirma] {MAX_RESPONSE_BYTES_OPTION} = {max_bytes} bytes; narrow the "
        f"query or raise the option (AIRFLOW__CONFIRMA__{MAX_RESPONSE_BYTES_OPTION.upper()})",
    )


def interpret_response(
    method: str,
    path: str,
    status: int,
    content_type: str | None,
    body: bytes,
    retry_after: str | None = None,
    redact: Iterable[str] = (),
) -> Any:
    """The decoded JSON of a 2xx response (``None`` when empty or 204), else the matching error.

    :param redact: secrets blanked out of the body excerpt of an error (never quoted at all for an
        endpoint that returns secrets).
    """
    redact = tuple(redact)
    if 200 <= status < 300:
        if status == 204 or not body.strip():
            return None
        if _is_json(content_type):
            try:
                return decode_json(body)  # fractional numbers (money) as exact Decimal, never float
            except JSONTooDeepError as err:
                reason = f"{err}; refused"
            except ValueError:
                reason = "malformed JSON"
        else:
            reason = f"expected JSON, got {content_type or 'no content type'}"
        raise ConfirmaResponseError(method, path, status, _excerpt(method, path, body, redact), reason)
    excerpt = _excerpt(method, path, body, redact)
    error: ConfirmaAPIError
    if status == 401:
        error = ConfirmaAuthError(
            method, path, status, excerpt, "API key rejected (missing, wrong, expired or of another environment)"
        )
    elif status == 429:
        error = ConfirmaRateLimitError(method, path, status, excerpt, "rate limited")
    elif 400 <= status < 500:
        error = ConfirmaClientError(method, path, status, excerpt)
    elif status >= 500:
        error = ConfirmaServerError(method, path, status, excerpt)
    else:
        error = ConfirmaResponseError(method, path, status, excerpt, "unexpected status")
    error.retry_after = parse_retry_after(retry_after)
    raise error


def _excerpt(method: str, path: str, body: bytes, redact: tuple[str, ...]) -> str:
    try:
        withheld = Endpoint(f"{method} {path}").returns_secrets
    except ValueError:  # not a documented endpoint
        withheld = False
    if withheld:
        return WITHHELD_EXCERPT if body else ""
    return body_excerpt(body, redact=redact)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters as text (dates ISO, ``None`` dropped); a list or tuple is a repeated key."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out[str(key)] = [_param_text(item) for item in value if item is not None]
        else:
            out[str(key)] = _param_text(value)
    return out
