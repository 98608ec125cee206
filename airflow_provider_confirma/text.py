"""How values are named and lists and free text shortened in messages: ``array``, ``a, b (+7 more)``, ``text…``."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

__all__ = ["QUOTED_TEXT_LIMIT", "bounded", "clipped", "json_type"]

#: How many characters of a record's free text (its ``description``) a message or log line quotes.
QUOTED_TEXT_LIMIT = 80


def clipped(text: str, limit: int = QUOTED_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with ``…`` when cut (an API's text can be any length)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def bounded(items: Sequence[str], limit: int = 10, total: int | None = None, sep: str = ", ") -> str:
    """The first ``limit`` items joined by ``sep`` and how many more of ``total`` (``len(items)``); ``-``: none."""
    total = len(items) if total is None else total
    if not total:
        return "-"
    shown = sep.join(items[:limit])
    return shown if total <= limit else f"{shown} (+{total - limit} more)"


def json_type(value: object) -> str:
    """The JSON name of a value's type (``object``, ``array``, ``string``, ...); else its Python type name."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__
