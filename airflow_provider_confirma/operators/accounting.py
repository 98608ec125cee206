"""Accounting operators: submit payments and ledgers, and read their sync status.

A submission is money, so it is sent at most once: see "Sending nothing twice" in docs/operators.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowFailException, AssetAlias

from airflow_provider_confirma.arguments import (
    check_positive,
    check_query_params,
    check_status_sets,
    is_template,
    normalize_identifiers,
    rendered_arguments,
    rendered_identifiers,
)
from airflow_provider_confirma.assets import (
    LEDGER_SYNC_ASSET_URI,
    PAYMENT_SYNC_ASSET_URI,
    sync_asset,
    sync_asset_extra,
)
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaError
from airflow_provider_confirma.hooks.confirma import unreadable_status
from airflow_provider_confirma.models import StatusSets, SyncRecord, bounded
from airflow_provider_confirma.operators.base import (
    ATTEMPT_KEY,
    AttemptRecord,
    ConfirmaBaseOperator,
    ConfirmaPayloadError,
    ConfirmaSubmissionUncertainError,
    load_payload,
    raise_for_issues,
    records_result,
    submit_once,
    to_xcom_safe,
    wire_numbers,
)
from airflow_provider_confirma.sync_wait import OUTCOME_FAILED, OUTCOME_SUCCESS, SyncWait

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Asset aliases through which the status operators emit their asset event only when it is earned.
PAYMENT_SYNC_ALIAS = "confirma-payment-sync-status"
LEDGER_SYNC_ALIAS = "confirma-ledger-sync-status"
#: Numeric ledger fields that are not money but must go out as JSON numbers as well.
LEDGER_NUMERIC_KEYS = frozenset({"vatPercentage"})
#: A conflict message shows each value cut to this many characters.
VALUE_CHARS = 40


class ConfirmaSubmissionConflictError(ConfirmaError, AirflowFailException):
    """Confirma already lists an identifier with other data than the payload; nothing was sent."""


def _shown_value(value: Any) -> str:
    text = "-" if value is None else repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _comparable(kind: str, value: Any) -> Any:
    """``value`` as compared: dates as ISO text, numbers as exact ``Decimal``, the rest as text."""
    if value is None:
        return None
    if kind == "date" and isinstance(value, date):
        return value.isoformat()
    if kind == "number" and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            pass  # not a number: compared as text
    return str(value)


class _SubmitOperator(ConfirmaBaseOperator):
    """Validate, compare with what the status endpoint already lists, record the attempt, POST once.

    :param status_query_params: query parameters of the status read made before the POST (undocumented
        by Confirma; passed through as given).
    :param previous_attempt_timeout: seconds to wait, when an earlier try recorded a POST whose outcome
        is unknown, for its identifiers to be listed before failing closed (default 300; 0: one check).
    :param previous_attempt_poll_interval: seconds between the status reads of that wait (default 15).
    """

    submit_endpoint: ClassVar[Endpoint]
    status_endpoint: ClassVar[Endpoint]
    payload_arg: ClassVar[str]  # the argument holding the payload, named in errors
    body_key: ClassVar[str]  # the request body's key of the payload
    one_document: ClassVar[bool] = False  # the payload is one object, not a list of them
    payload_shape: ClassVar[str]  # what the payload must be, for the error message
    request_model: ClassVar[str]  # its pydantic model in ``payloads`` (a name: that module is imported late)
    numeric_keys: ClassVar[frozenset[str]] = frozenset()
    id_key: ClassVar[str]
    noun: ClassVar[str]
    compared_fields: ClassVar[tuple[tuple[str, str], ...]]  # with a listed record: (field, "text"|"date"|"number")
    status_operator: ClassVar[str]  # the operator that reads the status endpoint, named in messages

    def __init__(
        self,
        *,
        status_query_params: Mapping[str, Any] | None = None,
        previous_attempt_timeout: float = 300.0,
        previous_attempt_poll_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.status_query_params = status_query_params
        self.previous_attempt_timeout = check_positive(
            previous_attempt_timeout, "previous_attempt_timeout", zero_ok=True
        )
        self.previous_attempt_poll_interval = check_positive(
            previous_attempt_poll_interval, "previous_attempt_poll_interval"
        )

    def _items(self, payload: Any) -> list[Mapping[str, Any]]:
        """The validated items of ``payload`` with amounts as ``Decimal``; raises naming the bad field."""
        from airflow_provider_confirma import payloads

        value = wire_numbers(load_payload(payload, self.payload_arg, self.body_key), self.numeric_keys)
        if self.one_document and isinstance(value, Mapping):
            items = [value]
        elif not self.one_document and isinstance(value, list):
            items = value
        else:
            raise ConfirmaPayloadError(f"{self.payload_arg} must be {self.payload_shape}, got {type(value).__name__}")
        issues = payloads.payload_issues(getattr(payloads, self.request_model), {self.body_key: value})
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            ident = item.get(self.id_key) if isinstance(item, Mapping) else None
            if isinstance(ident, str) and seen.setdefault(ident, index) != index:
                issues.append(
                    payloads.ValidationIssue(
                        f"{self.body_key}[{index}].{self.id_key}",
                        f"duplicate identifier {ident!r} (also {self.body_key}[{seen[ident]}])",
                    )
                )
        raise_for_issues(issues, f"{self.payload_arg} payload")
        return items

    def _known(self) -> dict[str, SyncRecord]:
        records = self.hook.get_sync_status(self.status_endpoint, self.status_query_params)
        return {r.source_identifier: r for r in records}

    def _check_hint(self, identifiers: Sequence[str]) -> str:
        return (
            f"Before rerunning, check {self.status_endpoint.value} ({self.status_operator}) or the Confirma UI "
            f"for {self.id_key} {bounded(list(identifiers), 5)}."
        )

    def execute(self, context: Context) -> list[str]:
        items = self._items(getattr(self, self.payload_arg))
        identifiers = [str(item[self.id_key]) for item in items]
        attempt = AttemptRecord(context, self.submit_endpoint)
        recorded = attempt.read()
        if attempt.store is None:
            self.log.warning(
                "No task state store in this task's context (it needs Airflow 3.3+): the attempt is not recorded "
                "before the POST, so protection across tries is reduced: a retry right after a POST whose outcome "
                "is unknown (e.g. the worker died mid-POST) may not yet see that submission in %s, and can send "
                "it again. %s",
                self.status_endpoint.value,
                self._check_hint(identifiers),
            )
            clearing = " No attempt was recorded (no task state store): clear this task only once they are listed."
        else:
            clearing = (
                f" Clearing this task is safe: its next try waits up to {self.previous_attempt_timeout:g} s "
                "for them to be listed and sends none that is."
            )
        if recorded is not None:
            known = self._await_recorded(recorded, identifiers)
            attempt.clear()  # its identifiers are listed (or not part of this payload): the outcome is definite
        else:
            known = self._known()
        self._check_conflicts(items, known)
        already = [ident for ident in identifiers if ident in known]
        if already:
            self.log.info(
                "Not sending %d %s(s) Confirma already knows (%s): %s",
                len(already),
                self.noun,
                self.status_endpoint.value,
                bounded([f"{i} (status {known[i].status}: {known[i].description})" for i in already]),
            )
        to_send = [item for item in items if str(item[self.id_key]) not in known]
        if not to_send:
            self.log.info("All %d %s(s) are already known to Confirma; nothing sent", len(items), self.noun)
            return identifiers
        sent_ids = [str(item[self.id_key]) for item in to_send]
        body = {self.body_key: to_send[0] if self.one_document else to_send}
        attempt.write(sent_ids, body)  # before the POST: a later try waits for these before deciding
        response = submit_once(
            lambda: self.hook.request(self.submit_endpoint, json_body=body),
            endpoint=self.submit_endpoint,
            what=f"the submission of {len(to_send)} {self.noun}(s) ({bounded(sent_ids)})",
            recovery_hint=self._check_hint(sent_ids) + clearing,
            not_processed=attempt.clear,
        )
        self.log.info(
            "Submitted %d %s(s): %s; response: %s",
            len(to_send),
            self.noun,
            bounded(sent_ids),
            to_xcom_safe(response, max_items=5),
        )
        return identifiers

    def _await_recorded(self, recorded: Mapping[str, Any], identifiers: Sequence[str]) -> dict[str, SyncRecord]:
        """The status records once every identifier of the recorded attempt in this payload is listed;
        fails closed after ``previous_attempt_timeout`` seconds naming what is missing."""
        current = set(identifiers)
        waiting = [i for i in recorded["identifiers"] if i in current]
        others = len(recorded["identifiers"]) - len(waiting)
        when = f"recorded at {recorded.get('recorded_at')} by try {recorded.get('try_number')}"
        self.log.warning(
            "An earlier attempt of this task (%s) may have sent %d %s(s) whose outcome is unknown%s; "
            "waiting up to %g s for %s to list them before deciding what to send",
            when,
            len(waiting),
            self.noun,
            f" ({others} of them not in this payload, not waited for)" if others else "",
            self.previous_attempt_timeout,
            self.status_endpoint.value,
        )
        deadline = time.monotonic() + self.previous_attempt_timeout
        polls = 0
        while True:
            known = self._known()
            polls += 1
            missing = [i for i in waiting if i not in known]
            if not missing:
                self.log.info(
                    "All %d %s(s) of the earlier attempt are listed (poll %d)", len(waiting), self.noun, polls
                )
                return known
            pause = min(self.previous_attempt_poll_interval, deadline - time.monotonic())
            if pause <= 0:
                break
            self.log.info(
                "Poll %d: %d not listed yet (%s); next poll in %.1f s", polls, len(missing), bounded(missing, 5), pause
            )
            time.sleep(pause)
        raise ConfirmaSubmissionUncertainError(
            f"An earlier attempt of this task ({when}) may have sent {len(missing)} {self.noun}(s) that "
            f"{self.status_endpoint.value} still does not list after {self.previous_attempt_timeout:g} s "
            f"({polls} polls): {bounded(missing, 5)}. Nothing was sent. They may still be ingesting, or that "
            f"POST never arrived. {self._check_hint(missing)} If they show up there, clear this task: it "
            "sends only what Confirma does not list. If Confirma confirms it never received them, delete "
            f"the key {ATTEMPT_KEY!r} in this task instance's Task State Store (UI tab, or the REST API), "
            "then clear the task to send them."
        )

    def _check_conflicts(self, items: Sequence[Mapping[str, Any]], known: Mapping[str, SyncRecord]) -> None:
        """Fail (sending nothing) when a listed identifier shows other data than the payload has for it."""
        conflicts: list[str] = []
        for item in items:
            ident = str(item[self.id_key])
            record = known.get(ident)
            if record is None:
                continue
            shown = {**record.extra, **record.to_xcom()}
            diffs = [
                f"{name} {_shown_value(shown.get(name))} at Confirma, {_shown_value(item.get(name))} submitted"
                for name, kind in self.compared_fields
                # a field the record does not show is not compared
                if shown.get(name) is not None and _comparable(kind, shown[name]) != _comparable(kind, item.get(name))
            ]
            if diffs:
                conflicts.append(f"{ident} ({'; '.join(diffs)})")
        if conflicts:
            raise ConfirmaSubmissionConflictError(
                f"Confirma already lists {len(conflicts)} {self.noun}(s) of this payload with other data: "
                f"{bounded(conflicts, 5, sep='; ')}. Nothing was sent, not even the other "
                f"{self.noun}s. A corrected {self.noun} needs its own {self.id_key} "
                "(or a correction in Confirma / the accounting system)."
            )


class ConfirmaSubmitPaymentsOperator(_SubmitOperator):
    """POST ``/accounting/payment``: send payment records to the client's accounting system.

    :param payments: the ``payments`` list (or the whole body ``{"payments": [...]}``, or its JSON
        text, e.g. a rendered template). Amounts may be ``Decimal``, plain decimal text or ints; they
        go out as exact JSON numbers. Validated before sending; a bad field fails the task (or the
        DAG import, when the list holds no template) and nothing is sent.
    :param status_query_params: query parameters of the ``GET /accounting/payment`` call made before the POST.
    :return: the ``paymentIdentifier`` of every payment in the payload (including those Confirma
        already knew), so ``ConfirmaPaymentSyncSensor(source_identifiers=submit.output)`` waits for them.
    """

    template_fields: Sequence[str] = ("payments", "status_query_params")
    submit_endpoint = Endpoint.SUBMIT_PAYMENTS
    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    payload_arg = "payments"
    body_key = "payments"
    payload_shape = "a list of payment objects"
    request_model = "PaymentsRequest"
    id_key = "paymentIdentifier"
    noun = "payment"
    compared_fields = (("invoiceNumber", "text"), ("paymentDate", "date"), ("amount", "number"), ("currency", "text"))
    status_operator = "ConfirmaGetPaymentSyncStatusOperator"

    def __init__(self, *, payments: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.payments = payments
        if not is_template(payments):
            self._items(payments)  # a static payload fails at DAG parse time


class ConfirmaSubmitLedgerOperator(_SubmitOperator):
    """POST ``/accounting/ledger``: send one ledger (journal) document to the accounting system.

    :param ledger: the document (the object under ``ledgers``: ``ledgerIdentifier``, ``ledgerRows``,
        ...), or the whole body ``{"ledgers": {...}}``, or its JSON text. Amounts and
        ``vatPercentage`` go out as exact JSON numbers. Validated before sending.
    :param status_query_params: query parameters of the ``GET /accounting/ledger`` call made before the POST.
    :return: ``[ledgerIdentifier]`` (also when Confirma already knew it and nothing was sent).
    """

    template_fields: Sequence[str] = ("ledger", "status_query_params")
    submit_endpoint = Endpoint.SUBMIT_LEDGER
    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    payload_arg = "ledger"
    body_key = "ledgers"
    one_document = True
    payload_shape = "one ledger document (an object)"
    request_model = "LedgerRequest"
    numeric_keys = LEDGER_NUMERIC_KEYS
    id_key = "ledgerIdentifier"
    noun = "ledger document"
    compared_fields = (("documentName", "text"), ("documentDate", "date"))
    status_operator = "ConfirmaGetLedgerSyncStatusOperator"

    def __init__(self, *, ledger: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger = ledger
        if not is_template(ledger):
            self._items(ledger)  # a static payload fails at DAG parse time


class _SyncStatusOperator(ConfirmaBaseOperator):
    """Read a sync status endpoint; push a summary and the (capped) records, judged as the sync sensor
    judges one poll (:class:`~airflow_provider_confirma.sync_wait.SyncWait`)."""

    status_endpoint: ClassVar[Endpoint]
    #: where an earned event goes: the asset's URI (``assets.py``) and the alias it is emitted through
    asset_uri: ClassVar[str]
    alias_name: ClassVar[str]
    noun: ClassVar[str]
    template_fields: Sequence[str] = ("query_params", "source_identifiers")

    def __init__(
        self,
        *,
        query_params: Mapping[str, Any] | None = None,
        source_identifiers: Any = None,
        success_statuses: Any = None,
        pending_statuses: Any = None,
        fail_on_sync_failure: bool = True,
        emit_asset: bool = False,
        **kwargs: Any,
    ) -> None:
        if emit_asset:
            kwargs["outlets"] = [*list(kwargs.get("outlets") or []), AssetAlias(self.alias_name)]
        super().__init__(**kwargs)
        self.query_params = query_params
        self.source_identifiers = source_identifiers
        self.success_statuses, self.pending_statuses = check_status_sets(success_statuses, pending_statuses)
        self.status_sets = StatusSets(self.success_statuses, self.pending_statuses)
        self.fail_on_sync_failure = fail_on_sync_failure
        self.emit_asset = emit_asset
        #: a template or XCom at parse time: rendering it to ``None`` is then an error, not "every record"
        self._identifiers_templated = is_template(source_identifiers)
        if not self._identifiers_templated:  # bad static arguments fail at DAG parse time
            normalize_identifiers(source_identifiers)
        if not is_template(query_params):
            check_query_params(query_params)

    def execute(self, context: Context) -> dict[str, Any]:
        with rendered_arguments(self):
            identifiers = rendered_identifiers(self.source_identifiers, self._identifiers_templated)
            query_params = check_query_params(self.query_params)
        wait = SyncWait(
            identifiers,
            self.status_sets,
            fail_on_sync_failure=self.fail_on_sync_failure,
            max_xcom_records=self.max_xcom_records,
            noun=self.noun,
        )
        index = self.hook.get_status_index(self.status_endpoint, query_params)
        try:
            verdict = wait.judge(index)
            progress = verdict.progress
            shown: dict[str, Any] = progress.records  # typed here: a malformed field names its record
        except ValueError as err:  # a record the result shows cannot be read
            raise unreadable_status(self.status_endpoint, err) from None
        self.log.info("%s sync status (%s): %s", self.noun, verdict.outcome, verdict.describe())
        warning = verdict.unreadable_warning()
        if warning is not None:
            self.log.warning(warning)
        if verdict.outcome == OUTCOME_FAILED:
            raise AirflowFailException(verdict.failure_message())
        rows = [{**record.to_xcom(), "state": record.state(self.status_sets).value} for record in shown.values()]
        # the sensor's summary (one place) but for its timing; the records are the rows, with their state
        summary = {k: v for k, v in verdict.event_summary(0.0).items() if k != "waited_seconds"}
        summary.update(verdict.missing_and_failures())
        result = records_result(rows, self.max_xcom_records, summary)
        if self.emit_asset and verdict.outcome == OUTCOME_SUCCESS and progress.synced and not progress.failed:
            extra = sync_asset_extra(result, self.status_sets.success)
            context["outlet_events"][AssetAlias(self.alias_name)].add(sync_asset(self.asset_uri), extra=extra)
            self.log.info(
                "%d %s(s) synced, none pending: emitted an event for %s",
                len(progress.synced),
                self.noun,
                self.asset_uri,
            )
        return result


class ConfirmaGetPaymentSyncStatusOperator(_SyncStatusOperator):
    """GET ``/accounting/payment``: which submitted payments are synced, pending or failed.

    With ``source_identifiers``, unreadable records are skipped (counted in the summary); without, one
    makes the response unreadable. An identifier listed twice is one row, in its decided state.

    :param query_params: query parameters, passed through (Confirma does not document them).
    :param source_identifiers: track only these (a list, or a submit operator's XCom); default: every record.
    :param success_statuses: ``status`` codes meaning synced (default ``{1}``).
    :param pending_statuses: ``status`` codes meaning still queued (default ``{0}``); any other is failed.
    :param fail_on_sync_failure: fail the task (without retry) when a tracked payment failed to sync
        (default ``True``, as on the sync sensors); ``False`` returns ``outcome: "waiting"`` instead.
    :param emit_asset: when the tracked payments are synced (every one of ``source_identifiers``;
        without them, none pending and none failed), emit an event on ``confirma://accounting/payment``
        through the asset alias ``confirma-payment-sync-status``, its extra as the sensors'
        (:func:`~airflow_provider_confirma.assets.sync_asset_extra`).
    :return: ``{"summary": {"outcome": "success"|"waiting", "counts", "failures", "missing", "missing_omitted",
        "unreadable", "total", "returned", "omitted", "records_omitted"}, "records": [{sourceIdentifier,
        status, state, ...}, ...]}``.
    """

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    asset_uri = PAYMENT_SYNC_ASSET_URI
    alias_name = PAYMENT_SYNC_ALIAS
    noun = "payment"


class ConfirmaGetLedgerSyncStatusOperator(_SyncStatusOperator):
    """GET ``/accounting/ledger``: the sync state of submitted ledger documents.

    Parameters and result as :class:`ConfirmaGetPaymentSyncStatusOperator`; the asset is
    ``confirma://accounting/ledger`` (alias ``confirma-ledger-sync-status``).
    """

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    asset_uri = LEDGER_SYNC_ASSET_URI
    alias_name = LEDGER_SYNC_ALIAS
    noun = "ledger document"


__all__ = [
    "ConfirmaGetLedgerSyncStatusOperator",
    "ConfirmaGetPaymentSyncStatusOperator",
    "ConfirmaSubmitLedgerOperator",
    "ConfirmaSubmitPaymentsOperator",
]
