"""The sandbox's memory and rules, without HTTP: stored submissions, sync progression, seeded
data, duplicates, request statistics, chaos decisions and runtime configuration.

All methods are thread-safe (one lock): the server runs them on its event loop, and an in-process
caller may read them from another thread. Sync status bodies are cached as bytes and rebuilt only
when a record changes, so the status endpoints stay cheap under load.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from airflow_provider_confirma.endpoints import API_PREFIX
from airflow_provider_confirma.sandbox.config import CHAOS_OUTCOMES, SECRET_SETTINGS, ChaosConfig, SandboxConfig
from airflow_provider_confirma.sandbox.seed import InvoiceInfo, build_seed_data

PENDING, SYNCED = 0, 1
PENDING_TEXT, SYNCED_TEXT = "Pending", "Successfully synced"
#: sandbox: documentStatus of stored ledgers (the docs show only "Approved")
LEDGER_DOCUMENT_STATUS = "Approved"
FIRST_POSTED_CASE_ID = 700001
DUPLICATE_SAMPLE = 100

#: accounting kinds: list key in the status body, identifier field in the POST body
SYNC_KINDS = {"payments": "paymentIdentifier", "ledgers": "ledgerIdentifier"}


def unit_draw(*parts: Any) -> float:
    """A uniform number in [0, 1) fixed by ``parts`` (seed, purpose, path, counter...)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# -- chaos -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChaosDecision:
    latency: float = 0.0
    outcome: str | None = None


NO_CHAOS = ChaosDecision()


class ChaosEngine:
    """Draws the chaos outcome of each API request; the n-th request to a path always draws the same."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.active = config.active
        self.counters: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        self.script_pos = 0
        self._paths: list[tuple[str | None, str]] = []
        for entry in config.paths:
            method: str | None = None
            path = entry.strip()
            if " " in path:
                method, path = path.split(None, 1)
                method = method.upper()
            if path.startswith(API_PREFIX):
                path = path[len(API_PREFIX) :]
            self._paths.append((method, path.rstrip("/") or "/"))

    def _matches(self, method: str, rel_path: str) -> bool:
        if self.config.methods and method not in self.config.methods:
            return False
        if not self._paths:
            return True
        return any(path == rel_path and (m is None or m == method) for m, path in self._paths)

    def decide(self, method: str, rel_path: str) -> ChaosDecision:
        cfg = self.config
        if not self.active or not self._matches(method, rel_path):
            return NO_CHAOS
        key = f"{method} {rel_path}"
        self.counters[key] += 1
        n = self.counters[key]
        outcome: str | None = None
        if self.script_pos < len(cfg.script):
            outcome = cfg.script[self.script_pos]
            self.script_pos += 1
            if outcome == "ok":
                outcome = None
        else:
            draw = unit_draw(cfg.seed, "outcome", key, n)
            edge = 0.0
            for name in CHAOS_OUTCOMES:
                edge += getattr(cfg, name)
                if draw < edge:
                    outcome = name
                    break
        latency = 0.0
        if cfg.latency_ms > 0 and unit_draw(cfg.seed, "latency", key, n) < cfg.latency_rate:
            latency = cfg.latency_ms / 1000.0
            self.applied["latency"] += 1
        if outcome:
            self.applied[outcome] += 1
        return ChaosDecision(latency, outcome) if (latency or outcome) else NO_CHAOS


# -- accounting sync records -----------------------------------------------------------------------
@dataclass
class SyncItem:
    identifier: str
    #: status-record fields other than syncDate/status/description, in response order
    fields: dict[str, Any]
    body: Any
    ready_at: float
    fails: bool
    failure_status: int
    failure_description: str
    status: int = PENDING
    sync_date: str | None = None
    fragment: bytes = b""

    def render(self) -> None:
        description = {PENDING: PENDING_TEXT, SYNCED: SYNCED_TEXT}.get(self.status, self.failure_description)
        self.fragment = _dump(
            {**self.fields, "syncDate": self.sync_date, "status": self.status, "description": description}
        )

    def settle(self) -> None:
        if self.fails:
            self.status = self.failure_status
        else:
            self.status, self.sync_date = SYNCED, today_utc().isoformat()
        self.render()


class SyncStore:
    """Stored submissions of one kind; the status body is cached and rebuilt only on change."""

    def __init__(self, list_key: str) -> None:
        self.list_key = list_key
        self.items: dict[str, SyncItem] = {}
        self.pending: set[str] = set()
        self.next_ready = float("inf")
        self._body: bytes | None = None
        self._dirty = False
        self._head = f'{{"{list_key}":['.encode()

    def add(self, item: SyncItem) -> None:
        item.render()
        self.items[item.identifier] = item
        self.pending.add(item.identifier)
        self.next_ready = min(self.next_ready, item.ready_at)
        self._dirty = True

    def settle_due(self, now: float) -> int:
        if now < self.next_ready:
            return 0
        due = [ident for ident in self.pending if self.items[ident].ready_at <= now]
        for ident in due:
            self.items[ident].settle()
            self.pending.discard(ident)
        self.next_ready = min((self.items[i].ready_at for i in self.pending), default=float("inf"))
        self._dirty = self._dirty or bool(due)
        return len(due)

    def body(self, now: float) -> bytes | None:
        """The status response body, or ``None`` when nothing is stored (HTTP 204)."""
        self.settle_due(now)
        if self._dirty:
            self._dirty = False
            self._body = self._head + b",".join(i.fragment for i in self.items.values()) + b"]}" if self.items else None
        return self._body

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(item.fragment) | {"submitted": item.body} for item in self.items.values()]


@dataclass
class SubmitResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: bool = False


# -- the state -------------------------------------------------------------------------------------
class SandboxState:
    """Everything the sandbox remembers; reset to its start configuration with :meth:`reset`."""

    def __init__(self, config: SandboxConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_config = config or SandboxConfig()
        self.clock = clock
        self.lock = threading.RLock()
        self.started_at = time.time()
        self.reset(restore_config=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def reset(self, restore_config: bool = True) -> None:
        """Forget submissions, counters and renewed keys; rebuild seeded data (and restore config)."""
        with self.lock:
            if restore_config:
                self.config = self.initial_config
            self.chaos = ChaosEngine(self.config.chaos)
            self.stores = {kind: SyncStore(kind) for kind in SYNC_KINDS}
            self.invoices: dict[int, InvoiceInfo] = {}
            self._build_seed_data()
            self.actions: list[dict[str, Any]] = []
            self.clients: list[dict[str, Any]] = []
            self.extra_keys: set[str] = set()
            self.next_case_id = FIRST_POSTED_CASE_ID
            self.requests: Counter[str] = Counter()
            self.responses: dict[str, Counter[str]] = {}
            self.queries: dict[str, deque[dict[str, str]]] = {}
            self.duplicates: Counter[str] = Counter()
            self.duplicate_ids: dict[str, deque[str]] = {}
            self._failure_re = re.compile(self.config.failure_pattern) if self.config.failure_pattern else None

    def configure(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Apply runtime changes (validated); they affect submissions made afterwards.

        Changing ``seed``, ``seed_invoices`` or ``anchor_date`` regenerates the seeded data. The keys
        are fixed at start (clients already hold them).
        """
        fixed = sorted(set(SECRET_SETTINGS) & set(changes))
        if fixed:
            raise ValueError(f"{', '.join(fixed)} can only be set when the sandbox starts")
        with self.lock:
            new = self.config.updated(changes)
            self.config = new
            if "chaos" in changes:
                self.chaos = ChaosEngine(new.chaos)
            if {"seed", "seed_invoices", "anchor_date"} & set(changes):
                self._build_seed_data()
            self._failure_re = re.compile(new.failure_pattern) if new.failure_pattern else None
            return new

    def _build_seed_data(self) -> None:
        self.anchor = self.config.anchor_date or today_utc()
        seed = build_seed_data(self.config.seed, self.config.seed_invoices, self.anchor)
        posted = {n: i for n, i in self.invoices.items() if not i.seeded}
        self.invoices = {**seed.invoices, **posted}
        self.seed_payments = seed.payments
        self.seed_settlements = seed.settlements

    def set_chaos(self, chaos: Mapping[str, Any] | ChaosConfig | None) -> ChaosConfig:
        """Replace the chaos settings (``None``/``{}`` turns chaos off) and restart its counters."""
        config = chaos if isinstance(chaos, ChaosConfig) else ChaosConfig.from_dict(chaos or {})
        with self.lock:
            self.config = self.config.updated({"chaos": config.to_dict()})
            self.chaos = ChaosEngine(self.config.chaos)
            return self.config.chaos

    def decide_chaos(self, method: str, rel_path: str) -> ChaosDecision:
        with self.lock:
            return self.chaos.decide(method, rel_path)

    # -- auth and statistics ---------------------------------------------------------------------
    def key_ok(self, key: str | None, provisioning: bool = False) -> bool:
        if not key:
            return False
        with self.lock:
            allowed: Iterable[str] = (
                (self.config.provisioning_token,) if provisioning else (self.config.api_key, *self.extra_keys)
            )
            return any(hmac.compare_digest(key.encode(), good.encode()) for good in allowed)

    def admin_key_ok(self, key: str | None) -> bool:
        """The admin endpoints take the start ``api_key`` only (not renewed or client keys)."""
        return bool(key) and hmac.compare_digest(str(key).encode(), self.config.api_key.encode())

    def count_request(self, key: str) -> None:
        with self.lock:
            self.requests[key] += 1

    def count_response(self, key: str, status: int | str) -> None:
        with self.lock:
            self.responses.setdefault(key, Counter())[str(status)] += 1

    def record_query(self, key: str, query: Mapping[str, str]) -> None:
        with self.lock:
            self.queries.setdefault(key, deque(maxlen=20)).append(dict(query))

    def _duplicate(self, kind: str, ident: str) -> None:
        self.duplicates[kind] += 1
        self.duplicate_ids.setdefault(kind, deque(maxlen=DUPLICATE_SAMPLE)).append(ident)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "uptime_seconds": round(time.time() - self.started_at, 3),
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
                "responses": {key: dict(counts) for key, counts in self.responses.items()},
                "queries": {key: list(items) for key, items in self.queries.items()},
                "duplicates": {
                    "total": sum(self.duplicates.values()),
                    **{kind: self.duplicates[kind] for kind in ("payments", "ledgers", "invoices")},
                    "identifiers": {kind: list(ids) for kind, ids in self.duplicate_ids.items()},
                },
                "stored": {
                    "payments": len(self.stores["payments"].items),
                    "ledgers": len(self.stores["ledgers"].items),
                    "invoices": sum(1 for i in self.invoices.values() if not i.seeded),
                    "actions": len(self.actions),
                    "clients": len(self.clients),
                },
                "pending": {kind: len(store.pending) for kind, store in self.stores.items()},
                "chaos": dict(self.chaos.applied),
            }

    def records(self) -> dict[str, Any]:
        """Every stored submission, as received (amounts stay ``Decimal``)."""
        with self.lock:
            now = self.clock()
            for store in self.stores.values():
                store.settle_due(now)
            return {
                "payments": self.stores["payments"].records(),
                "ledgers": self.stores["ledgers"].records(),
                "invoices": [i.body for i in self.invoices.values() if not i.seeded],
                "actions": list(self.actions),
                "clients": list(self.clients),
            }

    # -- accounting ------------------------------------------------------------------------------
    def _fails(self, kind: str, ident: str) -> bool:
        if self._failure_re is not None and self._failure_re.search(ident):
            return True
        rate = self.config.failure_rate
        return rate > 0 and unit_draw(self.config.seed, "fail", kind, ident) < rate

    def _new_item(self, kind: str, ident: str, fields: dict[str, Any], body: Any, now: float) -> SyncItem:
        return SyncItem(
            identifier=ident,
            fields=fields,
            body=body,
            ready_at=now + self.config.sync_delay,
            fails=self._fails(kind, ident),
            failure_status=self.config.failure_status,
            failure_description=self.config.failure_description,
        )

    def _submit(self, kind: str, entries: list[tuple[str, dict[str, Any], Any]]) -> SubmitResult:
        result = SubmitResult()
        with self.lock:
            store = self.stores[kind]
            seen: set[str] = set()
            for ident, _, _ in entries:
                if ident in store.items or ident in seen:
                    result.duplicates.append(ident)
                seen.add(ident)
            for ident in result.duplicates:
                self._duplicate(kind, ident)
            if result.duplicates and self.config.duplicate_policy == "reject":
                result.rejected = True
                return result
            now = self.clock()
            for ident, fields, body in entries:
                if ident in store.items:
                    continue
                store.add(self._new_item(kind, ident, fields, body, now))
                result.accepted.append(ident)
        return result

    def submit_payments(self, payments: list[dict[str, Any]]) -> SubmitResult:
        """Store validated ``payments[]`` items (pending); duplicates are counted, never stored twice."""
        return self._submit(
            "payments",
            [
                (
                    p["paymentIdentifier"],
                    {
                        "sourceIdentifier": p["paymentIdentifier"],
                        "invoiceNumber": p["invoiceNumber"],
                        "paymentDate": p["paymentDate"],
                    },
                    p,
                )
                for p in payments
            ],
        )

    def submit_ledger(self, ledger: dict[str, Any]) -> SubmitResult:
        ident = ledger["ledgerIdentifier"]
        fields = {
            "sourceIdentifier": ident,
            "documentDate": ledger["documentDate"],
            "documentName": ledger.get("documentName"),
            "documentStatus": LEDGER_DOCUMENT_STATUS,
        }
        return self._submit("ledgers", [(ident, fields, ledger)])

    def status_body(self, kind: str) -> bytes | None:
        """The cached ``GET /accounting/{payment,ledger}`` body; ``None`` when nothing is stored."""
        with self.lock:
            return self.stores[kind].body(self.clock())

    def settle_all(self) -> int:
        """Let every pending record (and invoice distribution) reach its final state now."""
        with self.lock:
            now = self.clock()
            settled = 0
            for store in self.stores.values():
                for ident in store.pending:
                    store.items[ident].ready_at = now
                store.next_ready = now
                settled += store.settle_due(now)
            for info in self.invoices.values():
                if info.ready_at is not None and info.ready_at > now:
                    info.ready_at = now
            self._settle_invoices(now)
            return settled

    # -- invoices --------------------------------------------------------------------------------
    def submit_invoice(self, body: dict[str, Any]) -> tuple[InvoiceInfo, bool, bool]:
        """Store a validated invoice; returns ``(info, duplicate, rejected)``."""
        header = body["invoice"]["header"]
        number = header["number"]
        with self.lock:
            known = self.invoices.get(number)
            if known is not None:
                self._duplicate("invoices", str(number))
                return known, True, self.config.duplicate_policy == "reject"
            parties = body["invoice"].get("parties") or {}
            processing = body.get("processing") or {}
            distribution = body.get("distribution") or {}
            case_id = None
            if processing.get("paymentControlEnabled") is True:
                case_id, self.next_case_id = self.next_case_id, self.next_case_id + 1
            info = InvoiceInfo(
                number=number,
                invoice_date=date.fromisoformat(header["date"]),
                due_date=date.fromisoformat(header["dueDate"]),
                currency=header["currencyCode"],
                buyer=str((parties.get("buyerParty") or {}).get("name") or ""),
                creditor=str((parties.get("sellerParty") or {}).get("name") or ""),
                case_id=case_id,
                method=str(distribution.get("method") or "EMAIL"),
                distribution_status="NOT_DISTRIBUTED" if distribution.get("enabled") is False else "PENDING",
                distributed_at=None,
                seeded=False,
                ready_at=self.clock() + self.config.sync_delay,
                fails=self._fails("invoices", str(number)),
                body=body,
            )
            self.invoices[number] = info
            return info, False, False

    def _settle_invoices(self, now: float) -> None:
        for info in self.invoices.values():
            if info.distribution_status == "PENDING" and info.ready_at is not None and info.ready_at <= now:
                info.distribution_status = "FAILED" if info.fails else "DELIVERED"
                if not info.fails:
                    info.distributed_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def submit_actions(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            queued = []
            for action in actions:
                self.actions.append(action)
                data = action["data"]
                queued.append(
                    {
                        "code": action["code"],
                        "invoiceNumber": data["invoiceNumber"],
                        "caseId": data["caseId"],
                        "status": "PENDING",
                    }
                )
            return queued

    def distribution(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /invoice/distribution``: filters ``invoiceNumber``, ``fromInvDate``/``toInvDate``
        (last 30 days when neither is given), ``fetchType`` (echoed only)."""
        number = query.get("invoiceNumber")
        start, end = parse_window(query, "fromInvDate", "toInvDate")
        default_window = start is None and end is None
        with self.lock:
            if default_window:
                start, end = self.anchor - timedelta(days=30), self.anchor
            self._settle_invoices(self.clock())
            records = [
                info.distribution_record()
                for info in self.invoices.values()
                if (number is None or str(info.number) == number)
                and (start is None or info.invoice_date >= start)
                and (end is None or info.invoice_date <= end)
            ]
        return {
            "metaData": {
                "totalCount": len(records),
                "successfulCount": sum(r["distributionStatus"] == "DELIVERED" for r in records),
                "failedCount": sum(r["distributionStatus"] == "FAILED" for r in records),
                "filtersApplied": {
                    "invoiceNumber": number,
                    "fromInvDate": start.isoformat() if start else None,
                    "toInvDate": end.isoformat() if end else None,
                    "fetchType": query.get("fetchType"),
                    "defaultLast30Days": default_window,
                },
            },
            "distributions": records,
        }

    def case(self, query: Mapping[str, str]) -> dict[str, Any] | None:
        """``GET /invoice/case`` by ``caseId`` or ``invoiceNumber`` (ValueError when neither)."""
        case_id, number = query.get("caseId"), query.get("invoiceNumber")
        if not case_id and not number:
            raise ValueError("query parameter caseId or invoiceNumber is required")
        with self.lock:
            for info in self.invoices.values():
                if info.case_id is None:
                    continue
                if (case_id and str(info.case_id) == case_id) or (number and str(info.number) == number):
                    return info.case(self.anchor)
        return None

    # -- payments, settlements -------------------------------------------------------------------
    def payments(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /payments`` filtered by ``fromDate``/``toDate`` on the payment date."""
        start, end = parse_window(query, "fromDate", "toDate")
        with self.lock:
            return [
                p
                for p in self.seed_payments
                if (start is None or p["paymentDate"][:10] >= start.isoformat())
                and (end is None or p["paymentDate"][:10] <= end.isoformat())
            ]

    def settlements(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /settlements``; ``fromDate``/``toDate`` (inferred names), else the last 30 days."""
        start, end = parse_window(query, "fromDate", "toDate")
        with self.lock:
            if start is None and end is None:
                start, end = self.anchor - timedelta(days=30), self.anchor
            items = [
                s
                for s in self.seed_settlements
                if (start is None or s["settlementDate"] >= start.isoformat())
                and (end is None or s["settlementDate"] <= end.isoformat())
            ]
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"
        return {"createdAt": created, "settlements": items}

    # -- onboarding ------------------------------------------------------------------------------
    def renew(self) -> str:
        """A new key (the old one keeps working: the docs do not say otherwise)."""
        with self.lock:
            token = (
                f"sandbox-renewed-{len(self.extra_keys) + 1}-"
                + hashlib.sha256(
                    f"{self.config.seed}|{self.config.api_key}|{len(self.extra_keys)}".encode()
                ).hexdigest()[:16]
            )
            self.extra_keys.add(token)
            return token

    def create_client(self, body: dict[str, Any]) -> dict[str, Any]:
        """sandbox: the response field names are not documented; these are the sandbox's own."""
        with self.lock:
            n = len(self.clients) + 1
            key = f"sandbox-client-{n}-" + hashlib.sha256(f"{self.config.seed}|client|{n}".encode()).hexdigest()[:16]
            self.extra_keys.add(key)
            self.clients.append(body)
            return {
                "clientId": n,
                "customerCode": f"SBX{n:05d}",
                "paymentReferencePrefix": f"{7000 + n}",
                "apiKey": key,
            }


def parse_window(query: Mapping[str, str], start_name: str, end_name: str) -> tuple[date | None, date | None]:
    """Two optional ISO date query parameters; ValueError naming the parameter when malformed."""
    out: list[date | None] = []
    for name in (start_name, end_name):
        raw = query.get(name)
        if raw in (None, ""):
            out.append(None)
            continue
        try:
            out.append(date.fromisoformat(str(raw)[:10]))
        except ValueError:
            raise ValueError(f"query parameter {name} must be a date YYYY-MM-DD, got {raw!r}") from None
    return out[0], out[1]
