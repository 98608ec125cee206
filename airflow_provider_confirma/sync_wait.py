"""One wait for records to sync, judged the same way by a sensor's poke and by its trigger.

A wait on identifiers ends when every one is synced, or at the first failed one with
``fail_on_sync_failure``; unreadable records (no usable ``sourceIdentifier``) cannot be any of them,
so they are skipped and counted. A wait for every record (no identifiers) ends when nothing is
pending; failed records are reported, and an unreadable record makes the response unreadable
(``ValueError``). Also the XCom summary and the closed vocabulary of trigger events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_confirma.arguments import DEFAULT_MAX_XCOM_RECORDS
from airflow_provider_confirma.exceptions import describe_error
from airflow_provider_confirma.models import (
    StatusSets,
    SyncProgress,
    SyncRecord,
    bounded,
    clipped,
    evaluate_index,
)
from airflow_provider_confirma.models import index_records as index_records  # typed records as a judge() index

#: The trigger's event vocabulary; ``execute_complete`` fails on anything else.
EVENT_SUCCESS = "success"
EVENT_FAILED = "failed"
EVENT_TIMEOUT = "timeout"
EVENT_ERROR = "error"
EVENT_STATUSES = frozenset({EVENT_SUCCESS, EVENT_FAILED, EVENT_TIMEOUT, EVENT_ERROR})

#: Verdict outcomes of one poll; a finished one is also the status of its event.
OUTCOME_SUCCESS = EVENT_SUCCESS
OUTCOME_FAILED = EVENT_FAILED
OUTCOME_WAITING = "waiting"

#: How many failed records an error message or summary names.
FAILURE_DETAILS_LIMIT = 10
#: How many identifiers a progress log line names per category.
LOG_NAMES_LIMIT = 5
#: A trigger event's message is cut to this many characters, so that an event stays about 1 KB
#: whatever the number of records (the triggerer logs every fired event in full, and stores it).
EVENT_MESSAGE_LIMIT = 600


# -- verdict -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncWait:
    """The rendered, validated arguments of one wait, and how one poll is judged against them."""

    identifiers: tuple[str, ...] | None
    status_sets: StatusSets = field(default_factory=StatusSets)
    fail_on_sync_failure: bool = True
    max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS
    noun: str = "payment"

    def judge(self, index: Mapping[str, SyncRecord]) -> SyncVerdict:
        """The verdict over one status response (a ``StatusIndex``, or :func:`index_records`).

        Costs O(len(identifiers)) with identifiers, so thousands of waiters can share a response.
        """
        progress = evaluate_index(index, self.status_sets, self.identifiers)
        if self.identifiers is None:
            outcome = OUTCOME_WAITING if progress.pending else OUTCOME_SUCCESS
        elif progress.failed and self.fail_on_sync_failure:
            outcome = OUTCOME_FAILED
        else:
            outcome = OUTCOME_SUCCESS if progress.done else OUTCOME_WAITING
        return SyncVerdict(outcome, progress, self)


@dataclass
class SyncVerdict:
    """What one poll means for one wait, with the texts and the summary built from it."""

    outcome: str
    progress: SyncProgress
    wait: SyncWait

    @property
    def finished(self) -> bool:
        return self.outcome != OUTCOME_WAITING

    def describe(self) -> str:
        """One progress line, e.g. ``3/5 synced; waiting: a, b; failed: -; not yet listed: b``."""
        text = self.progress.describe(limit=LOG_NAMES_LIMIT)
        if self.progress.missing:
            text += f"; not yet listed: {bounded(self.progress.missing, LOG_NAMES_LIMIT)}"
        if self.progress.unreadable:
            text += f"; unreadable records skipped: {self.progress.unreadable}"
        return text

    def unreadable_warning(self) -> str | None:
        """The warning, logged once per wait, about unreadable records this wait skipped (``None``: none)."""
        progress = self.progress
        if not progress.unreadable:
            return None
        return (
            f"Confirma {self.wait.noun} sync: skipped {progress.unreadable} unreadable record(s) of the status "
            f"response, which cannot be any of the tracked identifiers: "
            f"{bounded(progress.unreadable_sample, LOG_NAMES_LIMIT, progress.unreadable)}"
        )

    def failure_message(self) -> str:
        failed = self.progress.failed
        names = [
            f"{d['sourceIdentifier']} (status {d['status']}: {clipped(d['description'] or 'no description')})"
            for d in self.progress.failure_details(limit=FAILURE_DETAILS_LIMIT)
        ]
        shown = bounded(names, FAILURE_DETAILS_LIMIT, len(failed))
        return f"Confirma {self.wait.noun} sync failed for {len(failed)} of {self.progress.total} record(s): {shown}"

    def summary(self, waited_seconds: float) -> dict[str, Any]:
        """The compact, JSON-safe XCom summary: :meth:`event_summary` and the records (lists capped)."""
        cap = self.wait.max_xcom_records
        return {
            **self.event_summary(waited_seconds),
            "records": [r.to_xcom() for r in self.progress.record_list(cap)],
            "records_omitted": max(0, len(self.progress.found) - cap),
            **self.missing_and_failures(),
        }

    def missing_and_failures(self) -> dict[str, Any]:
        """The summary's missing identifiers (capped) and failure details: what it lists besides records."""
        cap, missing = self.wait.max_xcom_records, self.progress.missing
        return {
            "missing": missing[:cap],
            "missing_omitted": max(0, len(missing) - cap),
            "failures": self.progress.failure_details(limit=FAILURE_DETAILS_LIMIT),
        }

    def event_summary(self, waited_seconds: float) -> dict[str, Any]:
        """The summary a trigger event carries: the counts, no records (:func:`with_records` adds them)."""
        return {
            "outcome": self.outcome,
            "counts": self.progress.counts(),
            "unreadable": unreadable_summary(self.progress),  # a sample of at most 5
            "waited_seconds": round(max(0.0, waited_seconds), 3),
        }


def with_records(event_summary: Mapping[str, Any], fresh: SyncVerdict) -> dict[str, Any]:
    """The XCom summary of a wait the trigger ended: its verdict, with the records of ``fresh`` (read on resume)."""
    summary = fresh.summary(float(event_summary.get("waited_seconds") or 0.0))
    summary.update(outcome=event_summary["outcome"], counts=event_summary["counts"])
    return summary


def unreadable_summary(progress: SyncProgress) -> dict[str, Any]:
    """``{"count", "sample"}``: the unreadable records a wait skipped (the sample is bounded)."""
    return {"count": progress.unreadable, "sample": list(progress.unreadable_sample)}


# -- trigger events ------------------------------------------------------------------------------
def verdict_event(verdict: SyncVerdict, waited_seconds: float) -> dict[str, Any]:
    """The ``success`` or ``failed`` event of a finished verdict."""
    if not verdict.finished:
        raise ValueError("a waiting verdict is not an event")
    # Type the records the task's XCom will show: one that cannot be read is an error event now
    # (``ValueError``), as in poke mode, not a surprise when the task resumes.
    verdict.progress.record_list(verdict.wait.max_xcom_records)
    verdict.progress.failure_details(limit=FAILURE_DETAILS_LIMIT)
    message = verdict.failure_message() if verdict.outcome == OUTCOME_FAILED else verdict.describe()
    return {
        "status": verdict.outcome,
        "message": clipped(message, EVENT_MESSAGE_LIMIT),
        "summary": verdict.event_summary(waited_seconds),
    }


def timeout_message(noun: str, timeout_seconds: float, last: SyncVerdict | None) -> str:
    progress = last.describe() if last is not None else "no successful poll yet"
    return f"Timed out after {timeout_seconds:.1f}s waiting for Confirma {noun} sync: {progress}"


def timeout_event(noun: str, timeout_seconds: float, last: SyncVerdict | None, waited: float) -> dict[str, Any]:
    return {
        "status": EVENT_TIMEOUT,
        "message": clipped(timeout_message(noun, timeout_seconds, last), EVENT_MESSAGE_LIMIT),
        "summary": last.event_summary(waited) if last is not None else None,
    }


def poll_error_streak(log: Any, noun: str, errors: int, limit: int, exc: BaseException) -> str | None:
    """Log transient poll error number ``errors`` of a streak; once it reaches ``limit``, the
    message that ends the wait (the sensor raises it, the trigger emits it as an ``error`` event)."""
    log.warning("Confirma %s sync status poll failed (%d/%d in a row): %s", noun, errors, limit, describe_error(exc))
    if errors < limit:
        return None
    return f"Confirma {noun} sync status poll failed {errors} times in a row; last error: {describe_error(exc)}"


def error_event(message: str) -> dict[str, Any]:
    return {"status": EVENT_ERROR, "message": clipped(message, EVENT_MESSAGE_LIMIT)}


@dataclass(frozen=True)
class SyncEvent:
    """A validated trigger event."""

    status: str
    message: str
    summary: dict[str, Any] | None


def read_event(event: Any) -> SyncEvent:
    """Validate a trigger event against the closed vocabulary; ``ValueError`` names the problem."""
    if event is None:
        raise ValueError("resumed without a trigger event")
    if not isinstance(event, Mapping):
        raise ValueError(f"trigger event is not a dict: {type(event).__name__}")
    status = event.get("status")
    if status not in EVENT_STATUSES:
        raise ValueError(f"unknown trigger event status {status!r}; expected one of {sorted(EVENT_STATUSES)}")
    message = event.get("message")
    if not isinstance(message, str):
        raise ValueError(f"trigger event {status!r} has no message")
    summary = event.get("summary")
    if status == EVENT_SUCCESS and not isinstance(summary, Mapping):
        raise ValueError("trigger event 'success' has no summary")
    if summary is not None and not isinstance(summary, Mapping):
        raise ValueError(f"trigger event {status!r} has a summary that is not a dict")
    return SyncEvent(status, message, dict(summary) if summary is not None else None)
