"""What every Confirma operator shares: the base classes, XCom conversion, payloads, date windows, POST failures.

The payload models (:mod:`airflow_provider_confirma.payloads`) are imported where a payload is
checked: building them costs more than the rest of a DAG parse (docs/benchmarks.md).
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
    check_query_params,
    check_timeout,
    is_template,
    rendered_arguments,
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
#: The task state store key of the attempt record (:class:`AttemptRecord`).
ATTEMPT_KEY = "confirma_submit_attempt"

log = logging.getLogger(__name__)


# -- XCom -----------------------------------------------------------------------------------------
def is_money_key(key: str) -> bool:
    """``amount`` and every ``…Amount`` field (``settlementAmount``, ``capitalAmount``, ...)."""
    return key == "amount" or key.endswith("Amount")


def to_xcom_safe(
    value: Any, *, max_items: int | None = None, truncated: dict[str, int] | None = None, _path: str = ""
) -> Any:
    """``value`` as JSON-safe primitives for XCom: numbers that are not ``int`` (and every number under a
    money key) become decimal text, dates ISO text, objects with ``to_xcom()`` go through it.

    :param max_items: each list is cut to this many items.
    :param truncated: receives ``{path: number left out}`` of each cut list (``$`` is the root).
    """

    def convert(value: Any, path: str, money: bool, depth: int) -> Any:
        if isinstance(value, Enum):
            value = value.value
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, Decimal):
            return f"{value:f}" if value.is_finite() else str(value)
        if isinstance(value, float):
            return repr(value)  # the shortest text that round-trips
        if isinstance(value, int):
            return str(value) if money else value
        if isinstance(value, (datetime, date, time)):
            return value.isoformat()
        if hasattr(value, "to_xcom"):
            return convert(value.to_xcom(), path, False, depth)
        if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
            raise TypeError(f"{path or 'value'}: {type(value).__name__} cannot be stored in XCom")
        if depth >= MAX_XCOM_DEPTH:
            raise TypeError(f"{path or 'value'}: nested deeper than {MAX_XCOM_DEPTH} levels cannot be stored in XCom")
        if isinstance(value, Mapping):
            return {
                str(k): convert(v, f"{path}.{k}" if path else str(k), isinstance(k, str) and is_money_key(k), depth + 1)
                for k, v in value.items()
            }
        items = list(value)
        if max_items is not None and len(items) > max_items:
            if truncated is not None:
                truncated[path or "$"] = len(items) - max_items
            items = items[:max_items]
        return [convert(item, f"{path}[{i}]", money, depth + 1) for i, item in enumerate(items)]

    return convert(value, _path, False, 0)


def _summary(summary: Mapping[str, Any] | None, truncated: Mapping[str, int]) -> dict[str, Any]:
    """``summary`` XCom-safe, with the cut lists: up to :data:`MAX_TRUNCATION_PATHS` paths, the rest counted."""
    head = to_xcom_safe(dict(summary or {}))
    if truncated:
        head["truncated"] = dict(list(truncated.items())[:MAX_TRUNCATION_PATHS])
    if len(truncated) > MAX_TRUNCATION_PATHS:
        head["truncated_more_lists"] = len(truncated) - MAX_TRUNCATION_PATHS
    return head


def records_result(records: list[Any], max_items: int, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"summary": {..., total, returned, omitted, records_omitted}, "records": [...]}``, at most ``max_items``
    records (and items in each nested list); ``records_omitted``, the sensor summary's name, is ``omitted``."""
    nested: dict[str, int] = {}
    kept = to_xcom_safe(records[:max_items], max_items=max_items, truncated=nested, _path="records")
    omitted = len(records) - len(kept)
    counts = {"total": len(records), "returned": len(kept), "omitted": omitted, "records_omitted": omitted}
    return {"summary": _summary({**(summary or {}), **counts}, nested), "records": kept}


def object_result(body: Any, max_items: int, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"summary": {...}, "data": body}`` for object responses; every list in ``body`` is capped."""
    truncated: dict[str, int] = {}
    data = to_xcom_safe(body, max_items=max_items, truncated=truncated)
    return {"summary": _summary(summary, truncated), "data": data}


# -- payloads -------------------------------------------------------------------------------------
#: The old name of :func:`airflow_provider_confirma.arguments.is_template` (the one template detector).
has_templates = is_template


class ConfirmaPayloadError(ConfirmaArgumentError):
    """A payload broke the documented rules; nothing was sent. Fails without retry (same input, same error)."""


def load_payload(value: Any, name: str, body_key: str | None = None) -> Any:
    """A payload as Python data: JSON text (e.g. a rendered template) is parsed, numbers as ``Decimal``;
    a whole body ``{body_key: content}`` is unwrapped to its content."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            value = decode_json(value)
        except ValueError as err:
            raise ConfirmaPayloadError(
                f"{name}: not valid JSON after rendering ({err}); render it with "
                "'| tojson' or set render_template_as_native_obj=True"
            ) from None
    if body_key is not None and isinstance(value, Mapping) and set(value) == {body_key}:
        return value[body_key]
    return value


def wire_numbers(value: Any, numeric_keys: Collection[str] = ()) -> Any:
    """A copy of ``value`` whose money keys and ``numeric_keys`` given as plain decimal text are ``Decimal``,
    so they go out as exact JSON numbers; floats and other text are left for validation to refuse."""
    from airflow_provider_confirma.payloads import plain_decimal

    if isinstance(value, (list, tuple)):
        return [wire_numbers(item, numeric_keys) for item in value]
    if not isinstance(value, Mapping):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and (is_money_key(key) or key in numeric_keys):
            number = plain_decimal(item) if isinstance(item, str) else None
            out[key] = item if number is None else number
        else:
            out[key] = wire_numbers(item, numeric_keys)
    return out


def raise_for_issues(issues: Sequence[ValidationIssue], what: str) -> None:
    """Raise :class:`ConfirmaPayloadError` naming every bad field, if there are issues."""
    if issues:
        from airflow_provider_confirma.payloads import format_issues

        raise ConfirmaPayloadError(f"{what} is invalid, nothing was sent: {format_issues(issues)}")


# -- date windows ---------------------------------------------------------------------------------
def _date_text(value: Any, name: str) -> str | None:
    """``value`` (a date, a datetime, or its ISO text as ``{{ ds }}`` renders it) as ``YYYY-MM-DD``."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ConfirmaConfigError(f"{name} must be a date, a datetime or text, got {type(value).__name__}")
    try:
        return datetime.fromisoformat(value).date().isoformat()
    except ValueError:
        raise ConfirmaConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from None


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

    The interval becomes dates in the DAG's time zone: ``from`` is the start's date, ``to`` the last day
    inside the interval (its end is exclusive), or the end's own date when ``to_date_inclusive`` is false.
    """
    explicit = {from_param: _date_text(from_date, "from_date"), to_param: _date_text(to_date, "to_date")}
    if any(explicit.values()):
        return {k: v for k, v in explicit.items() if v is not None}
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
    tz = getattr(context.get("dag"), "timezone", None)
    if tz is not None:
        start, end = start.astimezone(tz), end.astimezone(tz)
    last = (end - timedelta(microseconds=1)) if to_date_inclusive and end > start else end
    window = {from_param: start.date().isoformat(), to_param: max(start.date(), last.date()).isoformat()}
    log.info("Window from the data interval: %s", window)
    return window


# -- POST failures --------------------------------------------------------------------------------
class ConfirmaSubmissionUncertainError(ConfirmaError, AirflowFailException):
    """Confirma may have a submission whose outcome is unknown (timeout, reset, 5xx, an unreadable 2xx,
    or an earlier attempt that never showed up). Fails without retry: a rerun must check first."""


def submit_once(
    post: Callable[[], Any],
    *,
    endpoint: Endpoint,
    what: str,
    recovery_hint: str = "",
    not_processed: Callable[[], None] | None = None,
) -> Any:
    """Send one POST (never retried once it may have arrived) and turn its failures into clear errors.

    Provably not processed (never sent: a ``connect`` failure or a configuration error; refused: a
    4xx) calls ``not_processed`` (a failure there is only logged), then re-raises; a 4xx other than
    429 and 401 fails without retry. Anything else (timeout, reset, 5xx, an unreadable 2xx) may have
    reached Confirma: :class:`ConfirmaSubmissionUncertainError`, whose message ends in ``recovery_hint``.
    """
    try:
        return post()
    except ConfirmaError as exc:
        if isinstance(exc, ConfirmaTransportError):
            unsent = exc.never_sent
        else:
            unsent = isinstance(exc, (ConfirmaConfigError, ConfirmaClientError, ConfirmaAuthError))
        if not unsent:
            raise ConfirmaSubmissionUncertainError(
                f"{endpoint.value} failed ({exc}): {what} may or may not have reached Confirma. "
                f"Failing without retries, so that nothing is sent twice. {recovery_hint}".rstrip()
            ) from exc
        try:
            if not_processed is not None:
                not_processed()
        except Exception as err:  # the record stays: a later try waits for it (fails closed)
            log.warning("Could not clear the attempt record of %s: %s", what, err)
        if isinstance(exc, ConfirmaClientError) and not isinstance(exc, ConfirmaRateLimitError):
            raise AirflowFailException(
                f"Confirma rejected {what} ({exc}); not retrying: the same payload would be rejected again"
            ) from exc
        raise


class AttemptRecord:
    """What this task may have POSTed, in Airflow's task state store (Airflow 3.3+), for its next try.

    The store is keyed by DAG run, task and map index, so a retry or a cleared task of the same run
    reads it. Without a store (older Airflow, a hand-built context) nothing is recorded.
    """

    def __init__(self, context: Context, endpoint: Endpoint) -> None:
        self.store = context.get("task_state_store")
        self.endpoint = endpoint
        self.try_number = getattr(context.get("ti"), "try_number", None)

    def read(self) -> dict[str, Any] | None:
        """The recorded attempt, or ``None``; a record that cannot be read fails closed."""
        value: Any = None if self.store is None else self.store.get(ATTEMPT_KEY)
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
        """Record an attempt before its POST (the body as a SHA-256); if this fails, nothing is sent."""
        if self.store is not None:
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


# -- the base operators ---------------------------------------------------------------------------
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
        if max_records is None:
            self.max_xcom_records = check_count(max_xcom_records, "max_xcom_records", 0)
        else:
            warnings.warn(
                f"{type(self).__name__}(max_records=...) is deprecated; use max_xcom_records=...",
                DeprecationWarning,
                stacklevel=2,
            )
            if max_xcom_records != DEFAULT_MAX_XCOM_RECORDS:
                raise ConfirmaConfigError("give max_xcom_records only (max_records is its deprecated spelling)")
            self.max_xcom_records = check_count(max_records, "max_records", 0)
        self.confirma_conn_id = check_conn_id(confirma_conn_id)
        self.request_timeout = check_timeout(request_timeout, "request_timeout")
        self.http_retry_policy = retry_policy_from(http_retry_policy, "http_retry_policy")

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
        if not is_template(query_params):  # a template or XCom is checked after rendering (build_query)
            check_query_params(query_params)
        self.from_date = from_date
        self.to_date = to_date
        self.from_param = from_param
        self.to_param = to_param
        self.use_data_interval = use_data_interval
        self.to_date_inclusive = to_date_inclusive
        self.query_params = query_params

    def build_query(self, context: Context) -> tuple[dict[str, Any], dict[str, str]]:
        """``(query parameters, window)``: the window, overridden by ``query_params``."""
        with rendered_arguments(self):
            query_params = check_query_params(self.query_params)
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
        return {**window, **query_params}, window
