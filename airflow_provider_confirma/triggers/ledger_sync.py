"""``ConfirmaLedgerSyncTrigger``: the deferred wait of ``ConfirmaLedgerSyncSensor``.

Polls GET /accounting/ledger; everything else is :class:`~.base.ConfirmaSyncStatusTrigger`'s.
Ledger and payment waits never share a poll (the endpoint is part of the poll key).
"""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.events import ConfirmaSyncEventTrigger


class ConfirmaLedgerSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given ledger documents (or all pending ones) are synced, failed, or time is up.

    Polls ``GET /accounting/ledger``; arguments as :class:`~.base.ConfirmaSyncStatusTrigger`, with
    ``source_identifiers`` the ``ledgerIdentifier`` values.
    """

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    noun = "ledger"


class ConfirmaLedgerSyncEventTrigger(ConfirmaSyncEventTrigger):
    """For ``AssetWatcher``: one event per batch of ledger documents that newly synced (or failed, if asked).

    Polls ``GET /accounting/ledger``; arguments as :class:`~.events.ConfirmaSyncEventTrigger`.
    """

    status_endpoint = Endpoint.LEDGER_SYNC_STATUS
    noun = "ledger"


__all__ = ["ConfirmaLedgerSyncEventTrigger", "ConfirmaLedgerSyncTrigger"]
