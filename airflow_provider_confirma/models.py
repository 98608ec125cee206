"""Typed records and status vocabulary of the accounting sync endpoints.

The docs show ``status`` 0 = pending and 1 = synced and leave the failure code undocumented
(confirma-api.md §8.1). So the success and pending sets are configurable (:class:`StatusSets`) and
every other value, including a missing or non-integer one, counts as not successful.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import pendulum
from pendulum import Date

from airflow_provider_confirma.arguments import DEFAULT_PENDING_STATUSES, DEFAULT_SUCCESS_STATUSES, check_status_sets
from airflow_provider_confirma.text import bounded, clipped, json_type

if TYPE_CHECKING:
    from typing import Self


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


def parse_date(value: Any, field_name: str) -> Date | None:
    """An ISO date (or date-time) from the API as a pendulum ``Date``; ``None`` stays ``None``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field_name} is not a date string: {value!r}")
    try:
        return _date_of(value)
    except ValueError:  # pendulum's ParserError does not name the field
        raise ValueError(f"{field_name} is not a date: {value!r}") from None


@lru_cache(maxsize=4096)
def _date_of(text: str) -> Date:
    """Cached: a status body repeats few dates, and a pendulum ``Date`` is immutable, so shared."""
    parsed = pendulum.parse(text, strict=False)
    if isinstance(parsed, pendulum.DateTime):
        return parsed.date()
    if isinstance(parsed, Date):
        return parsed
    raise ValueError(text)  # a time or a duration


def _read_field(key: str, value: Any) -> Any:
    """One API field as its attribute: ``status`` an integer or ``None`` (null, text, a float or a
    boolean, which :meth:`StatusSets.classify` calls failed), ``...Date`` a date, the others text."""
    if key == "status":
        return value if type(value) is int else None
    if key.endswith("Date"):
        return parse_date(value, key)
    return None if value is None else str(value)


def _api_fields(*keys: str) -> dict[str, str]:
    """``{API name: attribute}`` of a record's fields (``invoiceNumber``: ``invoice_number``)."""
    return {key: re.sub("[A-Z]", lambda upper: "_" + upper[0].lower(), key) for key in keys}


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """Fields common to the accounting sync status records (payments and ledgers)."""

    #: the record's API fields and their attributes, in the order :meth:`to_xcom` writes them
    API_FIELDS: ClassVar[dict[str, str]] = {}

    source_identifier: str
    status: int | None
    description: str | None
    sync_date: Date | None
    #: the API's fields outside :attr:`API_FIELDS` (kept aside, never an error)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Self:
        """One record as the API returns it; ``ValueError`` names what cannot be read."""
        ident, problem = _identifier(raw)
        if ident is None:
            raise ValueError(problem)
        known = cls.API_FIELDS
        values = {name: _read_field(key, raw.get(key)) for key, name in known.items() if key != "sourceIdentifier"}
        extra = {} if raw.keys() <= known.keys() else {k: v for k, v in raw.items() if k not in known}
        return cls(source_identifier=ident, extra=extra, **values)

    def to_xcom(self) -> dict[str, Any]:
        """The record in the API's field names, JSON-safe (dates as ISO text), without ``extra``."""
        out = {}
        for key, name in self.API_FIELDS.items():
            value = getattr(self, name)
            out[key] = value.isoformat() if isinstance(value, Date) else value
        return out

    def state(self, status_sets: StatusSets) -> SyncState:
        return status_sets.classify(self.status)


@dataclass(frozen=True, slots=True)
class PaymentSyncRecord(SyncRecord):
    """One entry of ``GET /accounting/payment`` (``payments[]``)."""

    API_FIELDS = _api_fields("sourceIdentifier", "invoiceNumber", "paymentDate", "syncDate", "status", "description")

    invoice_number: str | None = None
    payment_date: Date | None = None


@dataclass(frozen=True, slots=True)
class LedgerSyncRecord(SyncRecord):
    """One entry of ``GET /accounting/ledger`` (``ledgers[]``)."""

    API_FIELDS = _api_fields(
        "sourceIdentifier", "documentDate", "documentName", "documentStatus", "syncDate", "status", "description"
    )

    document_date: Date | None = None
    document_name: str | None = None
    document_status: str | None = None


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
    #: unreadable records skipped (no usable ``sourceIdentifier``), and the first few named
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
        failed = [self.record(ident) for ident in self.failed[:limit]]
        return [
            {"sourceIdentifier": r.source_identifier, "status": r.status, "description": r.description} for r in failed
        ]


def evaluate_sync(
    records: Iterable[SyncRecord], status_sets: StatusSets, identifiers: Sequence[str] | None = None
) -> SyncProgress:
    """Judge typed records: of ``identifiers`` if given, else every record returned (:func:`evaluate_index`)."""
    return evaluate_index(index_records(records), status_sets, identifiers)


class RecordIndex(dict[str, SyncRecord]):
    """Typed records by identifier (the first listed); ``duplicates`` keeps every record of an
    identifier listed more than once, in list order."""

    __slots__ = ("duplicates",)
    duplicates: dict[str, tuple[SyncRecord, ...]]


def index_records(records: Iterable[SyncRecord]) -> RecordIndex:
    """Typed records by identifier, keeping every record of a duplicated identifier (see :class:`RecordIndex`)."""
    first, duplicates = _group((record.source_identifier, record) for record in records)
    index = RecordIndex(first)
    index.duplicates = duplicates
    return index


def _group(pairs: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    """The first item of each identifier, and every item of each identifier listed more than once."""
    first: dict[str, Any] = {}
    more: dict[str, list[Any]] = {}
    for ident, item in pairs:
        if ident in first:
            more.setdefault(ident, [first[ident]]).append(item)
        else:
            first[ident] = item
    return first, {ident: tuple(group) for ident, group in more.items()}


def decisive_record(items: Sequence[Any], status_sets: StatusSets) -> Any:
    """Which record of an identifier listed more than once decides its state, whatever their order:
    the first pending one, else the first failed one, else the first (typed records or raw dicts)."""
    states = [status_sets.classify(i.status if isinstance(i, SyncRecord) else i.get("status")) for i in items]
    for wanted in (SyncState.PENDING, SyncState.FAILED):
        if wanted in states:
            return items[states.index(wanted)]
    return items[0]


def evaluate_index(
    index: Mapping[str, SyncRecord], status_sets: StatusSets, identifiers: Sequence[str] | None = None
) -> SyncProgress:
    """Judge records by identifier: of ``identifiers`` if given (no record: ``missing``), else every record.

    An identifier listed more than once (``index.duplicates``) is judged by :func:`decisive_record`.
    A :class:`StatusIndex` is judged on its raw ``status`` values, no record typed; its unreadable
    records are skipped and counted, except when judging every record: ``ValueError`` names the first.
    """
    progress = SyncProgress(index=index)
    lookup: Mapping[str, Any] = index
    if isinstance(index, StatusIndex):
        lookup = index.raw
        if index.unreadable and identifiers is None:
            raise ValueError(index.unreadable_text())
        progress.unreadable, progress.unreadable_sample = index.unreadable, index.unreadable_sample
    raw = lookup is not index
    duplicates: Mapping[str, Sequence[Any]] | None = getattr(index, "duplicates", None)
    synced, pending, failed = progress.synced, progress.pending, progress.failed
    missing, found_ids = progress.missing, progress.found
    success_codes, pending_codes = status_sets.success, status_sets.pending
    for ident in index if identifiers is None else dict.fromkeys(identifiers):
        found = lookup.get(ident)
        if found is None:
            missing.append(ident)
            continue
        found_ids.append(ident)
        if duplicates and ident in duplicates:
            found = decisive_record(duplicates[ident], status_sets)
            progress.picked = progress.picked or {}
            progress.picked[ident] = found
        # StatusSets.classify, inline: a call per identifier made judging 100,000 of them 2.5x slower
        status = found.get("status") if raw else found.status
        if type(status) is not int:  # null, text, a float or a boolean
            failed.append(ident)
        elif status in success_codes:
            synced.append(ident)
        elif status in pending_codes:
            pending.append(ident)
        else:
            failed.append(ident)
    return progress


#: How many unreadable records a :class:`StatusIndex` describes (the rest are counted).
UNREADABLE_SAMPLE = 5


@dataclass(eq=False, slots=True)
class StatusIndex(Mapping[str, SyncRecord]):
    """The decoded records of one status response by identifier, each typed (uncached) when it is read.

    A verdict reads only the tracked ``status`` values, and plain JSON dicts give the garbage
    collector nothing to follow. ``raw`` holds the first record of each identifier, ``duplicates``
    every record of one listed more than once; records without a usable ``sourceIdentifier`` are
    counted (``unreadable``) and the first :data:`UNREADABLE_SAMPLE` named (``unreadable_sample``).
    """

    raw: dict[str, Mapping[str, Any]]
    record_type: type[SyncRecord]
    list_key: str
    duplicates: dict[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    unreadable: int = 0
    unreadable_sample: tuple[str, ...] = ()

    def typed(self, ident: str, item: Mapping[str, Any]) -> SyncRecord:
        """``item`` (a raw record of ``ident``) as a typed record; ``ValueError`` names it."""
        try:
            return self.record_type.from_api(item)
        except ValueError as err:
            raise ValueError(f"{self.list_key} record {ident!r}: {err}") from None

    def unreadable_text(self) -> str:
        """``payments[1]: record has no sourceIdentifier (+2 more unreadable records)``."""
        more = self.unreadable - 1
        first = self.unreadable_sample[0]
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
    """``(sourceIdentifier as text, None)`` of one raw record, or ``(None, what is wrong)``; an integer
    identifier is read as its decimal text (as a submit sent it), anything else but a string is wrong."""
    if not isinstance(item, Mapping):
        return None, "record is null" if item is None else f"record is not an object: {json_type(item)}"
    ident = item.get("sourceIdentifier")
    if ident is None or ident == "":
        return None, "record has no sourceIdentifier"
    if type(ident) is str:
        return ident, None
    if type(ident) is int:
        return str(ident), None
    return None, f"sourceIdentifier is not a string: {json_type(ident)}"


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
    """A :class:`StatusIndex` of a status response body; ``ValueError`` when it is not ``{list_key: [...]}``."""
    items = _status_items(body, list_key)
    try:  # the usual body, in one pass: every record an object keyed by a distinct non-empty string
        raw: dict[str, Mapping[str, Any]] = {item["sourceIdentifier"]: item for item in items}
        usual = (
            len(raw) == len(items)
            and all(type(ident) is str and ident for ident in raw)
            and all(type(item) is dict for item in items)
        )
    except (KeyError, TypeError):
        usual = False
    if usual:
        return StatusIndex(raw, record_type, list_key)
    readable: list[tuple[str, Any]] = []
    problems: list[str] = []
    for position, item in enumerate(items):
        ident, problem = _identifier(item)
        if ident is not None:
            readable.append((ident, item))
        elif len(problems) < UNREADABLE_SAMPLE:
            problems.append(f"{list_key}[{position}]: {problem}")
    raw, duplicates = _group(readable)
    return StatusIndex(raw, record_type, list_key, duplicates, len(items) - len(readable), tuple(problems))


def parse_sync_records(body: Any, list_key: str, record_type: type[SyncRecord]) -> list[Any]:
    """Typed records from a status response body; ``ValueError`` names a body or record it cannot read."""
    out = []
    for position, item in enumerate(_status_items(body, list_key)):
        try:
            out.append(record_type.from_api(item))
        except ValueError as err:
            raise ValueError(f"{list_key}[{position}]: {err}") from None
    return out
