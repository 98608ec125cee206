"""Helpers of the sandbox tests: an HTTP client bound to the session sandbox, and sample bodies.

The sandbox itself comes from the package's pytest plugin (``confirma_sandbox``: the session server,
reset before each test).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.json_codec import encode_json


def payment(ident: str, amount: str = "12.30", **extra: Any) -> dict[str, Any]:
    return {
        "paymentIdentifier": ident,
        "invoiceNumber": "10001",
        "paymentDate": "2026-02-02",
        "bookingDate": None,
        "amount": Decimal(amount),
        "currency": "EUR",
        "targetIdentifier": "invoicenumber",
        "paymentReference": "RF18100013",
        "sourceName": "Example Buyer Oy",
        **extra,
    }


def ledger(ident: str) -> dict[str, Any]:
    return {
        "ledgers": {
            "ledgerIdentifier": ident,
            "companyIdentifier": "7654321-0",
            "documentType": "ML",
            "documentName": "5001",
            "documentDate": "2026-01-31",
            "calculationMode": "GROSS",
            "ledgerRows": [
                {"bookingDate": "2026-01-31", "accountNumber": "1700", "amount": Decimal("124.00")},
                {"bookingDate": "2026-01-31", "accountNumber": "3000", "amount": Decimal("-124.00")},
            ],
        }
    }


def invoice(number: int, payment_control: bool = True) -> dict[str, Any]:
    return {
        "processing": {"paymentControlEnabled": payment_control},
        "distribution": {"method": "EMAIL", "enabled": True},
        "invoice": {
            "header": {"number": number, "date": "2026-11-20", "dueDate": "2026-12-04", "currencyCode": "EUR"},
            "parties": {"sellerParty": {"name": "Seller Oy"}, "buyerParty": {"name": "Buyer Oy"}},
        },
    }


class Api:
    """``requests`` against the sandbox API with its key; ``call(Endpoint, ...)`` builds the URL."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.key = key
        self.session = requests.Session()

    def call(
        self,
        endpoint: Endpoint,
        body: Any = None,
        *,
        key: str | None = "default",
        params: dict[str, Any] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if key is not None:
            headers["X-Api-Key"] = self.key if key == "default" else key
        data = raw if raw is not None else (encode_json(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = content_type
        return self.session.request(
            endpoint.method, self.base + endpoint.path, data=data, headers=headers, params=params, timeout=10
        )

    def payment_status(self) -> list[dict[str, Any]]:
        response = self.call(Endpoint.PAYMENT_SYNC_STATUS)
        return [] if response.status_code == 204 else response.json()["payments"]


@pytest.fixture
def api(confirma_sandbox) -> Iterator[Api]:
    client = Api(confirma_sandbox.api_url, confirma_sandbox.api_key)
    yield client
    client.session.close()
