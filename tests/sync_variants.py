"""The two sync waits, payment and ledger, as data: the sensor and trigger tests run each behaviour
on both (``@pytest.fixture(params=VARIANTS)``), so the ledger tests are no longer a copy of the payment
ones. A behaviour only one variant has is tested for that one, by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_confirma import assets
from airflow_provider_confirma.assets import LEDGER_SYNC_ASSET_URI, PAYMENT_SYNC_ASSET_URI
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.sensors.base import ConfirmaSyncStatusSensor
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.base import ConfirmaSyncStatusTrigger
from airflow_provider_confirma.triggers.ledger_sync import ConfirmaLedgerSyncTrigger
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

DESCRIPTIONS = {0: "Pending", 1: "Successfully synced"}


@dataclass(frozen=True)
class SyncVariant:
    """What differs between the payment and the ledger wait."""

    name: str
    #: the word in messages and log lines: "Confirma <noun> sync ..."
    noun: str
    sensor: type[ConfirmaSyncStatusSensor]
    trigger: type[ConfirmaSyncStatusTrigger]
    endpoint: Endpoint
    #: the list in the status response: {"payments": [...]} / {"ledgers": [...]}
    list_key: str
    asset_uri: str
    error_streak_key: str
    #: the record's own date field (parsed, so a bad value makes the record unreadable)
    date_field: str
    #: fields a record of this kind has besides the common ones, as the API sends them
    own_fields: tuple[tuple[str, str], ...]

    @property
    def asset(self) -> Any:
        """``PAYMENT_SYNC_ASSET`` / ``LEDGER_SYNC_ASSET``, read from the public constant."""
        return getattr(assets, f"{self.name.upper()}_SYNC_ASSET")

    @property
    def trigger_classpath(self) -> str:
        return f"{self.trigger.__module__}.{self.trigger.__qualname__}"

    def record(self, ident: str, status: int = 1, description: str | None = None) -> dict[str, Any]:
        """One record of the status list as the API documents it."""
        return {
            "sourceIdentifier": ident,
            **dict(self.own_fields),
            "syncDate": "2026-02-03" if status == 1 else None,
            "status": status,
            "description": description or DESCRIPTIONS.get(status, "Closed period"),
        }

    def body(self, statuses: dict[str, int], descriptions: dict[str, str] | None = None) -> dict[str, Any]:
        """A status response: ``statuses`` maps identifier -> status code."""
        descriptions = descriptions or {}
        return {self.list_key: [self.record(i, s, descriptions.get(i)) for i, s in statuses.items()]}


PAYMENT = SyncVariant(
    name="payment",
    noun="payment",
    sensor=ConfirmaPaymentSyncSensor,
    trigger=ConfirmaPaymentSyncTrigger,
    endpoint=Endpoint.PAYMENT_SYNC_STATUS,
    list_key="payments",
    asset_uri=PAYMENT_SYNC_ASSET_URI,
    error_streak_key="confirma_payment_sync_error_streak",
    date_field="paymentDate",
    own_fields=(("invoiceNumber", "10001"), ("paymentDate", "2026-02-02")),
)
LEDGER = SyncVariant(
    name="ledger",
    noun="ledger",
    sensor=ConfirmaLedgerSyncSensor,
    trigger=ConfirmaLedgerSyncTrigger,
    endpoint=Endpoint.LEDGER_SYNC_STATUS,
    list_key="ledgers",
    asset_uri=LEDGER_SYNC_ASSET_URI,
    error_streak_key="confirma_ledger_sync_error_streak",
    date_field="documentDate",
    own_fields=(("documentDate", "2026-02-02"), ("documentName", "5001"), ("documentStatus", "Approved")),
)
VARIANTS = (PAYMENT, LEDGER)
VARIANT_PARAMS = [pytest.param(v, id=v.name) for v in VARIANTS]


def other_variant(variant: SyncVariant) -> SyncVariant:
    """The other wait: the one whose endpoint, asset and records ``variant`` must never touch."""
    return LEDGER if variant is PAYMENT else PAYMENT
