"""The Confirma partner API's paths and base URLs (confirma-api.md §2, §4): the one place they are written."""

from __future__ import annotations

from enum import Enum
from functools import cached_property

API_PREFIX = "/api/v1/partner"

#: Documented base hosts per environment. Production is inferred from the docs' cURL example.
ENVIRONMENT_HOSTS: dict[str, str] = {
    "staging": "https://staging-integrations.confirmafinance.com",
    "production": "https://integrations.confirmafinance.com",
}


class Endpoint(str, Enum):
    """A documented endpoint, as ``METHOD path`` relative to :data:`API_PREFIX`."""

    VALIDATE = "GET /validate"
    RENEW = "GET /renew"
    CREATE_CLIENT = "POST /client"
    CREATE_INVOICE = "POST /invoice"
    CREATE_INVOICE_ACTION = "POST /invoice/action"
    CASE_DETAILS = "GET /invoice/case"
    DISTRIBUTION_INFO = "GET /invoice/distribution"
    PAYMENTS = "GET /payments"
    SETTLEMENTS = "GET /settlements"
    SUBMIT_LEDGER = "POST /accounting/ledger"
    LEDGER_SYNC_STATUS = "GET /accounting/ledger"
    SUBMIT_PAYMENTS = "POST /accounting/payment"
    PAYMENT_SYNC_STATUS = "GET /accounting/payment"

    @cached_property
    def method(self) -> str:
        return self.value.split(" ", 1)[0]

    @cached_property
    def path(self) -> str:
        """The path relative to the API prefix, e.g. ``/accounting/payment``."""
        return self.value.split(" ", 1)[1]

    @cached_property
    def full_path(self) -> str:
        """The absolute path on the host, e.g. ``/api/v1/partner/accounting/payment``."""
        return API_PREFIX + self.path

    @property
    def returns_secrets(self) -> bool:
        """Whether a response of this endpoint carries a secret (:data:`SECRET_RETURNING`)."""
        return self in SECRET_RETURNING


#: Endpoints whose responses carry secrets (a fresh token, a new client's API key): no message quotes their bodies.
SECRET_RETURNING: frozenset[Endpoint] = frozenset({Endpoint.RENEW, Endpoint.CREATE_CLIENT})
