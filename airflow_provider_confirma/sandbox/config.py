"""The sandbox's settings: behaviour of the fake API (:class:`SandboxConfig`) and of its chaos (:class:`ChaosConfig`).

Plain dataclasses with ``from_dict``/``to_dict`` so the CLI, the admin endpoint and the pytest
fixture share one vocabulary; bad values raise ``ValueError`` naming the setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from typing import Any

DEFAULT_API_KEY = "confirma-sandbox-key"
DEFAULT_PROVISIONING_TOKEN = "confirma-sandbox-provisioning-token"  # noqa: S105 - a fixed sandbox value
DUPLICATE_POLICIES = ("accept", "reject")
#: the settings that are secrets: never on a command line, in a repr or in an admin response
SECRET_SETTINGS = ("api_key", "provisioning_token")
#: where the CLI (and so :class:`~.server.SandboxProcess`) reads them from when no file is given
API_KEY_ENV = "CONFIRMA_SANDBOX_API_KEY"
PROVISIONING_TOKEN_ENV = "CONFIRMA_SANDBOX_PROVISIONING_TOKEN"  # noqa: S105 - a variable name

#: Chaos outcomes, each drawn with its own probability. ``reset`` drops the connection before the
#: request is handled; ``reset_after_body`` handles it (a POST is stored) and then drops the
#: connection without a response; ``malformed_json``/``wrong_content_type`` handle the request and
#: then spoil a 200 response.
CHAOS_OUTCOMES = (
    "error_500",
    "error_502",
    "error_503",
    "rate_limit",
    "reset",
    "reset_after_body",
    "malformed_json",
    "wrong_content_type",
)
#: Names accepted in ``ChaosConfig.script`` (``ok`` = behave normally).
SCRIPT_NAMES = (*CHAOS_OUTCOMES, "ok", "500", "502", "503", "429")
_SCRIPT_ALIASES = {"500": "error_500", "502": "error_502", "503": "error_503", "429": "rate_limit"}


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value) >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    return tuple(item.strip() for item in value)


@dataclass(frozen=True)
class ChaosConfig:
    """Misbehaviour injected into API requests (never into ``/_sandbox``), deterministic per ``seed``.

    Each request that matches ``methods``/``paths`` (empty = all) first takes the next entry of
    ``script`` (if any is left), else draws one outcome from the fractions (their sum must be
    <= 1); with ``latency_ms`` it is delayed, for a ``latency_rate`` fraction of requests. The n-th
    request to a path always gets the same draw for the same seed.
    """

    error_500: float = 0.0
    error_502: float = 0.0
    error_503: float = 0.0
    rate_limit: float = 0.0
    reset: float = 0.0
    reset_after_body: float = 0.0
    malformed_json: float = 0.0
    wrong_content_type: float = 0.0
    latency_ms: float = 0.0
    latency_rate: float = 1.0
    #: ``Retry-After`` seconds sent with 429 (and 503) responses
    retry_after: int = 1
    seed: int = 0
    #: HTTP methods chaos applies to, e.g. ``("GET",)``; empty = all
    methods: tuple[str, ...] = ()
    #: API paths chaos applies to: relative (``/accounting/payment``), absolute, or ``"GET /path"``
    paths: tuple[str, ...] = ()
    #: outcomes for the next matching requests, in order (``ok`` = none), before fractions apply
    script: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        total = 0.0
        for name in CHAOS_OUTCOMES:
            total += _fraction(name, getattr(self, name))
        if total > 1.0 + 1e-9:
            raise ValueError(f"chaos fractions add up to {total:g}; their sum must be <= 1")
        _non_negative("latency_ms", self.latency_ms)
        _fraction("latency_rate", self.latency_rate)
        if _integer("retry_after", self.retry_after) < 0:
            raise ValueError(f"retry_after must be >= 0, got {self.retry_after!r}")
        _integer("seed", self.seed)
        object.__setattr__(self, "methods", tuple(m.upper() for m in _strings("methods", self.methods)))
        object.__setattr__(self, "paths", _strings("paths", self.paths))
        script = []
        for item in _strings("script", self.script):
            if item not in SCRIPT_NAMES:
                raise ValueError(f"script entry {item!r} is not one of {', '.join(SCRIPT_NAMES)}")
            script.append(_SCRIPT_ALIASES.get(item, item))
        object.__setattr__(self, "script", tuple(script))

    @property
    def active(self) -> bool:
        return bool(self.script) or self.latency_ms > 0 or any(getattr(self, n) > 0 for n in CHAOS_OUTCOMES)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ChaosConfig:
        return cls(**_known(cls, data or {}, "chaos"))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("methods", "paths", "script"):
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class SandboxConfig:
    """How the fake Confirma API behaves.

    Accounting payments and ledgers start pending (status 0) and after ``sync_delay`` seconds become
    synced (1) or, when their identifier matches ``failure_pattern`` (a regex, searched) or falls in
    the seeded ``failure_rate`` fraction, failed (``failure_status`` with ``failure_description``).
    Seeded invoices, cases, payments and settlements are generated from ``seed`` around
    ``anchor_date`` (default: today, UTC).
    """

    #: the accepted ``X-Api-Key``; also the key of the ``/_sandbox`` admin endpoints
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    #: the key accepted by ``POST /client``
    provisioning_token: str = field(default=DEFAULT_PROVISIONING_TOKEN, repr=False)
    sync_delay: float = 1.0
    failure_rate: float = 0.0
    failure_pattern: str | None = None
    failure_status: int = 2
    failure_description: str = "Sync failed: rejected by the target accounting system"
    #: what a second POST with a known identifier gets: ``accept`` (200, counted, first one kept)
    #: or ``reject`` (409, nothing stored)
    duplicate_policy: str = "accept"
    seed: int = 0
    seed_invoices: int = 8
    anchor_date: date | None = None
    chaos: ChaosConfig = field(default_factory=ChaosConfig)

    def __post_init__(self) -> None:
        for name in SECRET_SETTINGS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
        _non_negative("sync_delay", self.sync_delay)
        _fraction("failure_rate", self.failure_rate)
        if self.failure_pattern is not None:
            if not isinstance(self.failure_pattern, str):
                raise ValueError(f"failure_pattern must be a regular expression string, got {self.failure_pattern!r}")
            try:
                re.compile(self.failure_pattern)
            except re.error as err:
                raise ValueError(f"failure_pattern {self.failure_pattern!r} is not a valid regex: {err}") from None
        if _integer("failure_status", self.failure_status) in (0, 1):
            raise ValueError("failure_status must not be 0 (pending) or 1 (synced)")
        if not isinstance(self.failure_description, str):
            raise ValueError("failure_description must be a string")
        if self.duplicate_policy not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicate_policy must be one of {DUPLICATE_POLICIES}, got {self.duplicate_policy!r}")
        _integer("seed", self.seed)
        if _integer("seed_invoices", self.seed_invoices) < 0 or self.seed_invoices > 1000:
            raise ValueError("seed_invoices must be between 0 and 1000")
        if isinstance(self.anchor_date, str):
            try:
                object.__setattr__(self, "anchor_date", date.fromisoformat(self.anchor_date))
            except ValueError:
                raise ValueError(f"anchor_date must be YYYY-MM-DD, got {self.anchor_date!r}") from None
        elif self.anchor_date is not None and not isinstance(self.anchor_date, date):
            raise ValueError(f"anchor_date must be a date, got {self.anchor_date!r}")
        if isinstance(self.chaos, Mapping):
            object.__setattr__(self, "chaos", ChaosConfig.from_dict(self.chaos))
        elif not isinstance(self.chaos, ChaosConfig):
            raise ValueError("chaos must be a ChaosConfig or a mapping")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SandboxConfig:
        return cls(**_known(cls, data or {}, "sandbox config"))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["anchor_date"] = self.anchor_date.isoformat() if self.anchor_date else None
        out["chaos"] = self.chaos.to_dict()
        return out

    def public_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the secrets (what the admin endpoints show)."""
        out = self.to_dict()
        for name in SECRET_SETTINGS:
            del out[name]
        return out

    def updated(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """A copy with ``changes`` applied (validated); ``chaos`` may be a partial mapping."""
        changes = dict(_known(type(self), changes, "sandbox config"))
        if isinstance(changes.get("chaos"), Mapping):
            changes["chaos"] = ChaosConfig.from_dict({**self.chaos.to_dict(), **changes["chaos"]})
        return replace(self, **changes)


def _known(cls: type, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return dict(data)
