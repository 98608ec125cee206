"""The provider's exceptions: one small hierarchy for configuration, transport and API errors.

Messages carry the method, path, status and a short excerpt of the response body; never the API
key, headers or request bodies.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_confirma.text import json_type

BODY_EXCERPT_CHARS = 200
#: What an excerpt says instead of the body of an endpoint that returns secrets.
WITHHELD_EXCERPT = "(not shown: this endpoint returns secrets)"

#: Key names whose values are secrets, compared lower-case without separators (``api_key``,
#: ``X-Api-Key`` and ``apiKey`` are all ``...apikey``): a key is secret when it ends with one of these,
#: in the singular or plural (``accessToken``, ``provisioningToken``, ``clientSecret``, ``credentials``).
SECRET_KEY_WORDS = (
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "token",
    "password",
    "passwd",
    "passphrase",
    "secret",
    "credential",
    "authorization",
)

# ``"key": "value"`` (also inside a JSON string, with escaped quotes; the value may be cut off),
# ``"key": 123`` and ``"key": [...]``; ``key=value`` / ``key: value`` (query strings, forms, headers, text).
_JSON_PAIR = re.compile(
    r'(?P<head>\\*"(?P<key>[^"\\]{1,100})\\*"\s*:\s*)'
    r'(?P<value>\\*"(?:[^"\\]|\\.)*"?|-?[0-9][0-9.eE+-]*|\[[^\]]*\]?)'
)
_TEXT_PAIR = re.compile(
    r"(?P<head>(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z0-9_.-]{1,100})\s*[=:]\s*)"
    r"(?P<value>(?:(?:bearer|basic|token)\s+)?[^\s&;,\"'<>]+)",
    re.IGNORECASE,
)
#: the longest text one character of a secret can take in an excerpt (a surrogate pair ``\\ud83d\\ude00``)
_MAX_FORM_CHARS = 12


def is_secret_key(name: object) -> bool:
    """Whether values under the key ``name`` are secrets (see :data:`SECRET_KEY_WORDS`)."""
    normalized = re.sub(r"[^a-z0-9]", "", str(name).lower())
    singular = normalized[:-1] if normalized.endswith("s") else normalized
    return normalized.endswith(SECRET_KEY_WORDS) or singular.endswith(SECRET_KEY_WORDS)


@functools.lru_cache(maxsize=512)
def _char_forms(char: str) -> str:
    """A regex group of the forms of one character of a secret: raw, JSON-escaped, percent-encoded."""
    # json.dumps writes the short escapes (\" \\ \n ...) and the surrogate pairs above U+FFFF
    forms = {char, json.dumps(char)[1:-1], "".join(f"%{byte:02x}" for byte in char.encode("utf-8"))}
    if ord(char) <= 0xFFFF:
        forms.add(f"\\u{ord(char):04x}")  # JSON may write any character so
    if char == "/":
        forms.add("\\/")
    if char == " ":
        forms.add("+")  # quote_plus
    return f"(?:{'|'.join(map(re.escape, sorted(forms)))})"


def _redact_json_pair(match: re.Match[str]) -> str:
    if is_secret_key(match["key"]):
        return match["head"] + "***"
    value = match["value"]
    opening = value.find('"') + 1  # a string value may hold JSON itself: look inside it
    return match["head"] + value[:opening] + _JSON_PAIR.sub(_redact_json_pair, value[opening:]) if opening else match[0]


def _redact_text_pair(match: re.Match[str]) -> str:
    if is_secret_key(match["key"]):
        return match["head"] + "***"
    return match["head"] + _TEXT_PAIR.sub(_redact_text_pair, match["value"])  # ``note: token=...``


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret (raw, JSON-escaped in any mix, URL-encoded) and every value under
    a secret-looking key (:func:`is_secret_key`, JSON or ``key=value``) replaced by ``***``."""
    patterns = ["".join(map(_char_forms, s)) for s in sorted(set(secrets), key=len, reverse=True) if s]
    if patterns:
        text = re.compile("|".join(patterns), re.IGNORECASE).sub("***", text)
    text = _JSON_PAIR.sub(_redact_json_pair, text)
    return _TEXT_PAIR.sub(_redact_text_pair, text)


def body_excerpt(body: bytes | str | None, limit: int = BODY_EXCERPT_CHARS, redact: Iterable[str] = ()) -> str:
    """A short, single-line excerpt of a response body's head for error messages, redacted before it is
    cut (:func:`redact_text`; ``redact``: the API key and provisioning token, should a server echo them)."""
    if not body:
        return ""
    secrets = tuple(s for s in redact if s)
    tail = _MAX_FORM_CHARS * max((len(s) for s in secrets), default=0)
    window = 16 * limit + tail  # whitespace runs shrink when collapsed: read well past the limit
    if isinstance(body, bytes):  # at most 4 bytes a character
        cut, text = len(body) > 4 * window, body[: 4 * window].decode("utf-8", "replace")
    else:
        cut, text = False, body
    cut = cut or len(text) > window
    text = redact_text(text[:window], secrets)
    if cut and tail:
        text = text[:-tail]  # a secret cut by the window's end is left unmatched there: drop it
    text = " ".join(text.split())
    return text if len(text) <= limit and not cut else text[:limit] + "…"


class ConfirmaError(AirflowException):
    """Base class of every error this provider raises."""


class ConfirmaConfigError(ConfirmaError, ValueError):
    """A connection or argument is missing or invalid; the message names the field."""


class ConfirmaArgumentError(ConfirmaConfigError, AirflowFailException):
    """A task argument is invalid once rendered; fails without retry (same input, same error)."""


class ConfirmaTransportError(ConfirmaError):
    """The request did not get a complete HTTP response.

    ``kind``: ``"connect"`` only when no byte of the request was written (DNS, refused, connect
    timeout, TLS handshake, proxy tunnel: safe to retry any method, see :attr:`never_sent`); after
    that the server may have acted on it: ``"timeout"``, ``"tls"`` or ``"reset"``.
    """

    def __init__(self, method: str, path: str, kind: str, detail: str = "") -> None:
        self.method, self.path, self.kind, self.detail = method, path, kind, detail
        message = f"Confirma API {method} {path} failed: {kind}"
        super().__init__(f"{message} ({detail})" if detail else message)

    @property
    def never_sent(self) -> bool:
        """``True`` when the request provably never left (``kind == "connect"``)."""
        return self.kind == "connect"

    def __reduce__(self):  # picklable and copyable despite the custom signature
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

    @classmethod
    def wrong_shape(cls, method: str, path: str, field: str, expected: str, value: object) -> ConfirmaResponseError:
        """``field`` (a path such as ``metaData.totalCount``; empty for the whole body) is not ``expected``."""
        where = field or "the body"
        return cls(method, path, 200, "", f"unexpected response: {where} should be {expected}, got {json_type(value)}")


class PollerStopped(Exception):
    """The shared poller of :mod:`~airflow_provider_confirma.triggers.coalescing` was cancelled before
    publishing this round: a transient poll error for its waiters, who may rejoin."""


def describe_error(exc: BaseException) -> str:
    """An error for a message or log line; the hook's exceptions never carry the key."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
