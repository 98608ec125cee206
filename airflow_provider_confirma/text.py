"""How lists and free text are shortened in every message and log line: ``a, b (+7 more)``, ``text…``."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["QUOTED_TEXT_LIMIT", "bounded", "clipped"]

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
