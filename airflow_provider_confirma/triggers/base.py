"""``ConfirmaSyncStatusTrigger``: the deferred wait of the sync sensors, for one status endpoint.

Judges each status response with the sensor's own :class:`~airflow_provider_confirma.sync_wait.SyncWait`
and emits one event: success, failed, timeout or error. Concurrent waits making the same request share
one poll per interval (:mod:`.coalescing`). A subclass per endpoint names the classpath ``serialize()`` stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
import warnings
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar, cast

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_confirma.arguments import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MAX_XCOM_RECORDS,
    DEFAULT_PENDING_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    check_conn_id,
    check_count,
    check_positive,
    check_query_params,
    normalize_identifiers,
)
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, PollerStopped, describe_error
from airflow_provider_confirma.hooks.confirma import (
    ConfirmaHook,
    acquire_client_session,
    check_status_endpoint,
    release_client_session,
    unreadable_status,
)
from airflow_provider_confirma.hooks.connection import ConfirmaConnectionSettings
from airflow_provider_confirma.hooks.http_policy import RetryPolicy, clean_params, is_transient, retry_policy_from
from airflow_provider_confirma.models import StatusIndex, StatusSets, SyncRecord
from airflow_provider_confirma.sync_wait import (
    LOG_NAMES_LIMIT,
    SyncVerdict,
    SyncWait,
    error_event,
    poll_error_streak,
    timeout_event,
    verdict_event,
)
from airflow_provider_confirma.triggers.coalescing import subscribe, timeout

#: While the progress stays the same, a wait logs it again this often (seconds), so it is never silent.
PROGRESS_LOG_SECONDS = 300.0
#: How many failed records a timeout event's message names (its progress line).
SHOWN_FAILURES = LOG_NAMES_LIMIT + 1


def for_timeout(verdict: SyncVerdict) -> SyncVerdict:
    """``verdict``, changed in place to keep only the records its timeout event shows (the first
    failed ones), so a wait sleeping until its next own poll never holds a whole response."""
    progress = verdict.progress
    index = cast(StatusIndex, progress.index)  # what the hook's status reader returns
    shown = {ident: index.raw[ident] for ident in progress.failed[:SHOWN_FAILURES]}
    progress.index = StatusIndex(shown, index.record_type, index.list_key)
    return verdict


class StatusPollTrigger(BaseTrigger):
    """What every status trigger polls with, checked and stored as its ``serialize()`` kwargs carry it.

    Not used directly: a subclass sets :attr:`status_endpoint` and :attr:`noun`.
    """

    #: the status endpoint polled (one of the hook's ``STATUS_RECORDS``)
    status_endpoint: ClassVar[Endpoint]
    #: what the records are, in messages ("payment", "ledger")
    noun: ClassVar[str]

    def __init__(
        self, confirma_conn_id: Any, query_params: Any, poll_interval: Any, success_statuses: Any, pending_statuses: Any
    ) -> None:
        super().__init__()
        check_status_endpoint(getattr(type(self), "status_endpoint", None), type(self))
        self.confirma_conn_id = check_conn_id(confirma_conn_id)
        self.query_params: dict[str, Any] = clean_params(check_query_params(query_params))
        self.poll_interval = check_positive(poll_interval, "poll_interval")
        self.status_sets = StatusSets.build(success_statuses, pending_statuses)

    def query_kwarg(self) -> dict[str, Any]:
        """``query_params`` for ``serialize()``, its lists copied: the kwargs share nothing mutable with the trigger."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self.query_params.items()}


class ConfirmaSyncStatusTrigger(StatusPollTrigger):
    """Wait until the given records (or all pending ones) are synced, failed, or time is up.

    Not used directly: a subclass sets :attr:`status_endpoint` and :attr:`noun`.

    :param confirma_conn_id: the ``confirma`` connection.
    :param source_identifiers: identifiers to wait for; ``None`` waits until nothing is pending.
    :param success_statuses: status codes meaning synced.
    :param pending_statuses: status codes meaning still queued; any other code is a failure.
    :param query_params: query parameters of the status request, passed through as strings.
    :param poll_interval: seconds between the end of one poll and the start of the next.
    :param end_time: epoch seconds at which the trigger emits a ``timeout`` event.
    :param started_at: epoch seconds the wait began (for the summary's ``waited_seconds``).
    :param fail_on_sync_failure: emit ``failed`` at the first failed tracked identifier; else keep waiting.
    :param max_xcom_records: cap of the records listed in the event summary.
    :param max_consecutive_errors: transient poll errors in a row before an ``error`` event.
    :param coalesce: share one poll with concurrent triggers making the same request.
    :param http_retry_policy: the hook's :class:`RetryPolicy` or its fields (``None``: the default).
    :param retry_policy: deprecated spelling of ``http_retry_policy`` (stored by earlier versions).
    """

    #: run state: the progress line logged last (and when), good polls, transient poll errors in a
    #: row, whether the response's unreadable records were named (once per wait)
    _logged, _logged_at, _polls, _errors, _warned = "", 0.0, 0, 0, False

    def __init__(
        self,
        *,
        confirma_conn_id: str = ConfirmaHook.default_conn_name,
        source_identifiers: Sequence[str] | None = None,
        success_statuses: Collection[int] = DEFAULT_SUCCESS_STATUSES,
        pending_statuses: Collection[int] = DEFAULT_PENDING_STATUSES,
        query_params: Mapping[str, Any] | None = None,
        poll_interval: float = 60.0,
        end_time: float,
        started_at: float | None = None,
        fail_on_sync_failure: bool = True,
        max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        coalesce: bool = True,
        http_retry_policy: Mapping[str, Any] | RetryPolicy | None = None,
        retry_policy: Mapping[str, Any] | RetryPolicy | None = None,
    ) -> None:
        super().__init__(confirma_conn_id, query_params, poll_interval, success_statuses, pending_statuses)
        self.source_identifiers = normalize_identifiers(source_identifiers)
        self.end_time = check_positive(end_time, "end_time")
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.fail_on_sync_failure = bool(fail_on_sync_failure)
        self.max_xcom_records = check_count(max_xcom_records, "max_xcom_records", 0)
        self.max_consecutive_errors = check_count(max_consecutive_errors, "max_consecutive_errors", 1)
        self.coalesce = bool(coalesce)
        if retry_policy is not None:
            if http_retry_policy is not None:
                raise ConfirmaConfigError("give http_retry_policy only (retry_policy is its deprecated spelling)")
            warnings.warn(
                f"{type(self).__name__}(retry_policy=...) is deprecated; use http_retry_policy=...",
                DeprecationWarning,
                stacklevel=2,
            )
            http_retry_policy = retry_policy
        self.retry_policy = retry_policy_from(http_retry_policy, "http_retry_policy")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """JSON-safe primitives only; the key is resolved from the connection at run time."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "confirma_conn_id": self.confirma_conn_id,
                "source_identifiers": list(self.source_identifiers) if self.source_identifiers is not None else None,
                "success_statuses": sorted(self.status_sets.success),
                "pending_statuses": sorted(self.status_sets.pending),
                "query_params": self.query_kwarg(),
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "started_at": self.started_at,
                "fail_on_sync_failure": self.fail_on_sync_failure,
                "max_xcom_records": self.max_xcom_records,
                "max_consecutive_errors": self.max_consecutive_errors,
                "coalesce": self.coalesce,
                "http_retry_policy": dataclasses.asdict(self.retry_policy) if self.retry_policy is not None else None,
            },
        )

    @property
    def shared_log(self) -> Any:
        """One logger per trigger class, not per waiting task: the triggerer routes each trigger's
        lines by the context variables it binds around the run, not by logger object."""
        return type(self).logger()

    @property
    def wait(self) -> SyncWait:
        return SyncWait(
            self.source_identifiers, self.status_sets, self.fail_on_sync_failure, self.max_xcom_records, self.noun
        )

    def poll_key(self, settings: ConfirmaConnectionSettings) -> tuple[Any, ...]:
        """What two waits sharing a poll have in common: all their request uses, the connection as this wait
        resolved it (an edit starts a new poll), its secrets (the fields repr hides) as SHA-256 digests."""
        connection = []
        for spec in dataclasses.fields(settings):
            value = getattr(settings, spec.name)
            if not spec.repr and value is not None:
                value = "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()
            connection.append((spec.name, value))
        policy = dataclasses.astuple(self.retry_policy) if self.retry_policy is not None else None
        return (self.status_endpoint.value, tuple(connection), query_key(self.query_params), policy)

    @cached_property
    def hook(self) -> ConfirmaHook:
        return ConfirmaHook(self.confirma_conn_id, retry_policy=self.retry_policy)

    async def _fetch_status(self, session: Any) -> StatusIndex:
        """One status request on the shared session (a bound method: no closure per waiter)."""
        return await self.hook.aget_status_index(self.status_endpoint, self.query_params, session=session)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self._logged, self._logged_at, self._polls, self._errors, self._warned = "", 0.0, 0, 0, False
        try:
            if self.end_time <= time.time():
                event = self._timed_out(None)
            elif self.coalesce:
                event = await self._wait_shared(self.wait)
            else:
                event = await self._wait_alone(self.wait)
        except ConfirmaConfigError as err:  # a ValueError too, but not one of the response
            event = self._poll_failed(err)
        except ValueError as err:  # a record the verdict shows cannot be read (see StatusIndex)
            event = self._poll_failed(unreadable_status(self.status_endpoint, err))
        # The wait's start rides along: a resumed sensor needs it, and dag.test() (every Airflow 3
        # version) replaces the deferral's kwargs by the event, where a triggerer merges them.
        yield TriggerEvent({**event, "started_at": self.started_at})

    async def _wait_shared(self, wait: SyncWait) -> dict[str, Any]:
        """Judge each round of the shared poll of :meth:`poll_key` until one ends the wait."""
        try:
            settings = await self.hook.aget_settings()  # once: the poll a wait joins is keyed on it
        except Exception as exc:  # an unknown or invalid connection
            return self._poll_failed(exc)
        # The latest response is the poll's own, shared by all its waiters; the timeout event judges
        # it again, so no verdict per waiter is kept between polls.
        latest: Mapping[str, SyncRecord] | None = None
        subscription = subscribe(self.poll_key(settings), self._fetch_status, self.poll_interval)
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                async with timeout(self.end_time - time.time()):  # one deadline, not a timer per round
                    while True:
                        current = await subscription.next_round()
                        if current.error is not None:
                            event = self._judge_error(current.error)
                        else:
                            latest = current.index
                            assert latest is not None
                            event = self._finished(self._judge(latest, wait))
                        if event is not None:
                            return event
            return self._timed_out(wait.judge(latest) if latest is not None else None)
        finally:
            subscription.close()

    async def _wait_alone(self, wait: SyncWait) -> dict[str, Any]:
        """``coalesce=False``: request, judge and sleep in this trigger's own task. Each object a wait keeps
        through its sleep is one more for the loop-blocking full GCs to walk, times thousands of waits: so
        no subscription, round or timer, and of the last response only what a timeout shows (:func:`for_timeout`)."""
        last: SyncVerdict | None = None
        session = await acquire_client_session()  # fails on a bad [confirma] max_concurrent_requests
        try:
            while (remaining := self.end_time - time.time()) > 0:
                try:
                    index = await self._fetch_until(session, remaining)
                except asyncio.TimeoutError:
                    break  # the wait's end came during the request
                except Exception as exc:
                    event = self._judge_error(exc)
                else:
                    verdict = self._judge(index, wait)
                    del index
                    event = self._finished(verdict)
                    last = for_timeout(verdict)
                if event is not None:
                    return event
                await asyncio.sleep(min(self.poll_interval, max(0.0, self.end_time - time.time())))
            return self._timed_out(last)
        finally:
            await release_client_session(session)

    async def _fetch_until(self, session: Any, remaining: float) -> StatusIndex:
        """One status request, cut off with ``asyncio.TimeoutError`` when the wait ends."""
        longest = self.hook.longest_read_seconds()
        # Stays (docs/benchmarks.md): a request that cannot outlast the wait gets no timeout of the
        # wait; one per poll cost 1.4x the CPU per poll relative to the anchor (0.31x vs 0.24x).
        if longest is not None and longest < remaining:
            return await self._fetch_status(session)
        async with timeout(remaining):
            return await self._fetch_status(session)

    def _judge(self, index: Mapping[str, SyncRecord], wait: SyncWait) -> SyncVerdict:
        """The verdict over one good poll (the error streak ends); logs it when it changed, and an
        unchanged one every :data:`PROGRESS_LOG_SECONDS` (thousands of waiters share a triggerer)."""
        self._errors = 0
        self._polls += 1
        verdict = wait.judge(index)
        text = verdict.describe()
        now = time.monotonic()
        if text != self._logged:
            if verdict.progress.unreadable and not self._warned:  # once per wait
                self.shared_log.warning(verdict.unreadable_warning())
                self._warned = True
            self.shared_log.info("Confirma %s sync: %s", self.noun, text)
            self._logged, self._logged_at = text, now
        elif now - self._logged_at >= PROGRESS_LOG_SECONDS:
            waited = _duration(time.time() - self.started_at)
            line = "Confirma %s sync: still %s (after %d polls, %s)"
            self.shared_log.info(line, self.noun, text, self._polls, waited)
            self._logged_at = now
        return verdict

    def _finished(self, verdict: SyncVerdict) -> dict[str, Any] | None:
        return verdict_event(verdict, time.time() - self.started_at) if verdict.finished else None

    def _judge_error(self, exc: BaseException) -> dict[str, Any] | None:
        """The event a failed poll ends the wait with, or ``None`` for a transient one (logged): what
        a GET is retried for, or a shared poller that stopped under its waiters."""
        if not (is_transient(exc) or isinstance(exc, PollerStopped)):
            return self._poll_failed(exc)
        self._errors += 1
        ended = poll_error_streak(self.shared_log, self.noun, self._errors, self.max_consecutive_errors, exc)
        return error_event(ended) if ended is not None else None

    def _poll_failed(self, exc: BaseException) -> dict[str, Any]:
        if isinstance(exc, ConfirmaConfigError):  # the message names the option or field, and the value
            return error_event(f"Confirma {self.noun} sync status poll cannot run, configuration error: {exc}")
        return error_event(f"Confirma {self.noun} sync status poll failed: {describe_error(exc)}")

    def _timed_out(self, last: SyncVerdict | None) -> dict[str, Any]:
        timeout_seconds = max(0.0, self.end_time - self.started_at)
        return timeout_event(self.noun, timeout_seconds, last, time.time() - self.started_at)


def query_key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    """Cleaned query parameters (:func:`clean_params`) as a hashable, order-free key of a shared poll."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def _duration(seconds: float) -> str:
    """``"45 s"``, ``"6 min"`` or ``"2 h 05 min"``: how long a wait has waited, for a log line."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
