"""Payments operators: read the agency's payments and settlements for a date window (by default the
DAG run's data interval, see :class:`~airflow_provider_confirma.operators.base.ConfirmaWindowedOperator`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaResponseError
from airflow_provider_confirma.operators.base import ConfirmaWindowedOperator, records_result

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def totals_by_currency(records: Iterable[Any], amount_key: str, currency_key: str = "currency") -> dict[str, str]:
    """Exact sum of ``amount_key`` per currency, as decimal text; records without a number are skipped."""
    totals: dict[str, Decimal] = {}
    for record in records:
        amount = record.get(amount_key) if isinstance(record, Mapping) else None
        if isinstance(amount, (int, float, Decimal)) and not isinstance(amount, bool):
            currency = str(record.get(currency_key) or "?")
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(amount))
    return {currency: f"{total:f}" for currency, total in sorted(totals.items())}


def objects_of(records: list[Any], endpoint: Endpoint, field: str) -> list[Any]:
    """``records`` when each is a JSON object, else a ConfirmaResponseError naming the first other one."""
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ConfirmaResponseError.wrong_shape(
                endpoint.method, endpoint.path, f"{field}[{index}]", "an object", record
            )
    return records


class ConfirmaGetPaymentsOperator(ConfirmaWindowedOperator):
    """GET ``/payments``: payments the agency received and allocated in a window.

    The window parameters ``fromDate``/``toDate`` are documented. The docs warn that these allocations
    can still change; settlements are authoritative.

    :return: ``{"summary": {"window": {...}, "total", "returned", "omitted", "records_omitted"}, "records": [...]}``.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        params, window = self.build_query(context)
        body = self.hook.get_payments(params)
        if body is not None and not isinstance(body, list):
            raise ConfirmaResponseError.wrong_shape("GET", Endpoint.PAYMENTS.path, "", "a JSON array", body)
        records = objects_of(body or [], Endpoint.PAYMENTS, "")
        self.log.info("Fetched %d payment(s) for window %s", len(records), window or "API default")
        return records_result(records, self.max_xcom_records, {"window": window or None})


class ConfirmaGetSettlementsOperator(ConfirmaWindowedOperator):
    """GET ``/settlements``: settlements (payouts) from the agency, with their allocations.

    The period parameter names are not in Confirma's docs: ``from_param``/``to_param`` default to
    ``fromDate``/``toDate``; change them if your Confirma contact says otherwise. Without a window
    (no data interval and no dates), the API returns its default: the last 30 days.

    :return: ``{"summary": {"window", "createdAt", "totals": {currency: amount}, "total", "returned",
        "omitted", "records_omitted"}, "records": [settlement, ...]}``; ``totals`` sums ``settlementAmount`` exactly
        over all settlements, also those left out of ``records``.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        params, window = self.build_query(context)
        body = self.hook.get_settlements(params)
        if body is None:
            body = {}
        if not isinstance(body, Mapping) or not isinstance(body.get("settlements", []), list):
            raise ConfirmaResponseError(
                "GET", Endpoint.SETTLEMENTS.path, 200, "", "expected a JSON object with a 'settlements' list"
            )
        settlements = objects_of(body.get("settlements") or [], Endpoint.SETTLEMENTS, "settlements")
        self.log.info("Fetched %d settlement(s) for window %s", len(settlements), window or "API default (30 days)")
        summary = {
            "window": window or None,
            "createdAt": body.get("createdAt"),
            "totals": totals_by_currency(settlements, "settlementAmount"),
        }
        return records_result(settlements, self.max_xcom_records, summary)


__all__ = ["ConfirmaGetPaymentsOperator", "ConfirmaGetSettlementsOperator", "totals_by_currency"]
