"""``ConfirmaPaymentSyncSensor``: wait until submitted payments are synced (GET /accounting/payment)."""

from __future__ import annotations

from airflow_provider_confirma.assets import PAYMENT_SYNC_ASSET_URI
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.sensors.base import ConfirmaSyncStatusSensor
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

#: task state store key of the transient-error count in reschedule mode (each poke is a new process)
ERROR_STREAK_KEY = "confirma_payment_sync_error_streak"


class ConfirmaPaymentSyncSensor(ConfirmaSyncStatusSensor):
    """Wait until payments submitted to Confirma are synced (GET /accounting/payment).

    ``source_identifiers`` are ``paymentIdentifier`` values, e.g. ``ConfirmaSubmitPaymentsOperator``'s
    XCom; the other arguments are :class:`~.base.ConfirmaSyncStatusSensor`'s (docs/sensor.md).
    """

    status_endpoint = Endpoint.PAYMENT_SYNC_STATUS
    asset_uri = PAYMENT_SYNC_ASSET_URI
    noun = "payment"
    error_streak_key = ERROR_STREAK_KEY
    trigger_class = ConfirmaPaymentSyncTrigger


__all__ = ["ERROR_STREAK_KEY", "ConfirmaPaymentSyncSensor"]
