"""The payment triggers: ``GET /accounting/payment``, for ``ConfirmaPaymentSyncSensor`` and ``AssetWatcher``."""

from __future__ import annotations

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.events import ConfirmaSyncEventTrigger


class ConfirmaPaymentSyncTrigger(ConfirmaSyncStatusTrigger):
    """Wait until the given payments (or all pending ones) are synced, failed, or time is up."""

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    noun = "payment"


class ConfirmaPaymentSyncEventTrigger(ConfirmaSyncEventTrigger):
    """For ``AssetWatcher``: one event per batch of payments that newly synced (or failed, if asked)."""

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    noun = "payment"


__all__ = ["ConfirmaPaymentSyncEventTrigger", "ConfirmaPaymentSyncTrigger"]
