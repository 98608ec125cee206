"""What every Confirma operator shares: the base class, XCom conversion, payloads, date windows, POST failures.

Owns:

* :class:`ConfirmaBaseOperator`: ``confirma_conn_id``, hook creation, ``max_xcom_records``.
* :func:`to_xcom_safe`: JSON-safe XCom values. ``Decimal`` becomes decimal text, money fields (``amount``
  or ``…Amount``) are always text, floats never survive, dates become ISO text, lists are capped.
* Payloads (:func:`load_payload`, :func:`wire_numbers`, :func:`raise_for_issues`):
  checked with the pydantic models of :mod:`airflow_provider_confirma.payloads` when the DAG file is
  parsed if they hold no template, else after rendering. The hook and the JSON codec are imported at
  the top; the payload models where a payload is checked (building them costs more than the rest of
  a DAG parse, see docs/benchmarks.md), and the HTTP transports on first request.
* :func:`resolve_window`: the ``fromDate``/``toDate`` query window, by default from the data interval.
* :func:`submit_once`: a POST is sent once; a failure that leaves its fate unknown fails without retries.
* :class:`AttemptRecord`: what a try may have POSTed, in Airflow's task state store, for the next try.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_confirma.arguments import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_XCOM_RECORDS,
    check_conn_id,
    check_count,
    check_timeout,
    is_template,
)
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import (
    ConfirmaArgumentError,
    ConfirmaAuthError,
    ConfirmaClientError,
    ConfirmaConfigError,
    ConfirmaError,
    ConfirmaRateLimitError,
    ConfirmaTransportError,
)
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy, retry_policy_from
from airflow_provider_confirma.json_codec import decode_json, encode_json

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_confirma.payloads import ValidationIssue

#: The old name of :data:`~airflow_provider_confirma.arguments.DEFAULT_MAX_XCOM_RECORDS` (the same value).
DEFAULT_MAX_RECORDS = DEFAULT_MAX_XCOM_RECORDS
#: Deepest nesting :func:`to_xcom_safe` converts; above the JSON decoder's 64, so any response fits.
MAX_XCOM_DEPTH = 100
#: At most this many truncated-list paths are listed in a summary (the rest are counted).
MAX_TRUNCATION_PATHS = 20

log = logging.getLogger(__name__)


# -- XCom -----------------------------------------------------------------------------------------
def is_money_key(key: str) -> bool:
    """``amount`` and every ``…Amount`` field (``settlementAmount``, ``capitalAmount``, ...)."""
    return key == "amount" or key.endswith("Amount")


def _number_text(value: Decimal | float | int) -> str:
    if isinstance(value, Decimal):
        return f"{value:f}" if value.is_finite() else str(value)
    if isinstance(value, float):
        return repr(value)  # shortest text that round-trips; never a float in XCom
    return str(value)


def to_xcom_safe(
    value: Any,
    *,
    max_items: int | None = None,
    truncated: dict[str, int] | None = None,
    _path: str = "",
    _money: bool = False,
    _depth: int = 0,
) -> Any:
    """``value`` as JSON-safe primitives for XCom.

    ``Decimal`` and ``float`` become decimal text; numbers under a money key (:func:`is_money_key`) too,
    so money is always text; ``date``/``datetime`` become ISO text; tuples and sets become lists;
    objects with ``to_xcom()`` (the sync records) are converted through it. Each list is cut to
    ``max_items``; ``truncated`` (if given) receives ``{path: number left out}`` (``$`` is the root).
    Nesting deeper than :data:`MAX_XCOM_DEPTH` is a ``TypeError`` naming the path.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (Decimal, float)):
        return _number_text(value)
    if isinstance(value, int):
        return _number_text(value) if _money else value
    if isinstance(value, Enum):
        return to_xcom_safe(
            value.value, max_items=max_items, truncated=truncated, _path=_path, _money=_money, _depth=_depth
        )
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _number_text(value.total_seconds())
    if hasattr(value, "to_xcom") and callable(value.to_xcom):
        return to_xcom_safe(value.to_xcom(), max_items=max_items, truncated=truncated, _path=_path, _depth=_depth)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)) and _depth >= MAX_XCOM_DEPTH:
        raise TypeError(f"{_path or 'value'}: nested deeper than {MAX_XCOM_DEPTH} levels cannot be stored in XCom")
    if isinstance(value, Mapping):
        return {
            str(k): to_xcom_safe(
                v,
                max_items=max_items,
                truncated=truncated,
                _path=f"{_path}.{k}" if _path else str(k),
                _money=isinstance(k, str) and is_money_key(k),
                _depth=_depth + 1,
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if max_items is not None and len(items) > max_items:
            if truncated is not None:
                truncated[_path or "$"] = len(items) - max_items
            items = items[:max_items]
        return [
            to_xcom_safe(
                item, max_items=max_items, truncated=truncated, _path=f"{_path}[{i}]", _money=_money, _depth=_depth + 1
            )
            for i, item in enumerate(items)
        ]
    raise TypeError(f"{_path or 'value'}: {type(value).__name__} cannot be stored in XCom")


def truncation_summary(truncated: Mapping[str, int]) -> dict[str, Any]:
    """The ``truncated`` part of a summary: up to :data:`MAX_TRUNCATION_PATHS` paths, the rest counted."""
    if not truncated:
        return {}
    paths = dict(list(truncated.items())[:MAX_TRUNCATION_PATHS])
    out: dict[str, Any] = {"truncated": paths}
    if len(truncated) > len(paths):
        out["truncated_more_lists"] = len(truncated) - len(paths)
    return out


def records_result(records: list[Any], max_items: int, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"summary": {..., total, returned, omitted, records_omitted}, "records": [...]}`` with at most
    ``max_items`` records (``records_omitted``, the sensor summary's name, is ``omitted`` again).

    Lists nested inside the records are capped at ``max_items`` too; the summary names them.
    """
    nested: dict[str, int] = {}
    kept = [
        to_xcom_safe(record, max_items=max_items, truncated=nested, _path=f"records[{i}]")
        for i, record in enumerate(records[:max_items])
    ]
    head = to_xcom_safe(dict(summary or {}))
    omitted = len(records) - len(kept)
    head.update({"total": len(records), "returned": len(kept), "omitted": omitted, "records_omitted": omitted})
    head.update(truncation_summary(nested))
    return {"summary": head, "records": kept}


def object_result(body: Any, max_items: int, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"summary": {...}, "data": body}`` for object responses; every list in ``body`` is capped."""
    truncated: dict[str, int] = {}
    data = to_xcom_safe(body, max_items=max_items, truncated=truncated)
    head = to_xcom_safe(dict(summary or {}))
    head.update(truncation_summary(truncated))
    return {"summary": head, "data": data}


# -- payloads -------------------------------------------------------------------------------------
#: The old name of :func:`airflow_provider_confirma.arguments.is_template` (the one template detector).
has_templates = is_template


class ConfirmaPayloadError(ConfirmaArgumentError):
    """A payload broke the documented rules; nothing was sent. Fails without retry (same input, same error)."""


def load_payload(value: Any, name: str) -> Any:
    """A payload as Python data: JSON text (e.g. a rendered template) is parsed, numbers as ``Decimal``."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            return decode_json(value)
        except ValueError as err:
            raise ConfirmaPayloadError(
                f"{name}: not valid JSON after rendering ({err}); render it with "
                "'| tojson' or set render_template_as_native_obj=True"
            ) from None
    return value


def wire_numbers(value: Any, numeric_keys: Collection[str] = ()) -> Any:
    """A copy of ``value`` whose amounts given as text are ``Decimal``, so they go out as JSON numbers.

    Applies to money keys (:func:`is_money_key`) and ``numeric_keys``. Only plain decimal text
    (``"100.10"``, :func:`.payloads.plain_decimal`) is converted, exactly; floats and other text are
    left for validation to refuse.
    """
    from airflow_provider_confirma.payloads import plain_decimal

    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and (is_money_key(key) or key in numeric_keys):
                number = plain_decimal(item) if isinstance(item, str) else None
                out[key] = item if number is None else number
            else:
                out[key] = wire_numbers(item, numeric_keys)
        return out
    if isinstance(value, (list, tuple)):
        return [wire_numbers(item, numeric_keys) for item in value]
    return value


def raise_for_issues(issues: Sequence[ValidationIssue], what: str) -> None:
    """Raise :class:`ConfirmaPayloadError` naming every bad field, if there are issues."""
    if issues:
        from airflow_provider_confirma.payloads import format_issues

        raise ConfirmaPayloadError(f"{what} is invalid, nothing was sent: {format_issues(issues)}")


# -- date windows ---------------------------------------------------------------------------------
def _date_text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:  # a date or an ISO date-time as text (e.g. a rendered "{{ ds }}" or "{{ data_interval_start }}")
            parsed = date.fromisoformat(text) if len(text) <= 10 else datetime.fromisoformat(text).date()
            return parsed.isoformat()
        except ValueError:
            raise ConfirmaConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from None
    raise ConfirmaConfigError(f"{name} must be a date, a datetime or text, got {type(value).__name__}")


def resolve_window(
    context: Context,
    *,
    from_date: Any,
    to_date: Any,
    from_param: str,
    to_param: str,
    use_data_interval: bool,
    to_date_inclusive: bool,
    log: Any,
) -> dict[str, str]:
    """The window query parameters: explicit dates if given, else the run's data interval, else none.

    The data interval is turned into dates in the DAG's time zone: ``from`` is the start's date and
    ``to`` the last day inside the interval (its end is exclusive), or the end's own date when
    ``to_date_inclusive`` is false. Without a data interval (a manual run without one) no window is
    sent, so the API applies its own default; that is logged.
    """
    explicit_from, explicit_to = _date_text(from_date, "from_date"), _date_text(to_date, "to_date")
    if explicit_from or explicit_to:
        given = {from_param: explicit_from, to_param: explicit_to}
        return {k: v for k, v in given.items() if v is not None}
    if not use_data_interval:
        return {}
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        log.info(
            "This run has no data interval and no from_date/to_date was given: sending no %s/%s, "
            "so the Confirma API applies its default window",
            from_param,
            to_param,
        )
        return {}
    dag = context.get("dag")
    tz = getattr(dag, "timezone", None)
    if tz is not None:
        start, end = start.astimezone(tz), end.astimezone(tz)
    first = start.date()
    last = end.date()
    if to_date_inclusive and end > start:
        last = (end - timedelta(microseconds=1)).date()
    window = {from_param: first.isoformat(), to_param: max(first, last).isoformat()}
    log.info("Window from the data interval: %s", window)
    return window


# -- POST failures --------------------------------------------------------------------------------
class ConfirmaSubmissionUncertainError(ConfirmaError, AirflowFailException):
    """Confirma may have a submission whose outcome is unknown (timeout, reset, 5xx, an unreadable 2xx,
    or an earlier attempt that never showed up). Fails without retry: a rerun must check first."""


#: The task state store key of the attempt record (:class:`AttemptRecord`).
ATTEMPT_KEY = "confirma_submit_attempt"


def submit_once(
    post: Callable[[], Any],
    *,
    endpoint: Endpoint,
    what: str,
    recovery_hint: str = "",
    not_processed: Callable[[], None] | None = None,
) -> Any:
    """Send one POST (never retried once it may have arrived) and turn its failures into clear errors.

    * never sent (``connect`` failure, a configuration error) or 429: re-raised, a task retry is safe;
    * other 4xx: the payload was rejected: :class:`AirflowFailException` (401: re-raised as is);
    * anything else from the hook (timeout, reset, 5xx, a 2xx whose body cannot be read): unknown
      whether Confirma has it: :class:`ConfirmaSubmissionUncertainError`, which fails the task
      without retries; the message says what happened and ``recovery_hint`` what to check.

    ``not_processed`` is called when the outcome is definite and nothing was stored (never sent, 429,
    4xx), e.g. to clear the attempt record; a failure there is logged, never raised.
    """

    def forget() -> None:
        if not_processed is not None:
            try:
                not_processed()
            except Exception as err:  # the record stays: a later try waits for it (fails closed)
                log.warning("Could not clear the attempt record of %s: %s", what, err)

    try:
        return post()
    except ConfirmaError as exc:
        if not _not_processed(exc):  # 5xx, unreadable 2xx, anything after the request may have been written
            raise _uncertain(endpoint, exc, what, recovery_hint) from exc
        forget()
        if isinstance(exc, ConfirmaClientError) and not isinstance(exc, ConfirmaRateLimitError):
            raise AirflowFailException(
                f"Confirma rejected {what} ({exc}); not retrying: the same payload would be rejected again"
            ) from exc
        raise


def _not_processed(exc: ConfirmaError) -> bool:
    """Whether a failed POST provably left nothing at Confirma: never sent (a ``connect`` failure, a
    configuration error raised before sending) or refused (4xx, 429 and 401 included)."""
    if isinstance(exc, ConfirmaTransportError):
        return exc.never_sent
    return isinstance(exc, (ConfirmaConfigError, ConfirmaClientError, ConfirmaAuthError))


def _uncertain(endpoint: Endpoint, exc: Exception, what: str, hint: str) -> ConfirmaSubmissionUncertainError:
    return ConfirmaSubmissionUncertainError(
        f"{endpoint.value} failed ({exc}): {what} may or may not have reached Confirma. "
        f"Failing without retries, so that nothing is sent twice. {hint}".rstrip()
    )


class AttemptRecord:
    """What this task may have POSTed, kept in Airflow's task state store (``context["task_state_store"]``).

    Airflow (3.3+) keys that store by DAG run, task and map index: a retry or a cleared task of the
    same run reads what an earlier try wrote; another DAG run does not. The record is written
    before a POST (endpoint, identifiers, a SHA-256 of the body, when, which try) and cleared only
    when the outcome is definite. Without a store (older Airflow, a hand-built context) nothing is
    recorded: :attr:`available` is false and :meth:`warn_unavailable` says what that means.
    """

    def __init__(self, context: Context, endpoint: Endpoint) -> None:
        self.store = context.get("task_state_store")
        self.endpoint = endpoint
        ti = context.get("ti")
        self.try_number = getattr(ti, "try_number", None)

    @property
    def available(self) -> bool:
        return self.store is not None

    def warn_unavailable(self, logger: Any, consequence: str) -> None:
        logger.warning(
            "No task state store in this task's context (it needs Airflow 3.3+): the attempt is not recorded "
            "before the POST, so protection across tries is reduced: %s",
            consequence,
        )

    def read(self) -> dict[str, Any] | None:
        """The recorded attempt, or ``None``; a record that cannot be read fails closed."""
        if self.store is None:
            return None
        value: Any = self.store.get(ATTEMPT_KEY)
        if value is None:
            return None
        ids = value.get("identifiers") if isinstance(value, Mapping) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ConfirmaSubmissionUncertainError(
                f"The task state store key {ATTEMPT_KEY!r} of this task holds no readable attempt record; "
                "nothing was sent. Check in Confirma what an earlier try submitted, then delete that key "
                "(task instance > Task State Store) and clear the task."
            )
        return dict(value)

    def write(self, identifiers: Sequence[str], body: Any) -> None:
        """Record an attempt (before its POST); a failure to record it means nothing is sent."""
        if self.store is None:
            return
        self.store.set(
            ATTEMPT_KEY,
            {
                "endpoint": self.endpoint.value,
                "identifiers": list(identifiers),
                "fingerprint": "sha256:" + hashlib.sha256(encode_json(body)).hexdigest(),
                "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "try_number": self.try_number,
            },
        )

    def clear(self) -> None:
        if self.store is not None:
            self.store.delete(ATTEMPT_KEY)


# -- the base operator ----------------------------------------------------------------------------
class ConfirmaBaseOperator(BaseOperator):
    """Base of the Confirma operators.

    :param confirma_conn_id: the ``confirma`` connection (API key, environment or host).
    :param request_timeout: per-request timeout in seconds (default: the connection's ``timeout``).
    :param http_retry_policy: retry bounds of GET requests, a ``RetryPolicy`` or a dict of its fields (POSTs
        are never retried once they may have arrived).
    :param max_xcom_records: lists pushed to XCom are cut to this many items (default 1000, as on
        the sensors); the summary says how many were left out.
    :param max_records: deprecated spelling of ``max_xcom_records``.
    """

    def __init__(
        self,
        *,
        confirma_conn_id: str = DEFAULT_CONN_ID,
        request_timeout: float | None = None,
        http_retry_policy: RetryPolicy | Mapping[str, Any] | None = None,
        max_xcom_records: int = DEFAULT_MAX_XCOM_RECORDS,
        max_records: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_records is not None:
            warnings.warn(
                f"{type(self).__name__}(max_records=...) is deprecated; use max_xcom_records=...",
                DeprecationWarning,
                stacklevel=2,
            )
            if max_xcom_records != DEFAULT_MAX_XCOM_RECORDS:
                raise ConfirmaConfigError("give max_xcom_records only (max_records is its deprecated spelling)")
        self.max_xcom_records = check_count(
            max_xcom_records if max_records is None else max_records,
            "max_xcom_records" if max_records is None else "max_records",
            0,
        )
        self.confirma_conn_id = check_conn_id(confirma_conn_id)
        self.request_timeout = check_timeout(request_timeout, "request_timeout")
        try:
            self.http_retry_policy = retry_policy_from(http_retry_policy, "http_retry_policy")
        except (TypeError, ValueError) as err:
            raise ConfirmaConfigError(str(err)) from None

    @property
    def max_records(self) -> int:
        """Deprecated: :attr:`max_xcom_records`."""
        return self.max_xcom_records

    @cached_property
    def hook(self) -> ConfirmaHook:
        return ConfirmaHook(self.confirma_conn_id, timeout=self.request_timeout, retry_policy=self.http_retry_policy)


class ConfirmaWindowedOperator(ConfirmaBaseOperator):
    """Base of the GET operators that take a date window (see :func:`resolve_window`).

    :param from_date: window start (templated; a date, datetime or text such as ``"{{ ds }}"``).
    :param to_date: window end (templated).
    :param from_param: query parameter name of the start.
    :param to_param: query parameter name of the end.
    :param use_data_interval: without ``from_date``/``to_date``, send the run's data interval.
    :param to_date_inclusive: send the last day inside the data interval as the end (the interval's
        end is exclusive); ``False`` sends the end's own date.
    :param query_params: further query parameters, passed through; they win over the window.
    """

    template_fields: Sequence[str] = ("from_date", "to_date", "query_params")

    def __init__(
        self,
        *,
        from_date: Any = None,
        to_date: Any = None,
        from_param: str = "fromDate",
        to_param: str = "toDate",
        use_data_interval: bool = True,
        to_date_inclusive: bool = True,
        query_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, param in (("from_param", from_param), ("to_param", to_param)):
            if not isinstance(param, str) or not param.strip():
                raise ConfirmaConfigError(f"{name} must be a query parameter name, got {param!r}")
        if from_param == to_param:
            raise ConfirmaConfigError(f"from_param and to_param must differ, both are {from_param!r}")
        self.from_date = from_date
        self.to_date = to_date
        self.from_param = from_param
        self.to_param = to_param
        self.use_data_interval = use_data_interval
        self.to_date_inclusive = to_date_inclusive
        self.query_params = query_params

    def build_query(self, context: Context) -> tuple[dict[str, Any], dict[str, str]]:
        """``(query parameters, window)``: the window, overridden by ``query_params``."""
        if self.query_params is not None and not isinstance(self.query_params, Mapping):
            raise ConfirmaConfigError(f"query_params must be a mapping, got {type(self.query_params).__name__}")
        window = resolve_window(
            context,
            from_date=self.from_date,
            to_date=self.to_date,
            from_param=self.from_param,
            to_param=self.to_param,
            use_data_interval=self.use_data_interval,
            to_date_inclusive=self.to_date_inclusive,
            log=self.log,
        )
        return {**window, **dict(self.query_params or {})}, window
