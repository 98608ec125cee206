"""Typed records and status vocabulary of the accounting sync endpoints.

The docs show ``status`` 0 = pending and 1 = synced and leave the failure code undocumented
(confirma-api.md §8.1). So the success and pending sets are configurable (:class:`StatusSets`) and
every other value, including a missing or non-integer one, counts as not successful.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any

import pendulum
from pendulum import Date

from airflow_provider_confirma.arguments import DEFAULT_PENDING_STATUSES, DEFAULT_SUCCESS_STATUSES, check_status_sets
from airflow_provider_confirma.text import bounded, clipped


class SyncState(str, Enum):
    """Where one submitted record stands, as the provider judges it."""

    SYNCED = "synced"
    PENDING = "pending"
    FAILED = "failed"
    MISSING = "missing"  # not (yet) in the status response: counted as pending


@dataclass(frozen=True)
class StatusSets:
    """Which ``status`` codes mean synced and which mean still pending; anything else failed."""

    success: frozenset[int] = DEFAULT_SUCCESS_STATUSES
    pending: frozenset[int] = DEFAULT_PENDING_STATUSES

    @classmethod
    def build(cls, success: Any = None, pending: Any = None) -> StatusSets:
        """Validate user input (lists, sets, strings of digits) into a :class:`StatusSets`."""
        success_codes, pending_codes = check_status_sets(success, pending)
        return cls(success=success_codes, pending=pending_codes)

    def classify(self, status: Any) -> SyncState:
        if isinstance(status, bool) or not isinstance(status, int):
            return SyncState.FAILED
        if status in self.success:
            return SyncState.SYNCED
        if status in self.pending:
            return SyncState.PENDING
        return SyncState.FAILED

    def to_primitives(self) -> dict[str, list[int]]:
        return {"success": sorted(self.success), "pending": sorted(self.pending)}


@lru_cache(maxsize=4096)
def _plain_date(value: str) -> Date:
    """``YYYY-MM-DD`` as a pendulum ``Date`` (immutable, so shared): a status body repeats few dates."""
    plain = date.fromisoformat(value)
    return Date(plain.year, plain.month, plain.day)


def parse_date(value: Any, field_name: str) -> Date | None:
    """An ISO date (or date-time) from the API as a pendulum ``Date``; ``None`` stays ``None``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field_name} is not a date string: {value!r}")
    if len(value) == 10:  # fast path for the usual YYYY-MM-DD (status bodies hold thousands)
        try:
            return _plain_date(value)
        except ValueError:
            pass
    try:
        parsed = pendulum.parse(value, strict=False)
    except ValueError:  # pendulum's ParserError does not name the field
        raise ValueError(f"{field_name} is not a date: {value!r}") from None
    if isinstance(parsed, pendulum.DateTime):
        return parsed.date()
    if isinstance(parsed, Date):
        return parsed
    raise ValueError(f"{field_name} is not a date: {value!r}")


def _iso(value: Date | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """Fields common to the accounting sync status records (payments and ledgers)."""

    source_identifier: str
    status: int | None
    description: str | None
    sync_date: Date | None

    def state(self, status_sets: StatusSets) -> SyncState:
        return status_sets.classify(self.status)


@dataclass(frozen=True, slots=True)
class PaymentSyncRecord(SyncRecord):
    """One entry of ``GET /accounting/payment`` (``payments[]``)."""

    invoice_number: str | None = None
    payment_date: Date | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> PaymentSyncRecord:
        common = _common_fields(raw)
        return cls(
            **common,
            invoice_number=_opt_str(raw.get("invoiceNumber")),
            payment_date=parse_date(raw.get("paymentDate"), "paymentDate"),
            extra=_extra(raw, _PAYMENT_KEYS),
        )

    def to_xcom(self) -> dict[str, Any]:
        return {
            "sourceIdentifier": self.source_identifier,
            "invoiceNumber": self.invoice_number,
            "paymentDate": _iso(self.payment_date),
            "syncDate": _iso(self.sync_date),
            "status": self.status,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class LedgerSyncRecord(SyncRecord):
    """One entry of ``GET /accounting/ledger`` (``ledgers[]``)."""

    document_date: Date | None = None
    document_name: str | None = None
    document_status: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> LedgerSyncRecord:
        common = _common_fields(raw)
        return cls(
            **common,
            document_date=parse_date(raw.get("documentDate"), "documentDate"),
            document_name=_opt_str(raw.get("documentName")),
            document_status=_opt_str(raw.get("documentStatus")),
            extra=_extra(raw, _LEDGER_KEYS),
        )

    def to_xcom(self) -> dict[str, Any]:
        return {
            "sourceIdentifier": self.source_identifier,
            "documentDate": _iso(self.document_date),
            "documentName": self.document_name,
            "documentStatus": self.document_status,
            "syncDate": _iso(self.sync_date),
            "status": self.status,
            "description": self.description,
        }


_COMMON_KEYS = frozenset({"sourceIdentifier", "status", "description", "syncDate"})
_PAYMENT_KEYS = _COMMON_KEYS | {"invoiceNumber", "paymentDate"}
_LEDGER_KEYS = _COMMON_KEYS | {"documentDate", "documentName", "documentStatus"}


def _extra(raw: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The fields of ``raw`` outside ``known`` (kept aside, never an error)."""
    if raw.keys() <= known:
        return {}
    return {k: v for k, v in raw.items() if k not in known}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _common_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    ident, problem = _identifier(raw)
    if problem is not None:
        raise ValueError(problem)
    status = raw.get("status")
    return {
        "source_identifier": ident,
        # Unknown shapes (null, strings, floats) are kept as None: classify() calls them failed.
        "status": status if isinstance(status, int) and not isinstance(status, bool) else None,
        "description": _opt_str(raw.get("description")),
        "sync_date": parse_date(raw.get("syncDate"), "syncDate"),
    }


@dataclass
class SyncProgress:
    """The verdict over a set of tracked identifiers after one status poll."""

    synced: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: the tracked identifiers that have a record, in tracking order
    found: list[str] = field(default_factory=list)
    #: the response's records by identifier (typed when read, see :class:`StatusIndex`)
    index: Mapping[str, SyncRecord] = field(default_factory=dict, repr=False)
    #: the record that decided an identifier listed more than once (see :func:`decisive_record`)
    picked: dict[str, Any] | None = field(default=None, repr=False)
    #: records of the response set aside as unreadable (no usable ``sourceIdentifier``): how many,
    #: and the first few as ``payments[3]: record has no sourceIdentifier``
    unreadable: int = 0
    unreadable_sample: tuple[str, ...] = ()

    def record(self, ident: str) -> SyncRecord:
        """The (typed) record that decided ``ident``'s state."""
        item = self.picked.get(ident) if self.picked else None
        if item is None:
            return self.index[ident]
        index = self.index
        return index.typed(ident, item) if isinstance(index, StatusIndex) else item

    @property
    def records(self) -> dict[str, SyncRecord]:
        """Record per tracked identifier that has one, in tracking order (each one typed)."""
        return {ident: self.record(ident) for ident in self.found}

    def record_list(self, limit: int | None = None) -> list[SyncRecord]:
        """The first ``limit`` records of :attr:`records`; only those are typed."""
        found = self.found if limit is None else self.found[:limit]
        return [self.record(ident) for ident in found]

    @property
    def total(self) -> int:
        return len(self.synced) + len(self.pending) + len(self.failed) + len(self.missing)

    @property
    def done(self) -> bool:
        return not self.pending and not self.missing and not self.failed

    def counts(self) -> dict[str, int]:
        return {
            "total": self.total,
            "synced": len(self.synced),
            "pending": len(self.pending),
            "failed": len(self.failed),
            "missing": len(self.missing),
        }

    def describe(self, limit: int = 5) -> str:
        """A one-line progress text such as ``3/5 synced; waiting: a, b; failed: -``."""
        waiting = self.pending + self.missing
        failed = [f"{i} ({clipped(self.record(i).description or 'no description')})" for i in self.failed[: limit + 1]]
        return (
            f"{len(self.synced)}/{self.total} synced; waiting: {bounded(waiting, limit)}; "
            f"failed: {bounded(failed, limit, len(self.failed))}"
        )

    def failure_details(self, limit: int = 10) -> list[dict[str, Any]]:
        details = []
        for ident in self.failed[:limit]:
            record = self.record(ident)
            details.append({"sourceIdentifier": ident, "status": record.status, "description": record.description})
        return details


def evaluate_sync(
    records: Iterable[SyncRecord],
    status_sets: StatusSets,
    identifiers: Sequence[str] | None = None,
) -> SyncProgress:
    """Judge sync progress: of ``identifiers`` if given, else of every record returned.

    An identifier listed more than once is judged by :func:`decisive_record` (not by list order).
    Identifiers with no record are ``missing`` (still waiting). With no identifiers, the wait is
    over when nothing is pending.
    """
    return evaluate_index(index_records(records), status_sets, identifiers)


class RecordIndex(dict[str, SyncRecord]):
    """Typed records by identifier (the first listed); ``duplicates`` keeps every record of an
    identifier listed more than once, in list order."""

    __slots__ = ("duplicates",)

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: dict[str, tuple[SyncRecord, ...]] = {}


def index_records(records: Iterable[SyncRecord]) -> RecordIndex:
    """Typed records by identifier, keeping every record of a duplicated identifier (see :class:`RecordIndex`)."""
    index = RecordIndex()
    duplicates: dict[str, list[SyncRecord]] = {}
    for record in records:
        ident = record.source_identifier
        if ident in index:
            duplicates.setdefault(ident, [index[ident]]).append(record)
        else:
            index[ident] = record
    index.duplicates = {ident: tuple(group) for ident, group in duplicates.items()}
    return index


def decisive_record(items: Sequence[Any], status_sets: StatusSets) -> Any:
    """Which of the records of one identifier decides its state, whatever their order.

    Any pending record makes the identifier pending; else any failed one makes it failed; else
    it is synced. The first listed record in the deciding state is the one shown. ``items`` are
    typed records or the raw dicts of a :class:`StatusIndex`.
    """
    states = [status_sets.classify(item.get("status") if isinstance(item, Mapping) else item.status) for item in items]
    for wanted in (SyncState.PENDING, SyncState.FAILED):
        for item, state in zip(items, states, strict=True):
            if state is wanted:
                return item
    return items[0]


def evaluate_index(
    index: Mapping[str, SyncRecord],
    status_sets: StatusSets,
    identifiers: Sequence[str] | None = None,
) -> SyncProgress:
    """:func:`evaluate_sync` over records already indexed by identifier.

    One pass over the tracked identifiers: a trigger judges one shared index for every waiter.
    A :class:`StatusIndex` is judged on its raw ``status`` values, without typing a record. An
    identifier listed more than once (``index.duplicates``) is judged by :func:`decisive_record`.

    Unreadable records of a :class:`StatusIndex` (no usable ``sourceIdentifier``) are skipped, and
    counted in the progress, when ``identifiers`` are given: they cannot be any of them. Judging
    every record (``identifiers=None``) cannot skip one, so it raises ``ValueError`` naming the first.
    """
    status_index = index if isinstance(index, StatusIndex) else None
    raw = status_index.raw if status_index is not None else None
    progress = SyncProgress(index=index)
    if status_index is not None and status_index.unreadable:
        if identifiers is None:
            raise ValueError(status_index.unreadable_text())
        progress.unreadable, progress.unreadable_sample = status_index.unreadable, status_index.unreadable_sample
    tracked: Iterable[str] = dict.fromkeys(identifiers) if identifiers is not None else index
    synced, pending, failed, missing = progress.synced, progress.pending, progress.failed, progress.missing
    found_ids = progress.found
    success_codes, pending_codes = status_sets.success, status_sets.pending
    lookup: Mapping[str, Any] = raw if raw is not None else index
    duplicates: Mapping[str, Sequence[Any]] | None = getattr(index, "duplicates", None) or None
    for ident in tracked:
        found = lookup.get(ident)
        if found is None:
            missing.append(ident)
            continue
        found_ids.append(ident)
        if duplicates is not None and ident in duplicates:
            found = decisive_record(duplicates[ident], status_sets)
            if progress.picked is None:
                progress.picked = {}
            progress.picked[ident] = found
        status = found.get("status") if raw is not None else found.status
        if type(status) is not int:  # None, bool or anything odd: classify() decides (FAILED)
            state = status_sets.classify(status)
            (synced if state is SyncState.SYNCED else pending if state is SyncState.PENDING else failed).append(ident)
        elif status in success_codes:
            synced.append(ident)
        elif status in pending_codes:
            pending.append(ident)
        else:
            failed.append(ident)
    return progress


#: How many unreadable records a :class:`StatusIndex` describes (the rest are counted).
UNREADABLE_SAMPLE = 5


class StatusIndex(Mapping[str, SyncRecord]):
    """The records of one status response by identifier, each typed only when it is read.

    Judging a wait reads just the ``status`` of the tracked identifiers from the decoded JSON
    (:func:`evaluate_index`), so a 100,000-record response costs no typed record, and the plain
    dicts of the JSON give the garbage collector nothing to follow. Summaries and messages type
    the few records they show. ``record_type.from_api`` runs on every read (nothing is cached), so
    a malformed field of a record is reported when a wait shows that record.

    ``raw`` holds the first record of each identifier; ``duplicates`` every record of an identifier
    listed more than once (judged by :func:`decisive_record`). Records without a usable
    ``sourceIdentifier`` are not indexed: ``unreadable`` counts them and ``unreadable_sample`` names
    the first :data:`UNREADABLE_SAMPLE` (position and reason). One poll serves every waiter, so the
    index is built leniently and each judgement decides whether they matter (:func:`evaluate_index`).
    """

    __slots__ = ("duplicates", "list_key", "raw", "record_type", "unreadable", "unreadable_sample")

    def __init__(
        self,
        raw: dict[str, Mapping[str, Any]],
        record_type: type[SyncRecord],
        list_key: str,
        duplicates: dict[str, tuple[Mapping[str, Any], ...]] | None = None,
        unreadable: int = 0,
        unreadable_sample: tuple[str, ...] = (),
    ) -> None:
        self.raw = raw
        self.record_type = record_type
        self.list_key = list_key
        self.duplicates = duplicates or {}
        self.unreadable = unreadable
        self.unreadable_sample = unreadable_sample

    def typed(self, ident: str, item: Mapping[str, Any]) -> SyncRecord:
        """``item`` (a raw record of ``ident``) as a typed record; ``ValueError`` names it."""
        try:
            return self.record_type.from_api(item)  # type: ignore[attr-defined]
        except ValueError as err:
            raise ValueError(f"{self.list_key} record {ident!r}: {err}") from None

    def unreadable_text(self) -> str:
        """``payments[1]: record has no sourceIdentifier (+2 more unreadable records)``."""
        more = self.unreadable - 1
        first = self.unreadable_sample[0] if self.unreadable_sample else f"{self.list_key}: unreadable record"
        return first if more <= 0 else f"{first} (+{more} more unreadable record{'s' if more > 1 else ''})"

    def __getitem__(self, ident: str) -> SyncRecord:
        return self.typed(ident, self.raw[ident])

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __contains__(self, ident: object) -> bool:
        return ident in self.raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.raw)} {self.list_key})"


def _identifier(item: Any) -> tuple[str, None] | tuple[None, str]:
    """``(sourceIdentifier as text, None)`` of one raw record, or ``(None, what is wrong)``.

    The API documents the identifier as a string. An integer (``12345``) is read as its decimal
    text (``"12345"``), the form a submit sent it in; ``null``, a missing or empty one, a boolean,
    a float or anything else makes the record unreadable.
    """
    if not isinstance(item, Mapping):
        return None, "record is null" if item is None else f"record is not an object: {_json_type(item)}"
    ident = item.get("sourceIdentifier")
    if ident is None or ident == "":
        return None, "record has no sourceIdentifier"
    if type(ident) is str:
        return ident, None
    if isinstance(ident, int) and not isinstance(ident, bool):
        return str(ident), None
    return None, f"sourceIdentifier is not a string: {_json_type(ident)}"


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (``number`` also for a ``Decimal``), for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return "number" if isinstance(value, (int, float, Decimal)) else type(value).__name__


def _status_items(body: Any, list_key: str) -> list[Any]:
    """The record list of a status response body (``None`` for 204 means none), else ``ValueError``."""
    if body is None:
        return []
    if not isinstance(body, Mapping):
        raise ValueError(f"expected a JSON object with a '{list_key}' list, got {type(body).__name__}")
    if list_key not in body:
        # Not "no records": a submit that trusted it would resend what Confirma already has.
        raise ValueError(f"expected a JSON object with a '{list_key}' list, got keys {sorted(body)[:10]}")
    items = body[list_key]
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError(f"'{list_key}' is not a list")
    return items


def index_sync_records(body: Any, list_key: str, record_type: type[SyncRecord]) -> StatusIndex:
    """A :class:`StatusIndex` of a status response body.

    Raises ``ValueError`` when the body is not ``{list_key: [...]}``. A record without a usable
    ``sourceIdentifier`` is set aside (counted, the first few named); an identifier listed more
    than once keeps all its records. Other fields are read when a record is shown.
    """
    items = _status_items(body, list_key)
    try:  # the usual body, in one pass: every record an object keyed by a distinct non-empty string
        raw: dict[str, Mapping[str, Any]] = {item["sourceIdentifier"]: item for item in items}
        usual = (
            len(raw) == len(items)
            and all(type(ident) is str and ident for ident in raw)
            and all(type(item) is dict for item in items)
        )
    except (KeyError, TypeError, IndexError):
        usual = False
    if usual:
        return StatusIndex(raw, record_type, list_key)
    raw = {}
    duplicates: dict[str, list[Mapping[str, Any]]] = {}
    unreadable, sample = 0, list[str]()
    for position, item in enumerate(items):
        ident, problem = _identifier(item)
        if ident is None:
            unreadable += 1
            if len(sample) < UNREADABLE_SAMPLE:
                sample.append(f"{list_key}[{position}]: {problem}")
        elif ident in raw:
            duplicates.setdefault(ident, [raw[ident]]).append(item)
        else:
            raw[ident] = item
    groups = {ident: tuple(group) for ident, group in duplicates.items()}
    return StatusIndex(raw, record_type, list_key, groups, unreadable, tuple(sample))


def parse_sync_records(body: Any, list_key: str, record_type: type[SyncRecord]) -> list[Any]:
    """Typed records from a status response body (``None`` for 204 means no records).

    Raises ``ValueError`` naming the problem when the body is not ``{list_key: [...]}`` or a record
    lacks its ``sourceIdentifier``; unknown extra fields are kept aside, never an error.
    """
    out = []
    for index, item in enumerate(_status_items(body, list_key)):
        try:
            out.append(record_type.from_api(item))  # type: ignore[attr-defined]
        except ValueError as err:
            raise ValueError(f"{list_key}[{index}]: {err}") from None
    return out
