"""The DAG-argument checks and defaults that the sensors, triggers and operators share, one per idea.

They run at every DAG parse, so this module imports only the standard library and the exceptions.
"""

from __future__ import annotations

import ast
import contextlib
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_provider_confirma.exceptions import ConfirmaArgumentError, ConfirmaConfigError

#: The ``confirma`` connection the hook, operators and sensors use by default.
DEFAULT_CONN_ID = "confirma_default"
#: Status codes meaning synced and still queued (the docs show 1 and 0; anything else failed).
DEFAULT_SUCCESS_STATUSES: frozenset[int] = frozenset({1})
DEFAULT_PENDING_STATUSES: frozenset[int] = frozenset({0})
#: How many records (and items of each list) a task's XCom carries by default (``max_xcom_records``).
DEFAULT_MAX_XCOM_RECORDS = 1000
#: Transient poll errors tolerated in a row by a sync sensor or trigger.
DEFAULT_MAX_CONSECUTIVE_ERRORS = 5

IDENTIFIERS_ARG = "source_identifiers"


def normalize_identifiers(value: Any, name: str = IDENTIFIERS_ARG) -> tuple[str, ...] | None:
    """The identifiers to wait for, in order and without duplicates; only ``None`` means "every record".

    Accepts one identifier (string or int), a list/tuple/set of them, a submit operator's result (a
    list, or a dict with ``"identifiers"``), a rendered list's text (``"['a', 'b']"``), or a mix.
    """
    if value is None:
        return None
    return tuple(dict.fromkeys(_identifiers(value, name)))


def _identifiers(value: Any, name: str) -> list[str]:
    """The identifiers of ``value`` (not ``None``), in order, duplicates kept; errors name ``name``."""
    if isinstance(value, Mapping):
        if "identifiers" not in value:
            raise ConfirmaConfigError(
                f"{name}: a dict must carry the identifiers under an 'identifiers' key; got keys {sorted(value)[:10]}"
            )
        inner = value["identifiers"]
        if inner is None or isinstance(inner, Mapping):
            raise ConfirmaConfigError(f"{name}: 'identifiers' must be a list of identifiers, got {inner!r}")
        return _identifiers(inner, name)
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "(", "{"):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = None
            if isinstance(parsed, (list, tuple, dict)):
                return _identifiers(parsed, name)
        if not text:
            raise ConfirmaConfigError(f"{name}: an identifier must not be empty or blank")
        if text in ("None", "null"):  # how a missing value renders (Python's str(None), JSON's null)
            raise ConfirmaConfigError(
                f"{name} is the text {text!r}: a template or XCom that rendered no value? "
                "Pass identifiers, or omit the argument to wait for every record"
            )
        return [value]
    if isinstance(value, bool):
        raise ConfirmaConfigError(f"{name}: expected identifiers, got the boolean {value!r}")
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise ConfirmaConfigError(
            f"{name}: expected an identifier or a list of identifiers, got {type(value).__name__}"
        )
    items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    out: list[str] = []
    for index, item in enumerate(items):
        if item is None or isinstance(item, bool) or not isinstance(item, (str, int, list, tuple, Mapping)):
            what = "None (a template or XCom that rendered no value?)" if item is None else type(item).__name__
            raise ConfirmaConfigError(f"{name}[{index}]: an identifier must be a string or an integer, got {what}")
        out += _identifiers(item, f"{name}[{index}]")  # a rendered XCom inside the list: its identifiers
    if not out:
        raise ConfirmaConfigError(
            f"{name} is empty: pass at least one identifier, or omit it to wait until no record is pending"
        )
    return out


def rendered_identifiers(value: Any, templated: bool, name: str = IDENTIFIERS_ARG) -> tuple[str, ...] | None:
    """:func:`normalize_identifiers` after rendering; ``None`` from a template (``templated``) is an error."""
    if value is None and templated:
        raise ConfirmaConfigError(
            f"{name} is None: its template or XCom rendered no value (did the upstream task push no XCom?); "
            "omit the argument to wait for every record"
        )
    return normalize_identifiers(value, name)


@contextlib.contextmanager
def rendered_arguments(task: Any) -> Iterator[None]:
    """Re-raise a bad rendered argument as :class:`ConfirmaArgumentError` (no retry) naming ``task``."""
    try:
        yield
    except ConfirmaConfigError as err:
        raise ConfirmaArgumentError(f"{type(task).__name__} '{task.task_id}': rendered {err}") from None


def is_template(value: Any) -> bool:
    """Whether Airflow's rendering still changes ``value``: Jinja text, an ``XComArg``, or a container holding one."""
    if isinstance(value, str):
        return any(marker in value for marker in ("{{", "{%", "{#"))  # expression, statement, comment
    if isinstance(value, dict):
        return any(is_template(item) for item in value.values())
    if isinstance(value, (list, tuple, set)):
        return any(is_template(item) for item in value)
    # As Airflow's templater: anything with a ``resolve`` (XComArg and its kin) but a path.
    return not isinstance(value, os.PathLike) and callable(getattr(value, "resolve", None))


def check_positive(value: Any, name: str, *, zero_ok: bool = False, what: str = "number") -> float:
    """A positive (with ``zero_ok``: or zero), finite number, else an error naming ``name`` and ``what``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value < 0 or (value == 0 and not zero_ok):
        wanted = f"a {what} >= 0" if zero_ok else f"a positive {what}"
        raise ConfirmaConfigError(f"{name} must be {wanted}, got {value!r}")
    return float(value)


def check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfirmaConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_query_params(value: Any, name: str = "query_params") -> dict[str, Any]:
    """Query parameters as a plain dict with string keys (``None`` → ``{}``); values pass through."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfirmaConfigError(f"{name} must be a dict of query parameters, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise ConfirmaConfigError(f"{name} keys must be non-empty strings, got {key!r}")
    return dict(value)


def check_timeout(value: Any, name: str = "timeout") -> float | None:
    """``None``, or a positive finite number of seconds (:func:`check_positive`)."""
    return None if value is None else check_positive(value, name, what="number of seconds")


def check_conn_id(value: Any, name: str = "confirma_conn_id") -> str:
    """A connection id: a non-empty, non-blank string, else an error naming ``name``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfirmaConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_status_codes(value: Any, name: str) -> frozenset[int]:
    """Integer status codes from a list, set, one code or strings of digits; never empty."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        value = [value]
    out: set[int] = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ConfirmaConfigError(f"{name} must hold integer status codes, got {item!r}")
        try:
            out.add(int(item))
        except ValueError:
            raise ConfirmaConfigError(f"{name} must hold integer status codes, got {item!r}") from None
    if not out:
        raise ConfirmaConfigError(f"{name} must not be empty")
    for default in (DEFAULT_SUCCESS_STATUSES, DEFAULT_PENDING_STATUSES):
        if out == default:
            return default  # thousands of waits share the default sets
    return frozenset(out)


def check_status_sets(success: Any = None, pending: Any = None) -> tuple[frozenset[int], frozenset[int]]:
    """``(success, pending)`` status codes from user input (``None``: the default); they must not overlap."""
    success_codes = DEFAULT_SUCCESS_STATUSES if success is None else check_status_codes(success, "success_statuses")
    pending_codes = DEFAULT_PENDING_STATUSES if pending is None else check_status_codes(pending, "pending_statuses")
    overlap = success_codes & pending_codes
    if overlap:
        raise ConfirmaConfigError(
            f"success_statuses and pending_statuses overlap on {sorted(overlap)}: a status must mean one thing"
        )
    return success_codes, pending_codes
