"""``ConfirmaSyncStatusSensor``: wait until submitted records are synced, for one status endpoint.

The verdict is :mod:`airflow_provider_confirma.sync_wait`'s, shared with the trigger; a subclass per
endpoint (:mod:`.payment_sync`, :mod:`.ledger_sync`) sets the endpoint, asset, noun and trigger.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    Asset,
    BaseOperator,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

from airflow_provider_confirma.arguments import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MAX_XCOM_RECORDS,
    DEFAULT_PENDING_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    check_conn_id,
    check_count,
    check_positive,
    check_query_params,
    check_status_sets,
    is_template,
    normalize_identifiers,
    rendered_arguments,
    rendered_identifiers,
)
from airflow_provider_confirma.assets import ASSET_EXTRA_IDENTIFIERS, sync_asset, sync_asset_extra
from airflow_provider_confirma.compat import TaskDeferralError, TaskDeferralTimeout
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, describe_error
from airflow_provider_confirma.hooks.confirma import ConfirmaHook, check_status_endpoint, unreadable_status
from airflow_provider_confirma.hooks.http_policy import RetryPolicy, is_transient, retry_policy_from
from airflow_provider_confirma.models import StatusSets
from airflow_provider_confirma.sync_wait import (
    EVENT_FAILED,
    EVENT_SUCCESS,
    EVENT_TIMEOUT,
    OUTCOME_FAILED,
    SyncWait,
    poll_error_streak,
    read_event,
    with_records,
)
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: ``ASSET_EXTRA_IDENTIFIERS`` moved to :mod:`airflow_provider_confirma.assets`; importable here still.
__all__ = ["ASSET_EXTRA_IDENTIFIERS", "NO_STREAK_WARNING", "WAIT_START_KEY", "ConfirmaSyncStatusSensor"]

#: Task state store key of a deferred wait's start (epoch seconds, with the try number), kept under
#: ``silent_fail``: a wait that goes on after an error may resume without its deferral kwargs.
WAIT_START_KEY = "confirma_sync_wait_started_at"
#: Logged at each failed reschedule poke where the error count cannot be kept between pokes.
NO_STREAK_WARNING = (
    "No task state store (it needs Airflow 3.3+): in reschedule mode every poke is a new process, so "
    "errors in a row cannot be counted and max_consecutive_errors=%s cannot end the wait; it goes on "
    "until its timeout. Use mode='poke' or deferrable=True to stop after that many errors."
)


class ConfirmaSyncStatusSensor(BaseSensorOperator):
    """Wait until records submitted to Confirma are synced (see docs/sensor.md).

    Not used directly: a subclass sets the class attributes below.

    :param source_identifiers: the identifiers to wait for: a list, one string, the submit operator's
        XCom, or a list mixing these (templated). Omitted: wait until no returned record is pending.
    :param confirma_conn_id: the ``confirma`` connection.
    :param query_params: query parameters of the status request (templated; passed through).
    :param success_statuses: status codes meaning synced.
    :param pending_statuses: status codes meaning still queued; any other code is a failure.
    :param fail_on_sync_failure: fail the task, without retries, when a tracked identifier failed.
    :param max_xcom_records: cap of the records listed in the XCom summary.
    :param max_consecutive_errors: transient errors (outlasting the hook's retries) tolerated in a row.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param coalesce: in deferrable mode, share one status poll with waits on the same connection and query.
    :param emit_asset: declare the endpoint's asset as an outlet, with ``{"synced", "identifiers"}`` on success.
    :param http_retry_policy: the hook's per-request retry bounds (not Airflow's task ``retry_policy``).
    """

    #: the status endpoint polled (one of the hook's ``STATUS_RECORDS``)
    status_endpoint: ClassVar[Endpoint]
    #: the URI of the asset declared as an outlet with ``emit_asset`` (``assets.py``)
    asset_uri: ClassVar[str]
    #: what the records are, in messages ("payment", "ledger")
    noun: ClassVar[str]
    #: the trigger class of the deferred wait; a dotted path is still accepted (imported on use)
    trigger_class: ClassVar[type[ConfirmaSyncStatusTrigger] | str]
    #: task state store key of the transient-error count in reschedule mode (each poke is a new process)
    error_streak_key: ClassVar[str]

    template_fields: Sequence[str] = ("source_identifiers", "query_params")
    template_fields_renderers = {"query_params": "json"}
    ui_color = "#d8eef2"

    @property
    def asset(self) -> Asset:
        """The asset of :attr:`asset_uri` (built on first use: a parse without ``emit_asset`` pays nothing)."""
        return sync_asset(self.asset_uri)

    def __init__(
        self,
        *,
        source_identifiers: Any = None,
        confirma_conn_id: str = DEFAULT_CONN_ID,
        query_params: Mapping[str, Any] | str | None = None,
        success_statuses: Collection[int] = DEFAULT_SUCCESS_STATUSES,
        pending_statuses: Collection[int] = DEFAULT_PENDING_STATUSES,
        fail_on_sync_failure: bool = True,
        max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        coalesce: bool = True,
        emit_asset: bool = False,
        http_retry_policy: RetryPolicy | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        check_status_endpoint(getattr(type(self), "status_endpoint", None), type(self))
        if emit_asset:
            outlets = kwargs.get("outlets") or []
            outlets = list(outlets) if isinstance(outlets, (list, tuple)) else [outlets]
            kwargs["outlets"] = outlets if self.asset in outlets else [*outlets, self.asset]
        super().__init__(**kwargs)
        #: a template or XCom at parse time: rendering it to ``None`` is then an error, not "every record"
        self._identifiers_templated = is_template(source_identifiers)
        try:
            check_conn_id(confirma_conn_id)
            check_positive(self.poke_interval, "poke_interval")
            check_positive(self.timeout, "timeout")
            self.success_statuses, self.pending_statuses = check_status_sets(success_statuses, pending_statuses)
            self.max_xcom_records = check_count(max_xcom_records, "max_xcom_records", 0)
            self.max_consecutive_errors = check_count(max_consecutive_errors, "max_consecutive_errors", 1)
            self.http_retry_policy = retry_policy_from(http_retry_policy, "http_retry_policy")
            # Templates and XComs are checked after rendering (sync_wait, rendered_query_params).
            if not self._identifiers_templated:
                normalize_identifiers(source_identifiers)
            if not is_template(query_params):
                check_query_params(query_params)
        except ConfirmaConfigError as err:
            raise ConfirmaConfigError(f"{type(self).__name__} '{self.task_id}': {err}") from None
        self.source_identifiers = source_identifiers
        self.confirma_conn_id = confirma_conn_id
        self.query_params = query_params
        self.fail_on_sync_failure = fail_on_sync_failure
        self.deferrable = deferrable
        self.coalesce = coalesce
        self.emit_asset = emit_asset
        self._consecutive_errors = 0
        self._unreadable_warned = False
        self._started_at: float | None = None

    @cached_property
    def status_sets(self) -> StatusSets:
        return StatusSets(self.success_statuses, self.pending_statuses)

    @cached_property
    def hook(self) -> ConfirmaHook:
        return ConfirmaHook(self.confirma_conn_id, retry_policy=self.http_retry_policy)

    @cached_property
    def sync_wait(self) -> SyncWait:
        """The wait of the rendered ``source_identifiers``; a bad rendered value fails the task naming it."""
        with rendered_arguments(self):
            identifiers = rendered_identifiers(self.source_identifiers, self._identifiers_templated)
        return SyncWait(identifiers, self.status_sets, self.fail_on_sync_failure, self.max_xcom_records, self.noun)

    @cached_property
    def rendered_query_params(self) -> dict[str, Any]:
        """The rendered ``query_params``, checked once; a bad rendered value fails the task naming it."""
        with rendered_arguments(self):
            return check_query_params(self.query_params)

    def execute(self, context: Context) -> Any:
        self.sync_wait  # noqa: B018 - validate the rendered arguments before the first request
        self.rendered_query_params  # noqa: B018
        first = context["ti"].get_first_reschedule_date(context) if self._rescheduled else None
        self._started_at = first.timestamp() if first is not None else time.time()
        if self.deferrable:  # check once on the worker, the flags as in poke mode; then defer
            store = context.get("task_state_store")
            if self.silent_fail and store is not None:
                store.set(WAIT_START_KEY, {"try_number": context["ti"].try_number, "started_at": self._started_at})
            try:
                done = self.poke(context)
            except Exception as exc:
                self._raise_for(exc)
            if not isinstance(done, PokeReturnValue):
                self._defer()
            return self._succeeded(context, done.xcom_value)
        try:
            summary = super().execute(context)
        except AirflowSkipException as skip:
            # Airflow's poke loop fails its own timeout under never_fail, but skips one that a poke
            # raises (the time ran out during a request): a timeout means one thing (_raise_for).
            if self.never_fail and isinstance(skip.__cause__, AirflowSensorTimeout):
                raise skip.__cause__ from None
            raise
        return self._succeeded(context, summary)

    @property
    def _rescheduled(self) -> bool:
        """Reschedule mode (not deferred): every poke is a new process."""
        return self.reschedule and not self.deferrable

    def _remaining(self) -> float:
        """Seconds left of the sensor's ``timeout`` (zero or less once it passed; zero when the start is unknown)."""
        return self._started_at + self.timeout - time.time() if self._started_at is not None else 0.0

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One status request, judged and logged; the request, retries included, ends by the sensor's timeout."""
        if self._started_at is None:
            self._started_at = time.time()
        remaining = self._remaining()
        if remaining <= 0:
            raise AirflowSensorTimeout(f"Sensor has timed out before this poke; timeout is {self.timeout}s")
        store: Any = context.get("task_state_store") if self._rescheduled else None  # JSON values we wrote
        if store is not None:
            saved = store.get(self.error_streak_key, {})
            self._consecutive_errors = saved["errors"] if saved.get("try_number") == context["ti"].try_number else 0
        try:
            index = self.hook.get_status_index(
                self.status_endpoint, self.rendered_query_params, deadline=time.monotonic() + remaining
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            if self._remaining() <= 0:
                raise AirflowSensorTimeout(
                    f"Sensor has timed out during the status request; timeout is {self.timeout}s; "
                    f"last error: {describe_error(exc)}"
                ) from exc
            self._consecutive_errors += 1
            if store is not None:
                streak = {"try_number": context["ti"].try_number, "errors": self._consecutive_errors}
                store.set(self.error_streak_key, streak)
            elif self._rescheduled:
                self.log.warning(NO_STREAK_WARNING, self.max_consecutive_errors)
            ended = poll_error_streak(self.log, self.noun, self._consecutive_errors, self.max_consecutive_errors, exc)
            if ended is not None:
                raise AirflowException(ended) from exc
            return False
        if store is not None and self._consecutive_errors:
            store.delete(self.error_streak_key)
        self._consecutive_errors = 0
        try:
            verdict = self.sync_wait.judge(index)
            self.log.info("Confirma %s sync: %s", self.noun, verdict.describe())
            warning = verdict.unreadable_warning()
            if warning is not None and not self._unreadable_warned:
                self.log.warning(warning)
                self._unreadable_warned = True
            if verdict.outcome == OUTCOME_FAILED:
                raise AirflowFailException(verdict.failure_message())
            if verdict.finished:
                return PokeReturnValue(is_done=True, xcom_value=verdict.summary(time.time() - self._started_at))
        except ValueError as err:  # a record the verdict shows cannot be read (see StatusIndex)
            raise unreadable_status(self.status_endpoint, err) from None
        return False

    def _succeeded(self, context: Context, summary: Any) -> Any:
        """The summary of a finished wait; with ``emit_asset``, it also fills the asset event's extra."""
        if self.emit_asset:
            context["outlet_events"][self.asset].extra = sync_asset_extra(summary, self.status_sets.success)
        return summary

    # -- what each flag means, the same in every mode (docs/sensor.md) -----------------------------
    def _raise_for(self, exc: Exception) -> NoReturn:
        """End the task for ``exc`` (a check's, the trigger's or Airflow's), as Airflow's poke loop would.

        A timeout is skipped under ``soft_fail`` only (never under ``never_fail``); a failed record
        under ``soft_fail`` or ``never_fail``. Any other error (a 401, an unreadable response, too
        many transient errors, a bad event, a failed trigger) is logged and waited past under
        ``silent_fail`` (a pause of ``poke_interval``, then the trigger again), skipped under
        ``never_fail``, else it fails the task (retries apply): ``soft_fail`` never skips an error.
        """
        timeout = isinstance(exc, AirflowSensorTimeout)
        if timeout or isinstance(exc, AirflowFailException):
            if self.soft_fail or (self.never_fail and not timeout):
                flag = "soft_fail" if self.soft_fail else "never_fail"
                raise AirflowSkipException(f"Skipping due to {flag}: {exc}") from exc
            raise exc
        if self.silent_fail:
            self.log.error("Sensor check failed; silent_fail: waiting on: %s", describe_error(exc))
            self._defer(pause=True)
        if self.never_fail:
            raise AirflowSkipException(f"Skipping due to never_fail: {exc}") from exc
        raise exc

    # -- deferrable ----------------------------------------------------------------------------
    def _defer(self, pause: bool = False) -> NoReturn:
        """Defer to the sync trigger for the rest of the timeout; with ``pause`` (``silent_fail``
        after an error), first for ``poke_interval`` as the poke loop sleeps, then :meth:`resume_wait`."""
        remaining = self._remaining()
        if remaining <= 0:
            unknown = " (wait start unknown)" if self._started_at is None else ""
            self._raise_for(AirflowSensorTimeout(f"Sensor has timed out; timeout is {self.timeout}s{unknown}"))
        pause_for = timedelta(seconds=min(self.poke_interval, remaining))
        self.defer(
            trigger=TimeDeltaTrigger(pause_for) if pause else self.build_trigger(),
            method_name="resume_wait" if pause else "execute_complete",
            kwargs={"started_at": self._started_at},
            timeout=timedelta(seconds=remaining),
        )

    def resume_wait(self, context: Context, event: Any = None, started_at: float | None = None) -> Any:
        """Resume after a ``silent_fail`` pause: wait on in the trigger for the rest of the timeout."""
        self._defer()

    @classmethod
    def get_trigger_class(cls) -> type[ConfirmaSyncStatusTrigger]:
        """:attr:`trigger_class` (imported when a subclass gives it as a dotted path)."""
        trigger_class = cls.trigger_class
        return import_string(trigger_class) if isinstance(trigger_class, str) else trigger_class

    def build_trigger(self) -> ConfirmaSyncStatusTrigger:
        """The trigger of this (rendered) sensor, ending where the sensor's timeout ends."""
        started = self._started_at if self._started_at is not None else time.time()
        return self.get_trigger_class()(
            confirma_conn_id=self.confirma_conn_id,
            source_identifiers=self.sync_wait.identifiers,
            success_statuses=self.success_statuses,
            pending_statuses=self.pending_statuses,
            query_params=self.rendered_query_params,
            poll_interval=self.poke_interval,
            end_time=started + self.timeout,
            started_at=started,
            fail_on_sync_failure=self.fail_on_sync_failure,
            max_xcom_records=self.max_xcom_records,
            max_consecutive_errors=self.max_consecutive_errors,
            coalesce=self.coalesce,
            http_retry_policy=self.http_retry_policy,
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume a deferred wait, each flag meaning what it does in poke mode (:meth:`_raise_for`).

        Bypasses ``BaseSensorOperator.resume_execution``, which skips on every error after a
        deferral under ``soft_fail`` (a revoked key included; apache/airflow#71255) and on the
        timeout under ``never_fail``. The wait's start comes from the deferral's kwargs or the
        trigger's event, else (a failed trigger, whose kwargs Airflow replaces) the task state store.
        """
        kwargs = next_kwargs or {}
        event = kwargs.get("event")
        started = kwargs.get("started_at") or (event.get("started_at") if isinstance(event, Mapping) else None)
        store = context.get("task_state_store")
        if started is None and store is not None:
            saved = store.get(WAIT_START_KEY)
            if isinstance(saved, dict) and saved.get("try_number") == context["ti"].try_number:
                started = saved.get("started_at")
        self._started_at = float(started) if started is not None else None
        try:
            return BaseOperator.resume_execution(self, next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            self._raise_for(AirflowSensorTimeout(f"Sensor has timed out while deferred; timeout is {self.timeout}s"))
        except TaskDeferralError as exc:
            self._raise_for(exc)

    def execute_complete(self, context: Context, event: Any = None, started_at: float | None = None) -> Any:
        """Resume from the trigger: success / failed / timeout / error events, the flags as in poke mode."""
        try:
            checked = read_event(event)
        except ValueError as err:
            self._raise_for(AirflowException(f"{type(self).__name__} '{self.task_id}': {err}"))
        if checked.status != EVENT_SUCCESS:  # a failed, timeout or error event ends the task as in poke mode
            ended = {EVENT_FAILED: AirflowFailException, EVENT_TIMEOUT: AirflowSensorTimeout}
            self._raise_for(ended.get(checked.status, AirflowException)(checked.message))
        self.log.info("Confirma %s sync: %s", self.noun, checked.message)
        summary = checked.summary
        assert summary is not None  # read_event requires one on success
        if "records" in summary:  # an event of an earlier release: the whole summary
            return self._succeeded(context, summary)
        # The event carries counts only (the triggerer logs and stores every event): one more status
        # GET (under the hook's retry policy) reads the records for XCom.
        try:
            fresh = self.sync_wait.judge(self.hook.get_status_index(self.status_endpoint, self.rendered_query_params))
            summary = with_records(summary, fresh)
        except ValueError as err:  # a record the summary shows cannot be read, as in poke mode
            raise unreadable_status(self.status_endpoint, err) from None
        except Exception as exc:
            raise AirflowException(
                f"Confirma {self.noun} sync succeeded, but reading its records for XCom failed "
                f"(a retry of the task finds them synced): {describe_error(exc)}"
            ) from exc
        return self._succeeded(context, summary)
