"""``ConfirmaPaymentSyncTrigger``: the deferred wait of ``ConfirmaPaymentSyncSensor``.

Polls GET /accounting/payment; everything else is :class:`~.base.ConfirmaSyncStatusTrigger`'s
(the hook's async reader, the shared :class:`~.sync_wait.SyncWait` verdict, coalesced polls, one
event from the closed vocabulary).
"""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger


class ConfirmaPaymentSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given payments (or all pending ones) are synced, failed, or time is up.

    Polls ``GET /accounting/payment``; arguments as :class:`~.base.ConfirmaSyncStatusTrigger`.
    """

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    noun = "payment"


__all__ = ["ConfirmaPaymentSyncTrigger"]
