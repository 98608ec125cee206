"""Exact JSON for money (``Decimal`` in, ``Decimal`` out), with no Airflow import so the sandbox starts fast."""

from __future__ import annotations

import json
import re
import secrets
from datetime import date, datetime
from decimal import Decimal
from typing import Any

#: Deepest nesting of arrays and objects a decoded body may have (Confirma's documented bodies nest about 5).
MAX_JSON_DEPTH = 64

_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_INNERMOST = re.compile(rb"\[\]|\{\}")


class JSONTooDeepError(ValueError):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH` levels."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def encode_json(body: Any) -> bytes:
    """JSON bytes with ``Decimal`` values written as exact JSON numbers (``Decimal("12.30")`` → 12.30).

    Hand-written because the standard library writes only floats as numbers (simplejson would be a new
    dependency): each amount becomes a string marked with a random token no payload contains, then unquoted.
    """
    token = secrets.token_hex(8)

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            if not obj.is_finite():
                raise ValueError(f"cannot send non-finite amount {obj}")
            return f"{token}{obj:f}{token}"
        if isinstance(obj, (date, datetime)):
            return obj.isoformat()
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    text = json.dumps(body, default=default, ensure_ascii=False, separators=(",", ":"))
    text = re.sub(f'"{token}(-?[0-9]+(?:\\.[0-9]+)?){token}"', r"\1", text)
    return text.encode("utf-8")


def _depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether valid UTF-8 JSON ``raw`` nests arrays/objects deeper than ``limit``, in C-speed passes.

    Hand-written because the standard library's parser has no depth limit and one with it would be a new
    dependency. Escapes go, then all but quotes and brackets, then what lies between quotes (strings).
    A pass of both replaces removes one or two levels, so only a depth near ``limit`` is counted exactly.
    """
    if b'\\"' in raw:  # an escaped quote (or an escaped backslash before a closing quote)
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in brackets:  # strings with brackets in them
        brackets = b"".join(brackets.split(b'"')[::2])
    rest = brackets
    for passes in range(1, limit + 1):
        rest = rest.replace(b"[]", b"").replace(b"{}", b"")
        if not rest:
            if 2 * passes <= limit:
                return False
            break
    else:
        return True
    for _ in range(limit):  # exact: one level a pass
        brackets = _INNERMOST.sub(b"", brackets)
    return bool(brackets)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(data: bytes | str) -> Any:
    """Parse JSON as ``json.loads`` does, fractional numbers as ``Decimal``; ``NaN``/``Infinity`` are errors.

    :raises ValueError: malformed input, or :class:`JSONTooDeepError` beyond :data:`MAX_JSON_DEPTH` levels.
    """
    try:
        value = json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:  # thousands of levels: the C scanner gave up
        raise JSONTooDeepError() from None
    if isinstance(value, (dict, list)):
        if isinstance(data, bytes) and (encoding := json.detect_encoding(data)) != "utf-8":
            data = data.decode(encoding, "surrogatepass")
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if _depth_exceeds(raw, MAX_JSON_DEPTH):
            raise JSONTooDeepError()
    return value
