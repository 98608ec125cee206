"""``ConfirmaPaymentSyncTrigger``: the deferred wait of ``ConfirmaPaymentSyncSensor``.

Polls GET /accounting/payment; everything else is :class:`~.base.ConfirmaSyncStatusTrigger`'s
(the hook's async reader, the shared :class:`~.sync_wait.SyncWait` verdict, coalesced polls, one
event from the closed vocabulary). The helpers below are re-exported from :mod:`.base` for callers
that import them from here.
"""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ConfirmaSyncStatusTrigger,
    describe_error,
    is_transient,
    retry_policy_from,
)


class ConfirmaPaymentSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given payments (or all pending ones) are synced, failed, or time is up.

    Polls ``GET /accounting/payment``; arguments as :class:`~.base.ConfirmaSyncStatusTrigger`.
    """

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    noun = "payment"


__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_ERRORS",
    "ConfirmaPaymentSyncTrigger",
    "describe_error",
    "is_transient",
    "retry_policy_from",
]
