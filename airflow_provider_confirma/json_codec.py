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
    """JSON bytes with ``Decimal`` values written as exact JSON numbers (``Decimal("12.30")`` → 12.30)."""
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: One decoder for every response (``json.loads`` with these options would build one per call).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def decode_json(data: bytes | str) -> Any:
    """Parse JSON keeping fractional numbers exact (``Decimal``); ``NaN``/``Infinity`` are errors.

    Accepts what ``json.loads`` accepts (bytes in UTF-8, -16 or -32). Raises ``ValueError``
    (``json.JSONDecodeError`` is one) on malformed input.
    """
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    else:
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    return _DECODER.decode(data)
