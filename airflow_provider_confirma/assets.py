"""The provider's Airflow Assets: one URI per synced record kind, derived from its endpoint path.

A task that waits for a sync (e.g. ``ConfirmaPaymentSyncSensor(emit_asset=True)``) declares the
matching asset as an outlet, so downstream DAGs can be scheduled on synced payments or ledgers.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from airflow_provider_confirma.endpoints import Endpoint

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Asset

ASSET_SCHEME = "confirma"

#: ``confirma://accounting/payment``: payments synced to the client's accounting system.
PAYMENT_SYNC_ASSET_URI = f"{ASSET_SCHEME}:/{Endpoint.PAYMENT_SYNC_STATUS.path}"
#: ``confirma://accounting/ledger``: ledger documents synced to the client's accounting system.
LEDGER_SYNC_ASSET_URI = f"{ASSET_SCHEME}:/{Endpoint.LEDGER_SYNC_STATUS.path}"

_CONSTANTS = {"PAYMENT_SYNC_ASSET": PAYMENT_SYNC_ASSET_URI, "LEDGER_SYNC_ASSET": LEDGER_SYNC_ASSET_URI}


@functools.cache
def sync_asset(uri: str) -> Asset:
    """The ``Asset`` of ``uri``, built once on first use: a DAG parse that emits no asset pays nothing."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(uri)


def __getattr__(name: str) -> Asset:
    """``PAYMENT_SYNC_ASSET`` and ``LEDGER_SYNC_ASSET``, built on first access (PEP 562)."""
    if name in _CONSTANTS:
        return sync_asset(_CONSTANTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ASSET_SCHEME",
    "LEDGER_SYNC_ASSET",  # noqa: F822 - built on first access (__getattr__)
    "LEDGER_SYNC_ASSET_URI",
    "PAYMENT_SYNC_ASSET",  # noqa: F822 - built on first access (__getattr__)
    "PAYMENT_SYNC_ASSET_URI",
    "sync_asset",
]
