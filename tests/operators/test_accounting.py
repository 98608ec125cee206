"""Accounting operators against a mocked transport: submissions (validation, exact amounts, dedupe on
retry, ambiguous failures) and the sync status reads (summary, caps, asset events)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pendulum
import pytest
import requests
import responses
from airflow.providers.common.compat.sdk import AirflowFailException, AssetAlias, BaseOperator
from conftest import TEST_API_KEY

from airflow_provider_confirma.arguments import is_template
from airflow_provider_confirma.assets import LEDGER_SYNC_ASSET, PAYMENT_SYNC_ASSET
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, ConfirmaServerError
from airflow_provider_confirma.operators.accounting import (
    LEDGER_SYNC_ALIAS,
    PAYMENT_SYNC_ALIAS,
    ConfirmaGetLedgerSyncStatusOperator,
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitLedgerOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.base import (
    ConfirmaPayloadError,
    ConfirmaSubmissionUncertainError,
)

from .conftest import TINY_POLICY, assert_no_float, calls_to, make_dag, query_of, run, sent_json, status_body, url

SUBMIT, STATUS = Endpoint.SUBMIT_PAYMENTS, Endpoint.PAYMENT_SYNC_STATUS


def payment(ident: str, amount: Any = "100.10", **fields: Any) -> dict[str, Any]:
    return {
        "paymentIdentifier": ident,
        "invoiceNumber": "10001",
        "paymentDate": "2026-02-02",
        "amount": amount,
        "currency": "EUR",
        "targetIdentifier": "invoicenumber",
        **fields,
    }


def submit_op(payments: Any, **kwargs: Any) -> ConfirmaSubmitPaymentsOperator:
    return ConfirmaSubmitPaymentsOperator(task_id="submit", payments=payments, http_retry_policy=TINY_POLICY, **kwargs)


def mock_status(api: responses.RequestsMock, body: Any = None, status: int = 200) -> None:
    if body is None:
        api.add(responses.GET, url(STATUS), status=204)
    else:
        api.add(responses.GET, url(STATUS), json=body, status=status)


def mock_submit(api: responses.RequestsMock, **kwargs: Any) -> None:
    if "body" not in kwargs:
        kwargs.setdefault("json", {"accepted": True})
    api.add(responses.POST, url(SUBMIT), **kwargs)


# -- submit payments ---------------------------------------------------------------------------------
def test_submit_payments_checks_status_then_posts_exact_amounts_and_returns_identifiers(api, context) -> None:
    mock_status(api)
    mock_submit(api)
    op = submit_op(
        [payment("pay-1", "100.10"), payment("pay-2", Decimal("0.20")), payment("pay-3", 7)],
        status_query_params={"fromDate": "2026-02-01"},
    )
    result = run(op, context())

    assert result == ["pay-1", "pay-2", "pay-3"]
    (status_req,) = calls_to(api, STATUS)
    assert query_of(status_req) == {"fromDate": "2026-02-01"}
    (post,) = calls_to(api, SUBMIT)
    assert api.calls[0].request.method == "GET"  # the status check comes first
    raw = post.body.decode()
    assert '"amount":100.10' in raw  # text amount went out as an exact JSON number
    assert '"amount":0.20' in raw
    assert '"amount":7' in raw
    assert post.headers["X-Api-Key"] == TEST_API_KEY
    assert post.headers["Content-Type"] == "application/json"
    body = sent_json(post)
    assert [p["paymentIdentifier"] for p in body["payments"]] == ["pay-1", "pay-2", "pay-3"]
    assert body["payments"][0]["invoiceNumber"] == "10001"  # identifiers stay text


def test_static_invalid_payload_fails_at_construction_naming_the_field(api) -> None:
    with pytest.raises(ConfirmaPayloadError) as info:
        submit_op([payment("pay-1"), payment("pay-2", amount=12.5, currency="eur")])
    message = str(info.value)
    assert "payments[1].amount" in message and "float" in message
    assert "payments[1].currency" in message
    assert len(api.calls) == 0


def test_templated_invalid_payload_fails_after_rendering_and_sends_nothing(api, context) -> None:
    op = submit_op([payment("pay-1", paymentDate="{{ ds_nodash }}")])  # renders to 20260201: not ISO
    assert is_template(op.payments)
    start = pendulum.datetime(2026, 2, 1, tz="UTC")
    with pytest.raises(ConfirmaPayloadError, match=r"payments\[0\]\.paymentDate") as info:
        run(op, context((start, start.add(days=1)), ds_nodash="20260201"))
    assert isinstance(info.value, AirflowFailException)  # the same input would fail again
    assert len(api.calls) == 0


def test_templated_payload_renders_before_sending(api, context) -> None:
    mock_status(api)
    mock_submit(api)
    op = submit_op([payment("pay-{{ ds }}", paymentDate="{{ ds }}")])
    start = pendulum.datetime(2026, 2, 1, tz="UTC")
    assert run(op, context((start, start.add(days=1)))) == ["pay-2026-02-01"]
    sent = sent_json(calls_to(api, SUBMIT)[0])["payments"][0]
    assert sent["paymentIdentifier"] == "pay-2026-02-01"
    assert sent["paymentDate"] == "2026-02-01"


def test_json_text_payload_from_a_template_keeps_exact_amounts(api, context) -> None:
    mock_status(api)
    mock_submit(api)
    text = json.dumps({"payments": [payment("pay-1", "x")]}).replace('"x"', "{{ amount }}")
    op = submit_op(text)
    assert run(op, context(amount="100.10")) == ["pay-1"]
    assert '"amount":100.10' in calls_to(api, SUBMIT)[0].body.decode()


def test_duplicate_identifiers_in_one_payload_are_an_error(api) -> None:
    with pytest.raises(ConfirmaPayloadError, match=r"payments\[2\]\.paymentIdentifier: duplicate identifier 'pay-1'"):
        submit_op([payment("pay-1"), payment("pay-2"), payment("pay-1")])
    assert len(api.calls) == 0


def test_empty_or_wrongly_shaped_payloads_are_refused(api) -> None:
    with pytest.raises(ConfirmaPayloadError, match="payments: must not be empty"):
        submit_op([])
    with pytest.raises(ConfirmaConfigError, match="payments must be a list"):
        submit_op({"paymentIdentifier": "pay-1"})


def test_retry_sends_only_what_the_status_endpoint_does_not_know(api, context, capfd) -> None:
    mock_status(api, status_body(("pay-1", 0), ("other", 1)))
    mock_submit(api)
    op = submit_op([payment("pay-1"), payment("pay-2", "5.00")])
    result = run(op, context())
    logged = "".join(capfd.readouterr())

    assert result == ["pay-1", "pay-2"]  # the sensor waits for both
    (post,) = calls_to(api, SUBMIT)
    assert [p["paymentIdentifier"] for p in sent_json(post)["payments"]] == ["pay-2"]
    assert "Not sending 1 payment(s) Confirma already knows" in logged
    assert "pay-1 (status 0: Pending)" in logged


def test_nothing_is_posted_when_confirma_knows_every_payment(api, context, capfd) -> None:
    mock_status(api, status_body(("pay-1", 1), ("pay-2", 0)))
    mock_submit(api)
    result = run(submit_op([payment("pay-1"), payment("pay-2")]), context())
    assert result == ["pay-1", "pay-2"]
    assert calls_to(api, SUBMIT) == []
    assert "All 2 payment(s) are already known to Confirma; nothing sent" in "".join(capfd.readouterr())


def test_ambiguous_post_failure_is_sent_once_and_fails_without_retries(api, context) -> None:
    mock_status(api)
    mock_submit(api, json={"error": "upstream"}, status=503)
    with pytest.raises(ConfirmaSubmissionUncertainError) as info:
        run(submit_op([payment("pay-1")]), context())
    message = str(info.value)
    assert "may or may not have reached Confirma" in message
    assert "Failing without retries" in message
    assert "Before rerunning, check GET /accounting/payment" in message
    assert "No attempt was recorded (no task state store)" in message  # this context has none
    assert isinstance(info.value, AirflowFailException)
    assert "pay-1" in message
    assert isinstance(info.value.__cause__, ConfirmaServerError)
    assert len(calls_to(api, SUBMIT)) == 1  # never re-sent blindly
    assert TEST_API_KEY not in message


def test_post_read_timeout_is_ambiguous_too(api, context) -> None:
    mock_status(api)
    mock_submit(api, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ConfirmaSubmissionUncertainError, match="may or may not have reached Confirma"):
        run(submit_op([payment("pay-1")]), context())
    assert len(calls_to(api, SUBMIT)) == 1


def test_second_try_after_an_ambiguous_failure_does_not_duplicate(api, context) -> None:
    """Try 1 times out after Confirma stored pay-1; try 2 asks the status endpoint and sends nothing."""
    mock_status(api)
    mock_submit(api, body=requests.exceptions.ReadTimeout("read timed out"))
    payments = [payment("pay-1")]
    with pytest.raises(ConfirmaSubmissionUncertainError):
        run(submit_op(payments), context())
    api.replace(responses.GET, url(STATUS), json=status_body(("pay-1", 0)))
    assert run(submit_op(payments), context()) == ["pay-1"]
    assert len(calls_to(api, SUBMIT)) == 1


def test_a_rejected_post_fails_without_retry(api, context) -> None:
    mock_status(api)
    mock_submit(api, json={"message": "amount invalid"}, status=400)
    with pytest.raises(AirflowFailException, match="rejected"):
        run(submit_op([payment("pay-1")]), context())


def test_unreachable_status_endpoint_means_nothing_is_posted(api, context) -> None:
    mock_status(api, {"error": "down"}, status=500)
    mock_submit(api)
    with pytest.raises(ConfirmaServerError):
        run(submit_op([payment("pay-1")]), context())
    assert len(calls_to(api, STATUS)) == TINY_POLICY.max_attempts
    assert calls_to(api, SUBMIT) == []


def test_xcom_arg_payload_is_checked_only_after_rendering() -> None:
    with make_dag():
        upstream = BaseOperator(task_id="build")
        op = submit_op(upstream.output)  # a list would be validated (and fail) right here
    assert op.upstream_task_ids == {"build"}


# -- submit ledger ----------------------------------------------------------------------------------
def ledger_doc(ident: str = "lg-0001", **fields: Any) -> dict[str, Any]:
    return {
        "ledgerIdentifier": ident,
        "companyIdentifier": "7654321-0",
        "documentType": "ML",
        "documentName": "5001",
        "documentDate": "2026-01-31",
        "calculationMode": "GROSS",
        "ledgerRows": [
            {"bookingDate": "2026-01-31", "accountNumber": "1700", "vatPercentage": "0", "amount": "124.00",
             "netAmount": "124.00", "isVatRow": 0},
            {"bookingDate": "2026-01-31", "accountNumber": "3000", "vatPercentage": "25.5", "amount": "-124.00",
             "netAmount": "-98.80", "isVatRow": 0, "ledgerDimensions": [{"dimensionType": "COST_CENTER",
                                                                         "dimensionValue": "10"}]},
        ],
        **fields,
    }  # fmt: skip


def test_submit_ledger_posts_one_document_with_exact_numbers(api, context) -> None:
    api.add(responses.GET, url(Endpoint.LEDGER_SYNC_STATUS), status=204)
    api.add(responses.POST, url(Endpoint.SUBMIT_LEDGER), json={})
    op = ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=ledger_doc(), http_retry_policy=TINY_POLICY)
    assert run(op, context()) == ["lg-0001"]
    (post,) = calls_to(api, Endpoint.SUBMIT_LEDGER)
    raw = post.body.decode()
    assert '"amount":-124.00' in raw
    assert '"netAmount":-98.80' in raw
    assert '"vatPercentage":25.5' in raw
    assert sent_json(post)["ledgers"]["ledgerIdentifier"] == "lg-0001"  # one object, as documented


def test_submit_ledger_accepts_the_whole_body_and_skips_a_known_document(api, context) -> None:
    api.add(
        responses.GET,
        url(Endpoint.LEDGER_SYNC_STATUS),
        json={"ledgers": [{"sourceIdentifier": "lg-0001", "status": 0, "description": "Pending"}]},
    )
    api.add(responses.POST, url(Endpoint.SUBMIT_LEDGER), json={})
    op = ConfirmaSubmitLedgerOperator(task_id="ledger", ledger={"ledgers": ledger_doc()})
    assert run(op, context()) == ["lg-0001"]
    assert calls_to(api, Endpoint.SUBMIT_LEDGER) == []


def test_submit_ledger_names_bad_fields(api) -> None:
    bad = ledger_doc(documentDescription="x" * 211)
    bad["ledgerRows"][1]["amount"] = "12.345"
    with pytest.raises(ConfirmaPayloadError) as info:
        ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=bad)
    assert "ledgers.documentDescription" in str(info.value)
    assert "ledgers.ledgerRows[1].amount" in str(info.value)
    with pytest.raises(ConfirmaConfigError, match="one ledger document"):
        ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=[ledger_doc()])
    assert len(api.calls) == 0


def test_ambiguous_ledger_post_failure(api, context) -> None:
    api.add(responses.GET, url(Endpoint.LEDGER_SYNC_STATUS), status=204)
    api.add(responses.POST, url(Endpoint.SUBMIT_LEDGER), body=requests.exceptions.ConnectionError("reset by peer"))
    op = ConfirmaSubmitLedgerOperator(task_id="ledger", ledger=ledger_doc(), http_retry_policy=TINY_POLICY)
    with pytest.raises(ConfirmaSubmissionUncertainError, match="may or may not have reached Confirma"):
        run(op, context())
    assert len(calls_to(api, Endpoint.SUBMIT_LEDGER)) == 1


# -- sync status ------------------------------------------------------------------------------------
def status_op(**kwargs: Any) -> ConfirmaGetPaymentSyncStatusOperator:
    return ConfirmaGetPaymentSyncStatusOperator(task_id="status", http_retry_policy=TINY_POLICY, **kwargs)


def test_status_operator_passes_params_and_pushes_summary_and_records(api, context) -> None:
    mock_status(api, status_body(("pay-1", 1), ("pay-2", 0), ("pay-3", 2)))
    result = run(status_op(query_params={"fromDate": "{{ ds }}", "limit": 5}), context(ds="2026-02-01"))

    assert query_of(calls_to(api, STATUS)[0]) == {"fromDate": "2026-02-01", "limit": "5"}
    summary = result["summary"]
    assert summary["counts"] == {"total": 3, "synced": 1, "pending": 1, "failed": 1, "missing": 0}
    assert summary["outcome"] == "waiting"
    assert summary["failures"] == [{"sourceIdentifier": "pay-3", "status": 2, "description": "Failed"}]
    assert [(r["sourceIdentifier"], r["state"]) for r in result["records"]] == [
        ("pay-1", "synced"),
        ("pay-2", "pending"),
        ("pay-3", "failed"),
    ]
    assert result["records"][0]["syncDate"] == "2026-02-03"
    assert_no_float(result)


def test_status_operator_tracks_a_submit_result_and_reports_missing(api, context) -> None:
    mock_status(api, status_body(("pay-1", 1), ("unrelated", 0)))
    op = status_op(source_identifiers="{{ ti_result }}")
    result = run(op, context(ti_result=json.dumps({"identifiers": ["pay-1", "pay-9"]})))
    assert result["summary"]["counts"]["missing"] == 1
    assert result["summary"]["missing"] == ["pay-9"]
    assert [r["sourceIdentifier"] for r in result["records"]] == ["pay-1"]


def test_status_operator_caps_records_and_missing(api, context) -> None:
    mock_status(api, status_body(*[(f"pay-{i}", 1) for i in range(5)]))
    result = run(status_op(max_xcom_records=2), context())
    assert len(result["records"]) == 2
    assert (result["summary"]["total"], result["summary"]["returned"], result["summary"]["omitted"]) == (5, 2, 3)

    api.replace(responses.GET, url(STATUS), status=204)
    result = run(status_op(max_xcom_records=1, source_identifiers=["a", "b", "c"]), context())
    assert result["summary"]["missing"] == ["a"]
    assert result["summary"]["missing_omitted"] == 2


def test_status_operator_can_fail_on_a_failed_sync(api, context) -> None:
    mock_status(api, status_body(("pay-1", 1), ("pay-2", 7)))
    op = status_op(source_identifiers=["pay-1", "pay-2"], fail_on_sync_failure=True)
    with pytest.raises(AirflowFailException, match=r"pay-2 \(status 7: Failed\)"):
        run(op, context())


def test_status_operator_custom_status_sets(api, context) -> None:
    mock_status(api, status_body(("pay-1", 2)))
    result = run(status_op(success_statuses=[1, 2]), context())
    assert result["records"][0]["state"] == "synced"
    with pytest.raises(ConfirmaConfigError, match="overlap"):
        status_op(success_statuses=[0], pending_statuses=[0])


def test_static_bad_identifiers_fail_at_construction() -> None:
    with pytest.raises(ConfirmaConfigError, match="source_identifiers"):
        status_op(source_identifiers=[])


def alias_events(ctx: dict[str, Any], alias: str) -> list[Any]:
    return ctx["outlet_events"][AssetAlias(alias)].asset_alias_events


def test_emit_asset_declares_the_alias_and_emits_when_everything_tracked_is_synced(api, context) -> None:
    mock_status(api, status_body(("pay-1", 1), ("pay-2", 1)))
    op = status_op(source_identifiers=["pay-1", "pay-2"], emit_asset=True)
    assert AssetAlias(PAYMENT_SYNC_ALIAS) in op.outlets
    ctx = context()
    assert run(op, ctx)["summary"]["outcome"] == "success"
    (event,) = alias_events(ctx, PAYMENT_SYNC_ALIAS)
    assert event.dest_asset_key.uri == PAYMENT_SYNC_ASSET.uri
    assert event.extra == {"synced": 2, "identifiers": ["pay-1", "pay-2"]}


@pytest.mark.parametrize(
    "records",
    [
        (("pay-1", 1), ("pay-2", 0)),  # one pending
        (("pay-1", 1),),  # one missing
        (("pay-1", 1), ("pay-2", 3)),  # one failed
    ],
)
def test_no_asset_event_while_not_everything_is_synced(api, context, records) -> None:
    mock_status(api, status_body(*records))
    ctx = context()
    run(status_op(source_identifiers=["pay-1", "pay-2"], emit_asset=True, fail_on_sync_failure=False), ctx)
    assert alias_events(ctx, PAYMENT_SYNC_ALIAS) == []


def test_no_asset_event_without_emit_asset(api, context) -> None:
    mock_status(api, status_body(("pay-1", 1)))
    op = status_op()
    assert op.outlets == []
    ctx = context()
    run(op, ctx)
    assert len(ctx["outlet_events"]) == 0


def test_ledger_status_operator_reads_ledgers(api, context) -> None:
    api.add(
        responses.GET,
        url(Endpoint.LEDGER_SYNC_STATUS),
        json={
            "ledgers": [
                {"sourceIdentifier": "lg-1", "documentDate": "2026-01-31", "documentName": "5001",
                 "documentStatus": "Approved", "syncDate": "2026-02-01", "status": 1,
                 "description": "Successfully synced"}
            ]
        },
    )  # fmt: skip
    op = ConfirmaGetLedgerSyncStatusOperator(task_id="ledger_status", emit_asset=True)
    ctx = context()
    result = run(op, ctx)
    assert result["records"][0]["documentStatus"] == "Approved"
    assert result["summary"]["outcome"] == "success"
    (event,) = alias_events(ctx, LEDGER_SYNC_ALIAS)
    assert event.dest_asset_key.uri == LEDGER_SYNC_ASSET.uri
