"""Bad input from DAG authors fails early, naming the argument, across the sensors, operators, hook,
trigger and connection.

* Static arguments fail when the DAG file is parsed (the constructor raises).
* Templated arguments fail after rendering (``render_template_fields`` as the task runner calls
  it, then ``execute``), before any request: a real sandbox counts the requests, and must see none.
* Connections fail on first use, naming the connection and the field, before any request.

Tables of (input, expected message fragment); the per-module unit tests hold more single cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_confirma.exceptions import ConfirmaConfigError
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.operators.accounting import (
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitLedgerOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.invoices import (
    ConfirmaCreateInvoiceActionOperator,
    ConfirmaCreateInvoiceOperator,
    ConfirmaGetCaseDetailsOperator,
    ConfirmaGetDistributionInfoOperator,
)
from airflow_provider_confirma.operators.payments import ConfirmaGetPaymentsOperator, ConfirmaGetSettlementsOperator
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import only_on_airflow_3_3

SECRET = "ck_test_SECRET_bad_input_9e41"


def payment(**changes: Any) -> dict[str, Any]:
    base = {
        "paymentIdentifier": "p-1",
        "invoiceNumber": "900001",
        "paymentDate": "2026-02-02",
        "amount": "12.30",
        "currency": "EUR",
    }
    base.update(changes)
    return base


def ledger(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ledgerIdentifier": "lg-1",
        "companyIdentifier": "7654321-0",
        "documentDate": "2026-01-31",
        "ledgerRows": [
            {"bookingDate": "2026-01-31", "accountNumber": "1700", "amount": "124.00"},
            {"bookingDate": "2026-01-31", "accountNumber": "3000", "amount": "-124.00"},
        ],
    }
    base.update(changes)
    return base


def invoice(**header: Any) -> dict[str, Any]:
    return {
        "processing": {"paymentControlEnabled": True},
        "distribution": {"method": "EMAIL", "enabled": True},
        "invoice": {
            "header": {
                "number": 810001,
                "date": "2026-11-20",
                "dueDate": "2026-12-04",
                "currencyCode": "EUR",
                **header,
            },
            "parties": {"sellerParty": {"name": "Seller Oy"}, "buyerParty": {"name": "Buyer Oy"}},
        },
    }


def action(**data: Any) -> dict[str, Any]:
    return {
        "code": "DIRECTPAYMENT",
        "data": {
            "invoiceNumber": 810001,
            "caseId": 555001,
            "amount": "50.00",
            "currency": "EUR",
            "paymentDate": "2026-02-01",
            **data,
        },
    }


S = ConfirmaPaymentSyncSensor
# -- parse time ------------------------------------------------------------------------------------
PARSE_TIME: list[Any] = [
    # sensor: wrong types and shapes
    pytest.param(
        lambda: S(task_id="t", source_identifiers=3.5), "source_identifiers: expected an identifier", id="s-ids-float"
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers=True),
        "source_identifiers: expected identifiers, got the boolean",
        id="s-ids-bool",
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers=[{"id": "a"}]),
        "source_identifiers[0]: a dict must carry the identifiers under an 'identifiers' key; got keys ['id']",
        id="s-ids-dict-item",
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers=["a", " "]),
        "source_identifiers[1]: an identifier must not be empty",
        id="s-ids-blank",
    ),
    pytest.param(
        lambda: S(task_id="t", success_statuses="synced"),
        "success_statuses must hold integer status codes, got 'synced'",
        id="s-success-text",
    ),
    pytest.param(
        lambda: S(task_id="t", pending_statuses=[0.5]),
        "pending_statuses must hold integer status codes, got 0.5",
        id="s-pending-float",
    ),
    pytest.param(
        lambda: S(task_id="t", max_xcom_records="100"), "max_xcom_records must be an integer", id="s-max-records-text"
    ),
    pytest.param(
        lambda: S(task_id="t", query_params={1: "a"}), "query_params keys must be non-empty strings", id="s-query-key"
    ),
    pytest.param(
        lambda: S(task_id="t", query_params="fromDate=2026-01-01"), "query_params must be a dict", id="s-query-text"
    ),
    pytest.param(
        lambda: S(task_id="t", confirma_conn_id=None), "confirma_conn_id must be a non-empty string", id="s-conn-none"
    ),
    pytest.param(
        lambda: S(task_id="t", http_retry_policy="fast"),
        "http_retry_policy must be a RetryPolicy or a dict",
        id="s-policy-text",
    ),
    pytest.param(
        lambda: S(task_id="t", http_retry_policy={"max_attempt": 2}),
        "http_retry_policy has unknown field(s) max_attempt",
        id="s-policy-typo",
    ),
    pytest.param(
        lambda: S(task_id="t", http_retry_policy={"backoff_max": 0}),
        "http_retry_policy: backoff_max must be > 0",
        id="s-policy-value",
    ),
    pytest.param(
        lambda: S(task_id="t", timeout="1h"),
        "Operator arg `timeout` must be timedelta object or a non-negative number",
        id="s-timeout-text",
        marks=only_on_airflow_3_3("Airflow's own timeout check raises another exception class"),
    ),
    pytest.param(
        lambda: ConfirmaLedgerSyncSensor(task_id="t", source_identifiers=[]),
        "source_identifiers is empty",
        id="ledger-sensor-ids-empty",
    ),
    # submit operators: malformed payloads (each names the field)
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments={"payments": "nope"}),
        "payments must be a list of payment objects, got str",
        id="pay-not-list",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments="not json"),
        "payments: not valid JSON",
        id="pay-text",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(paymentDate="2026-02-30")]),
        "payments[0].paymentDate: '2026-02-30' is not a valid calendar date",
        id="pay-date",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(amount="12.345")]),
        "payments[0].amount: amount 12.345 has 3 decimal places",
        id="pay-amount-decimals",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(amount=12.3)]),
        "payments[0].amount",
        id="pay-amount-float",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(currency="EURO")]),
        "payments[0].currency: 'EURO' is not an ISO 4217 currency code",
        id="pay-currency",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(paymentIdentifier=None)]),
        "payments[0].paymentIdentifier",
        id="pay-no-id",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(), payment()]),
        "payments[1].paymentIdentifier: duplicate identifier 'p-1'",
        id="pay-dup-id",
    ),
    pytest.param(
        lambda: ConfirmaSubmitLedgerOperator(task_id="t", ledger=[ledger()]),
        "ledger must be one ledger document (an object), got list",
        id="ledger-list",
    ),
    pytest.param(
        lambda: ConfirmaSubmitLedgerOperator(task_id="t", ledger=ledger(documentDate="31.01.2026")),
        "ledgers.documentDate",
        id="ledger-date",
    ),
    pytest.param(
        lambda: ConfirmaCreateInvoiceOperator(task_id="t", invoice=invoice(number="abc")),
        "invoice.header.number: must be an integer, not a string",
        id="invoice-number",
    ),
    pytest.param(
        lambda: ConfirmaCreateInvoiceActionOperator(task_id="t", actions=[action(amount="1,50")]),
        "actions[0].data.amount",
        id="action-amount",
    ),
    # other operators: arguments
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", source_identifiers=[]),
        "source_identifiers is empty",
        id="status-ids-empty",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", success_statuses="x"),
        "success_statuses must hold integer status codes",
        id="status-success-text",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", max_xcom_records=-1),
        "max_xcom_records must be an integer >= 0, got -1",
        id="op-max-records",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", confirma_conn_id=""),
        "confirma_conn_id must be a non-empty string",
        id="op-conn-empty",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", query_params="fromDate=2026-01-01"),
        "query_params must be a dict",
        id="status-query-text",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentsOperator(task_id="t", query_params="fromDate=2026-01-01"),
        "query_params must be a dict",
        id="payments-query-text",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentsOperator(task_id="t", request_timeout=0),
        "request_timeout must be a positive number of seconds, got 0",
        id="op-timeout-zero",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentsOperator(task_id="t", request_timeout="30"),
        "request_timeout must be a positive number of seconds, got '30'",
        id="op-timeout-text",
    ),
    pytest.param(
        lambda: ConfirmaGetSettlementsOperator(task_id="t", http_retry_policy={"max_attempts": 0}),
        "http_retry_policy: max_attempts must be >= 1",
        id="op-policy-value",
    ),
    pytest.param(
        lambda: ConfirmaGetSettlementsOperator(task_id="t", http_retry_policy=3),
        "http_retry_policy must be a RetryPolicy or a dict",
        id="op-policy-type",
    ),
    pytest.param(
        lambda: ConfirmaGetSettlementsOperator(task_id="t", from_param=" "),
        "from_param must be a query parameter name",
        id="window-param",
    ),
    pytest.param(
        lambda: ConfirmaGetDistributionInfoOperator(task_id="t", from_param="d", to_param="d"),
        "from_param and to_param must differ",
        id="window-same",
    ),
    pytest.param(
        lambda: ConfirmaGetCaseDetailsOperator(task_id="t"), "give case_id or query_params", id="case-nothing"
    ),
    pytest.param(
        lambda: ConfirmaGetCaseDetailsOperator(task_id="t", query_params={"": 1}),
        "query_params keys must be non-empty strings",
        id="case-query-key",
    ),
    # hook and trigger
    pytest.param(
        lambda: ConfirmaHook(timeout="30"),
        "timeout must be a positive number of seconds, got '30'",
        id="hook-timeout-text",
    ),
    pytest.param(
        lambda: ConfirmaHook(timeout=float("nan")),
        "timeout must be a positive number of seconds",
        id="hook-timeout-nan",
    ),
    pytest.param(lambda: RetryPolicy(max_total_seconds=0), "max_total_seconds must be > 0", id="policy-total"),
    pytest.param(
        lambda: ConfirmaPaymentSyncTrigger(end_time=0, poll_interval=5),
        "end_time must be a positive number",
        id="trigger-end",
    ),
    pytest.param(
        lambda: ConfirmaPaymentSyncTrigger(end_time=1e10, poll_interval="5"),
        "poll_interval must be a positive number",
        id="trigger-interval-text",
    ),
    pytest.param(
        lambda: ConfirmaPaymentSyncTrigger(end_time=1e10, source_identifiers=""),
        "source_identifiers: an identifier must not be empty",
        id="trigger-ids-blank",
    ),
    pytest.param(
        lambda: ConfirmaPaymentSyncTrigger(end_time=1e10, confirma_conn_id=None),
        "confirma_conn_id must be a non-empty string",
        id="trigger-conn",
    ),
]


@pytest.mark.parametrize(("build", "fragment"), PARSE_TIME)
def test_static_bad_input_fails_at_parse_time_naming_it(build: Callable[[], Any], fragment: str):
    with pytest.raises((ValueError, TypeError)) as info:  # ConfirmaConfigError is a ValueError
        build()
    assert fragment in str(info.value)


def test_a_bad_static_argument_is_an_import_error_of_the_dag_file(airflow_db):
    from tests.dag_helpers import parse_bundle, write_dag_file

    path = write_dag_file(
        """
        from datetime import datetime
        from airflow.providers.common.compat.sdk import DAG
        from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

        with DAG("confirma_bad_static", schedule=None, start_date=datetime(2026, 1, 1)):
            ConfirmaPaymentSyncSensor(task_id="wait", source_identifiers=[], poke_interval=5)
        """,
        "confirma_bad_static_dag.py",
    )
    bag = parse_bundle(path, path.parent, "dags-folder")
    (error,) = bag.import_errors.values()
    assert "ConfirmaPaymentSyncSensor 'wait': source_identifiers is empty" in error
    path.unlink()


# -- after rendering -------------------------------------------------------------------------------
def context(**params: Any) -> dict[str, Any]:
    day = pendulum.datetime(2026, 2, 1, tz="UTC")
    dag = DAG("confirma_bad_input", schedule=None, start_date=datetime(2026, 1, 1))
    return {
        "params": params,
        "ds": "2026-02-01",
        "ds_nodash": "20260201",
        "data_interval_start": day,
        "data_interval_end": day + timedelta(days=1),
        "logical_date": day,
        "dag": dag,
        "outlet_events": OutletEventAccessors(),
        "ti": None,
    }


RENDERED: list[Any] = [
    # (operator built with templates, params the templates render from, expected fragment)
    pytest.param(
        lambda: S(task_id="t", source_identifiers="{{ params.ids }}"),
        {"ids": ""},
        "ConfirmaPaymentSyncSensor 't': rendered source_identifiers: an identifier must not be empty",
        id="s-ids-blank",
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers="{{ params.ids }}"),
        {"ids": []},
        "'t': rendered source_identifiers is empty",
        id="s-ids-empty-list",
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers="{{ params.ids }}"),
        {"ids": [1.5]},
        "rendered source_identifiers[0]: an identifier must be a string or an integer, got float",
        id="s-ids-float",
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers="{{ params.ids }}"),
        {"ids": {"ids": ["a"]}},
        "rendered source_identifiers: a dict must carry the identifiers under an 'identifiers' key",
        id="s-ids-dict",
    ),
    pytest.param(
        lambda: S(task_id="t", source_identifiers=["a"], query_params="{{ params.q }}"),
        {"q": "fromDate=2026-02-01"},
        "'t': rendered query_params must be a dict of query parameters, got str",
        id="s-query-text",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments="{{ params.body }}"),
        {"body": {"payments": [payment()]}},
        "payments: not valid JSON after rendering",
        id="pay-python-repr",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(amount="{{ params.amount }}")]),
        {"amount": "abc"},
        "payments[0].amount",
        id="pay-amount",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(paymentDate="{{ params.day }}")]),
        {"day": "01.02.2026"},
        "payments[0].paymentDate",
        id="pay-date",
    ),
    pytest.param(
        lambda: ConfirmaSubmitPaymentsOperator(task_id="t", payments=[payment(paymentIdentifier="{{ params.id }}")]),
        {"id": ""},
        "payments[0].paymentIdentifier",
        id="pay-id-blank",
    ),
    pytest.param(
        lambda: ConfirmaSubmitLedgerOperator(task_id="t", ledger=ledger(documentDate="{{ params.day }}")),
        {"day": "yesterday"},
        "ledgers.documentDate",
        id="ledger-date",
    ),
    pytest.param(
        lambda: ConfirmaCreateInvoiceOperator(task_id="t", invoice=invoice(currencyCode="{{ params.cur }}")),
        {"cur": "euro"},
        "invoice.header.currencyCode",
        id="invoice-currency",
    ),
    pytest.param(
        lambda: ConfirmaCreateInvoiceActionOperator(task_id="t", actions=[action(paymentDate="{{ params.day }}")]),
        {"day": "2026-13-01"},
        "actions[0].data.paymentDate",
        id="action-date",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", source_identifiers="{{ params.ids }}"),
        {"ids": []},
        "source_identifiers is empty",
        id="status-ids",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentSyncStatusOperator(task_id="t", query_params="{{ params.q }}"),
        {"q": "fromDate=2026-02-01"},
        "ConfirmaGetPaymentSyncStatusOperator 't': rendered query_params must be a dict of query parameters, got str",
        id="status-query",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentsOperator(task_id="t", from_date="{{ params.day }}"),
        {"day": "yesterday"},
        "from_date must be a date (YYYY-MM-DD), got 'yesterday'",
        id="payments-from",
    ),
    pytest.param(
        lambda: ConfirmaGetSettlementsOperator(task_id="t", to_date="{{ params.day }}"),
        {"day": "2026/02/01"},
        "to_date must be a date (YYYY-MM-DD), got '2026/02/01'",
        id="settlements-to",
    ),
    pytest.param(
        lambda: ConfirmaGetPaymentsOperator(task_id="t", query_params="{{ params.q }}"),
        {"q": "x=1"},
        "ConfirmaGetPaymentsOperator 't': rendered query_params must be a dict of query parameters, got str",
        id="payments-query",
    ),
    pytest.param(
        lambda: ConfirmaGetCaseDetailsOperator(task_id="t", case_id="{{ params.case }}"),
        {"case": " "},
        "ConfirmaGetCaseDetailsOperator 't': rendered case_id is ' ' and no query_params",
        id="case-blank",
    ),
    pytest.param(
        lambda: ConfirmaGetCaseDetailsOperator(task_id="t", query_params="{{ params.q }}"),
        {"q": "caseId=1"},
        "ConfirmaGetCaseDetailsOperator 't': rendered query_params must be a dict of query parameters, got str",
        id="case-query",
    ),
]


@pytest.mark.parametrize(("build", "params", "fragment"), RENDERED)
def test_templated_bad_input_fails_after_rendering_before_any_request(
    build: Callable[[], Any], params: dict[str, Any], fragment: str, confirma_sandbox_conn
):
    op = build()  # the templates themselves are fine at parse time
    ctx = context(**params)
    op.render_template_fields(ctx)
    with pytest.raises(ValueError) as info:  # ConfirmaConfigError and ConfirmaPayloadError are ValueErrors
        op.execute(ctx)
    assert fragment in str(info.value)
    assert confirma_sandbox_conn.stats()["total_requests"] == 0


# -- connections -----------------------------------------------------------------------------------
CONNECTIONS: list[Any] = [
    # (connection fields, fragment after "Confirma connection 'confirma_bad': ")
    pytest.param(
        {"password": SECRET, "extra": {"environment": "prod"}},
        "extra 'environment' is 'prod'; expected one of ['production', 'staging']",
        id="unknown-environment",
    ),
    pytest.param(
        {"password": SECRET, "extra": {"environment": 1}}, "extra 'environment' is '1'", id="environment-number"
    ),
    pytest.param(
        {"password": SECRET}, "set extra 'environment' (staging or production) or field 'host'", id="no-environment"
    ),
    pytest.param({"extra": {"environment": "staging"}}, "field 'password' (API key) is empty", id="no-key"),
    pytest.param(
        {"password": SECRET, "host": "http://api.example.com"},
        "field 'host' 'api.example.com' must use https; plain http is allowed only on loopback",
        id="http-remote",
    ),
    pytest.param({"password": SECRET, "host": "ftp://127.0.0.1"}, "field 'host' uses scheme 'ftp'", id="ftp"),
    pytest.param(
        {"password": SECRET, "extra": {"environment": "staging", "timeout": "soon"}},
        "extra 'timeout' must be a number of seconds, got 'soon'",
        id="timeout-text",
    ),
    pytest.param(
        {"password": SECRET, "extra": {"environment": "staging", "timeout": -5}},
        "extra 'timeout' must be a positive number of seconds",
        id="timeout-negative",
    ),
    pytest.param(
        {"password": SECRET, "extra": {"environment": "staging", "verify": False}},
        "extra 'verify' cannot turn TLS verification off",
        id="verify-off",
    ),
]


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(("fields", "fragment"), CONNECTIONS)
async def test_bad_connection_fails_on_first_use_naming_the_field(confirma_conn_env, fields, fragment, flavour):
    confirma_conn_env("confirma_bad", json.dumps({"conn_type": "confirma", **fields}))
    hook = ConfirmaHook("confirma_bad")
    with pytest.raises(ConfirmaConfigError) as info:
        if flavour == "sync":
            hook.get_payment_sync_status()
        else:
            await hook.aget_payment_sync_status()
    assert f"Confirma connection 'confirma_bad': {fragment}" in str(info.value)
    assert SECRET not in str(info.value)
