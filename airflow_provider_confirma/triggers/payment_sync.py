"""``ConfirmaPaymentSyncTrigger``: the deferred wait of ``ConfirmaPaymentSyncSensor``; its watcher twin.

Polls GET /accounting/payment; everything else is :class:`~.base.ConfirmaSyncStatusTrigger`'s
(the hook's async reader, the shared :class:`~.sync_wait.SyncWait` verdict, coalesced polls, one
event from the closed vocabulary).
"""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.events import ConfirmaSyncEventTrigger


class ConfirmaPaymentSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given payments (or all pending ones) are synced, failed, or time is up.

    Polls ``GET /accounting/payment``; arguments as :class:`~.base.ConfirmaSyncStatusTrigger`.
    """

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    noun = "payment"


class ConfirmaPaymentSyncEventTrigger(ConfirmaSyncEventTrigger):
    """For ``AssetWatcher``: one event per batch of payments that newly synced (or failed, if asked).

    Polls ``GET /accounting/payment``; arguments as :class:`~.events.ConfirmaSyncEventTrigger`.
    """

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    noun = "payment"


__all__ = ["ConfirmaPaymentSyncEventTrigger", "ConfirmaPaymentSyncTrigger"]
