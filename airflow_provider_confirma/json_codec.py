"""Exact JSON for money, with no Airflow import: ``Decimal`` in, ``Decimal`` out.

Owns the wire encoding of request bodies (``Decimal`` written as an exact JSON number, never
through float) and the matching decoder (JSON numbers with a fraction become ``Decimal``). Kept
free of Airflow imports so the sandbox server and CLI start fast; the hook uses the same functions
through :mod:`airflow_provider_confirma.hooks.http_policy`.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def encode_json(body: Any) -> bytes:
    """JSON bytes with ``Decimal`` values written as exact JSON numbers (``Decimal("12.30")`` → 12.30).

    Hand-written because the standard library's encoder writes only numbers it formats itself (a
    float), and simplejson (``use_decimal``) would be a dependency for these lines: each amount is
    written as a string marked with a random token no payload can contain, then unquoted.
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


#: Deepest nesting of arrays and objects a decoded body may have. Confirma's documented bodies nest
#: about 5 levels; deeper input is refused before anything walks it recursively.
MAX_JSON_DEPTH = 64


class JSONTooDeepError(ValueError):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH` levels."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether valid JSON ``raw`` (UTF-8) nests arrays/objects deeper than ``limit``, in C-speed passes.

    Hand-written because the standard library's parser has no depth limit (only Python's recursion
    limit, far deeper), and a parser with one would be a new dependency.

    Escapes go (``\\\\`` then ``\\"``, only when a backslash precedes a quote), then every byte but quotes
    and brackets; what lies between quote pairs was in strings (adjacent quotes enclose nothing and
    go first). Then innermost pairs are removed pass by pass: one pass of both kinds removes one
    or two levels, so only a depth between ``limit / 2`` and ``limit`` needs the exact count.
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


_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_INNERMOST = re.compile(rb"\[\]|\{\}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: One decoder for every response (``json.loads`` with these options would build one per call).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def decode_json(data: bytes | str) -> Any:
    """Parse JSON keeping fractional numbers exact (``Decimal``); ``NaN``/``Infinity`` are errors.

    Accepts what ``json.loads`` accepts (bytes in UTF-8, -16 or -32). Raises ``ValueError``
    (``json.JSONDecodeError`` is one) on malformed input, :class:`JSONTooDeepError` (one too) on
    nesting deeper than :data:`MAX_JSON_DEPTH`.
    """
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
        text = data
    else:
        encoding = json.detect_encoding(data)
        text = data.decode(encoding, "surrogatepass")
        if encoding != "utf-8":
            data = text
    try:
        value = _DECODER.decode(text)
    except RecursionError:  # thousands of levels: the C scanner gave up
        raise JSONTooDeepError() from None
    if isinstance(value, (dict, list)):
        raw = data if isinstance(data, bytes) else text.encode("utf-8", "surrogatepass")
        if _depth_exceeds(raw, MAX_JSON_DEPTH):
            raise JSONTooDeepError()
    return value
