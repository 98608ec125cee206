"""Deprecated: the payload rules moved to :mod:`airflow_provider_confirma.payloads`; each old name warns, naming it."""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

#: names that moved to ``payloads`` unchanged
_MOVED = [
    "ISO_4217_CODES",
    "PayloadValidationError",
    "ValidationIssue",
    "check_amount",
    "check_country",
    "check_currency",
    "check_email",
    "check_iso_date",
    "check_language",
    "check_number",
    "ensure_valid",
    "format_issues",
]
#: the old per-endpoint functions and the model each one checks with ``payloads.payload_issues``
_VALIDATORS = {
    "validate_client_payload": "ClientRequest",
    "validate_invoice_action_payload": "InvoiceActionsRequest",
    "validate_invoice_payload": "SalesInvoiceRequest",
    "validate_ledger_payload": "LedgerRequest",
    "validate_payments_payload": "PaymentsRequest",
}
__all__ = [*_MOVED, *_VALIDATORS]  # served by __getattr__, so ``import *`` still works, and warns


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from airflow_provider_confirma import payloads

    if name in _VALIDATORS:
        model = _VALIDATORS[name]
        value: Any = partial(payloads.payload_issues, getattr(payloads, model))
        new = f"airflow_provider_confirma.payloads.payload_issues({model}, body)"
    else:
        value = getattr(payloads, name)
        new = f"airflow_provider_confirma.payloads.{name}"
    warnings.warn(
        f"airflow_provider_confirma.validation.{name} is deprecated: use {new}", DeprecationWarning, stacklevel=2
    )
    return value
