"""The ledger triggers: ``GET /accounting/ledger``, for ``ConfirmaLedgerSyncSensor`` and ``AssetWatcher``."""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.events import ConfirmaSyncEventTrigger


class ConfirmaLedgerSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given ledger documents (by ``ledgerIdentifier``) or all pending ones sync, fail, or time is up."""

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    noun = "ledger"


class ConfirmaLedgerSyncEventTrigger(ConfirmaSyncEventTrigger):
    """For ``AssetWatcher``: one event per batch of ledger documents that newly synced (or failed, if asked)."""

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    noun = "ledger"


__all__ = ["ConfirmaLedgerSyncEventTrigger", "ConfirmaLedgerSyncTrigger"]
