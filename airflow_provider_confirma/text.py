"""How lists and free text are shortened in messages and log lines: ``a, b (+7 more)``, ``text…``.

The base layer (standard library only): the domain, the hook and the sandbox use the same two
functions, so every "(+N more)" and every cut text reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["QUOTED_TEXT_LIMIT", "bounded", "clipped"]

#: How many characters of a record's free text (its ``description``) a message or log line quotes.
QUOTED_TEXT_LIMIT = 80


def clipped(text: str, limit: int = QUOTED_TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with ``…`` when cut (an API's text can be any length)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def bounded(items: Sequence[str], limit: int = 10, total: int | None = None, sep: str = ", ") -> str:
    """``a, b, c (+7 more)`` for log lines and messages: the first ``limit`` items joined by ``sep``,
    and how many more of ``total`` (default ``len(items)``); ``-`` when there are none. The one
    "(+N more)" formatter."""
    total = len(items) if total is None else total
    if not total:
        return "-"
    shown = sep.join(items[:limit])
    return shown if total <= limit else f"{shown} (+{total - limit} more)"
