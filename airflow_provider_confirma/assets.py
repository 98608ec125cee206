"""The provider's Airflow Assets: one URI per synced record kind, derived from its endpoint path.

A task that waits for a sync (e.g. ``ConfirmaPaymentSyncSensor(emit_asset=True)``) declares the
matching asset as an outlet, so downstream DAGs can be scheduled on synced payments or ledgers.
"""

from __future__ import annotations

from airflow.sdk import Asset

from airflow_provider_confirma.endpoints import Endpoint

ASSET_SCHEME = "confirma"

#: ``confirma://accounting/payment``: payments synced to the client's accounting system.
PAYMENT_SYNC_ASSET_URI = f"{ASSET_SCHEME}:/{Endpoint.PAYMENT_SYNC_STATUS.path}"
#: ``confirma://accounting/ledger``: ledger documents synced to the client's accounting system.
LEDGER_SYNC_ASSET_URI = f"{ASSET_SCHEME}:/{Endpoint.LEDGER_SYNC_STATUS.path}"

PAYMENT_SYNC_ASSET = Asset(PAYMENT_SYNC_ASSET_URI)
LEDGER_SYNC_ASSET = Asset(LEDGER_SYNC_ASSET_URI)

__all__ = [
    "ASSET_SCHEME",
    "LEDGER_SYNC_ASSET",
    "LEDGER_SYNC_ASSET_URI",
    "PAYMENT_SYNC_ASSET",
    "PAYMENT_SYNC_ASSET_URI",
]
