"""``ConfirmaLedgerSyncSensor``: wait until submitted ledger documents are synced (GET /accounting/ledger)."""

from __future__ import annotations

from airflow_provider_confirma.assets import LEDGER_SYNC_ASSET_URI
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.sensors.base import ConfirmaSyncStatusSensor
from airflow_provider_confirma.triggers.ledger_sync import ConfirmaLedgerSyncTrigger


class ConfirmaLedgerSyncSensor(ConfirmaSyncStatusSensor):
    """Wait until ledger documents submitted to Confirma are synced (GET /accounting/ledger).

    ``source_identifiers`` are ``ledgerIdentifier`` values, e.g. ``ConfirmaSubmitLedgerOperator``'s
    XCom; the other arguments are :class:`~.base.ConfirmaSyncStatusSensor`'s (docs/sensor.md).
    """

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    asset_uri = LEDGER_SYNC_ASSET_URI
    noun = "ledger"
    error_streak_key = "confirma_ledger_sync_error_streak"
    trigger_class = ConfirmaLedgerSyncTrigger


__all__ = ["ConfirmaLedgerSyncSensor"]
