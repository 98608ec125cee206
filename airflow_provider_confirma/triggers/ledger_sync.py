"""The ledger triggers: ``GET /accounting/ledger``, for ``ConfirmaLedgerSyncSensor`` and ``AssetWatcher``."""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.events import ConfirmaSyncEventTrigger


class ConfirmaLedgerSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given ledger documents (or all pending ones) are synced, failed, or time is up.

    Arguments as :class:`~.base.ConfirmaSyncStatusTrigger`; ``source_identifiers`` are ``ledgerIdentifier`` values.
    """

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    noun = "ledger"


class ConfirmaLedgerSyncEventTrigger(ConfirmaSyncEventTrigger):
    """For ``AssetWatcher``: one event per batch of ledger documents that newly synced (or failed, if asked).

    Arguments as :class:`~.events.ConfirmaSyncEventTrigger`.
    """

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    noun = "ledger"


__all__ = ["ConfirmaLedgerSyncEventTrigger", "ConfirmaLedgerSyncTrigger"]
