"""Invoice operators: create invoices and invoice actions, read case details and distribution info.

No documented endpoint can confirm by invoice number that a POST arrived, so a POST whose fate is
unknown fails the task without retry, saying what to check before running it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_confirma.arguments import check_query_params, is_template, rendered_arguments
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, ConfirmaResponseError
from airflow_provider_confirma.operators.base import (
    ConfirmaBaseOperator,
    ConfirmaPayloadError,
    ConfirmaWindowedOperator,
    load_payload,
    object_result,
    raise_for_issues,
    submit_once,
    to_xcom_safe,
    wire_numbers,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

RECOVERY_HINT = (
    "Check ConfirmaGetDistributionInfoOperator (GET /invoice/distribution) or ConfirmaGetCaseDetailsOperator "
    "for this invoice before running the task again."
)


class ConfirmaCreateInvoiceOperator(ConfirmaBaseOperator):
    """POST ``/invoice``: submit one sales invoice (a ``SalesInvoiceRequest``) for distribution.

    :param invoice: the request body (``processing``, ``distribution``, ``invoice``), or its JSON
        text. Money fields (``amount``, ``…Amount``) given as text go out as exact JSON numbers.
        Validated before sending (at DAG parse time when it holds no template).
    :return: ``{"identifiers": [invoice number], "response": <the API's answer, XCom-safe>}``.
    """

    template_fields: Sequence[str] = ("invoice",)

    def __init__(self, *, invoice: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.invoice = invoice
        if not is_template(invoice):
            self._body(invoice)

    @staticmethod
    def _body(invoice: Any) -> dict[str, Any]:
        from airflow_provider_confirma.payloads import SalesInvoiceRequest, payload_issues

        body = wire_numbers(load_payload(invoice, "invoice"))
        raise_for_issues(payload_issues(SalesInvoiceRequest, body), "invoice payload")
        return dict(body)

    def execute(self, context: Context) -> dict[str, Any]:
        body = self._body(self.invoice)
        number = str(body["invoice"]["header"]["number"])
        response = submit_once(
            lambda: self.hook.create_invoice(body),
            endpoint=Endpoint.CREATE_INVOICE,
            what=f"invoice {number}",
            recovery_hint=RECOVERY_HINT,
        )
        self.log.info("Submitted invoice %s", number)
        return {"identifiers": [number], "response": to_xcom_safe(response, max_items=self.max_xcom_records)}


class ConfirmaCreateInvoiceActionOperator(ConfirmaBaseOperator):
    """POST ``/invoice/action``: queue actions (``COMMENT``, ``DUEDATE``, ``DIRECTPAYMENT``, ...) on cases.

    :param actions: the ``actions`` list (or the whole body ``{"actions": [...]}``, or its JSON text).
        Amounts (``data.amount``, ``outstanding…Amount``) go out as exact JSON numbers. Validated
        before sending.
    :return: ``{"identifiers": [invoice numbers], "actions": count, "codes": [...], "response": ...}``.
    """

    template_fields: Sequence[str] = ("actions",)

    def __init__(self, *, actions: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.actions = actions
        if not is_template(actions):
            self._actions(actions)

    @staticmethod
    def _actions(actions: Any) -> list[Any]:
        from airflow_provider_confirma.payloads import InvoiceActionsRequest, payload_issues

        value = wire_numbers(load_payload(actions, "actions", "actions"))
        if not isinstance(value, list):
            raise ConfirmaPayloadError(f"actions must be a list of action objects, got {type(value).__name__}")
        raise_for_issues(payload_issues(InvoiceActionsRequest, {"actions": value}), "invoice action payload")
        return value

    def execute(self, context: Context) -> dict[str, Any]:
        actions = self._actions(self.actions)
        numbers = list(dict.fromkeys(str(a["data"]["invoiceNumber"]) for a in actions))
        codes = [str(a["code"]) for a in actions]
        response = submit_once(
            lambda: self.hook.create_invoice_action({"actions": actions}),
            endpoint=Endpoint.CREATE_INVOICE_ACTION,
            what=f"{len(actions)} action(s) ({', '.join(codes)}) on invoice(s) {', '.join(numbers)}",
            recovery_hint=RECOVERY_HINT.replace("this invoice", "these cases"),
        )
        self.log.info("Queued %d action(s) %s on invoice(s) %s", len(actions), codes, numbers)
        return {
            "identifiers": numbers,
            "actions": len(actions),
            "codes": codes,
            "response": to_xcom_safe(response, max_items=self.max_xcom_records),
        }


class ConfirmaGetCaseDetailsOperator(ConfirmaBaseOperator):
    """GET ``/invoice/case``: an agency case's summary, balance, payments, events and timeline.

    :param case_id: the case, sent as ``case_id_param`` (templated).
    :param case_id_param: its query parameter name (default ``caseId``: inferred, Confirma does not document it).
    :param query_params: further query parameters, passed through (they win over ``case_id``; templated).
    :return: ``{"summary": {"query": {...}, "truncated": {...}}, "data": <the case, lists capped>}``.
    """

    template_fields: Sequence[str] = ("case_id", "query_params")

    def __init__(
        self,
        *,
        case_id: Any = None,
        case_id_param: str = "caseId",
        query_params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if case_id is None and not query_params:
            raise ConfirmaConfigError("give case_id or query_params: the case to read")
        if not is_template(query_params):  # a template or XCom is checked after rendering (execute)
            check_query_params(query_params)
        self.case_id = case_id
        self.case_id_param = case_id_param
        self.query_params = query_params

    def execute(self, context: Context) -> dict[str, Any]:
        with rendered_arguments(self):
            params = check_query_params(self.query_params)
            if self.case_id is not None and str(self.case_id).strip():
                params = {self.case_id_param: self.case_id, **params}
            elif not params:
                raise ConfirmaConfigError(f"case_id is {self.case_id!r} and no query_params: nothing names the case")
        body = self.hook.get_case_details(params)
        if body is not None and not isinstance(body, Mapping):
            raise ConfirmaResponseError.wrong_shape("GET", Endpoint.CASE_DETAILS.path, "", "an object", body)
        self.log.info("Fetched case details for %s", params)
        return object_result(body, self.max_xcom_records, {"query": params})


class ConfirmaGetDistributionInfoOperator(ConfirmaWindowedOperator):
    """GET ``/invoice/distribution``: distribution records of submitted invoices (once a day is advised).

    The query parameters are not documented; the response echoes ``fromInvDate``/``toInvDate`` as
    applied filters, so the window parameters default to those names. No window is sent by default
    (``use_data_interval=False``): the API then applies its own (apparently the last 30 days).

    :return: ``{"summary": {"window", "totalCount", "successfulCount", "failedCount", "truncated"},
        "data": <the response, lists capped>}``.
    """

    def __init__(
        self,
        *,
        from_param: str = "fromInvDate",
        to_param: str = "toInvDate",
        use_data_interval: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(from_param=from_param, to_param=to_param, use_data_interval=use_data_interval, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        params, window = self.build_query(context)
        body = self.hook.get_distribution_info(params)
        counts = distribution_counts(body)
        self.log.info("Distribution info for %s: %s", params or "API default window", counts or "no metaData")
        return object_result(body, self.max_xcom_records, {"window": window or None, **counts})


def distribution_counts(body: Any) -> dict[str, Any]:
    """``metaData``'s ``totalCount``, ``successfulCount`` and ``failedCount`` (integers or null) of a
    ``GET /invoice/distribution`` body; a shape that differs is a ConfirmaResponseError naming the field."""

    def wrong(field: str, expected: str, value: Any) -> ConfirmaResponseError:
        return ConfirmaResponseError.wrong_shape("GET", Endpoint.DISTRIBUTION_INFO.path, field, expected, value)

    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise wrong("", "an object", body)
    meta = body.get("metaData")
    if meta is not None and not isinstance(meta, Mapping):
        raise wrong("metaData", "an object", meta)
    if not meta:
        return {}
    counts = {k: meta.get(k) for k in ("totalCount", "successfulCount", "failedCount")}
    for key, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise wrong(f"metaData.{key}", "an integer", value)
    return counts


__all__ = [
    "ConfirmaCreateInvoiceActionOperator",
    "ConfirmaCreateInvoiceOperator",
    "ConfirmaGetCaseDetailsOperator",
    "ConfirmaGetDistributionInfoOperator",
]
