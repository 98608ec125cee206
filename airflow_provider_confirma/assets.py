"""The provider's Airflow Assets (one URI per synced record kind, from its endpoint path) and the extra
of their events, the same for the sensors and the status operators (:func:`sync_asset_extra`)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_confirma.endpoints import Endpoint

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Asset

ASSET_SCHEME = "confirma"

#: ``confirma://accounting/payment``: payments synced to the client's accounting system.
PAYMENT_SYNC_ASSET_URI = f"{ASSET_SCHEME}:/{Endpoint.PAYMENT_SYNC_STATUS.path}"
#: ``confirma://accounting/ledger``: ledger documents synced to the client's accounting system.
LEDGER_SYNC_ASSET_URI = f"{ASSET_SCHEME}:/{Endpoint.LEDGER_SYNC_STATUS.path}"

#: How many identifiers an asset event's extra names (sensors and status operators alike).
ASSET_EXTRA_IDENTIFIERS = 100

_CONSTANTS = {"PAYMENT_SYNC_ASSET": PAYMENT_SYNC_ASSET_URI, "LEDGER_SYNC_ASSET": LEDGER_SYNC_ASSET_URI}


@functools.cache
def sync_asset(uri: str) -> Asset:
    """The ``Asset`` of ``uri``, built once on first use: a DAG parse that emits no asset pays nothing."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(uri)


def sync_asset_extra(xcom: Mapping[str, Any], success: Collection[int]) -> dict[str, Any]:
    """``{"synced": <count>, "identifiers": [...]}``, the extra of a finished wait's asset event, from the
    task's XCom value (a sensor's summary, or a status operator's result, its counts under ``summary``):
    ``counts.synced``, and at most :data:`ASSET_EXTRA_IDENTIFIERS` ``records`` whose status is in ``success``.
    """
    records: Iterable[Any] = xcom.get("records") or []
    synced = [
        str(record["sourceIdentifier"])
        for record in records
        if isinstance(record, Mapping) and "sourceIdentifier" in record and record.get("status") in success
    ]
    head = xcom.get("summary")
    counts = (head if isinstance(head, Mapping) else xcom).get("counts")
    count = counts.get("synced") if isinstance(counts, Mapping) else None
    return {
        "synced": count if isinstance(count, int) and not isinstance(count, bool) else len(synced),
        "identifiers": synced[:ASSET_EXTRA_IDENTIFIERS],
    }


def __getattr__(name: str) -> Asset:
    """``PAYMENT_SYNC_ASSET`` and ``LEDGER_SYNC_ASSET``, built on first access (PEP 562)."""
    if name in _CONSTANTS:
        return sync_asset(_CONSTANTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ASSET_EXTRA_IDENTIFIERS",
    "ASSET_SCHEME",
    "LEDGER_SYNC_ASSET",  # noqa: F822 - built on first access (__getattr__)
    "LEDGER_SYNC_ASSET_URI",
    "PAYMENT_SYNC_ASSET",  # noqa: F822 - built on first access (__getattr__)
    "PAYMENT_SYNC_ASSET_URI",
    "sync_asset",
    "sync_asset_extra",
]
