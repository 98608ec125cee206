"""The sandbox API over real HTTP: every documented endpoint, auth, 204, 415/400/422, state
progression, duplicates, seeded reads and the admin endpoints."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.sandbox import ConfirmaSandbox, SandboxAdminError, SandboxConfig
from airflow_provider_confirma.sandbox.app import allowed_hosts
from airflow_provider_confirma.sandbox.config import DEFAULT_PROVISIONING_TOKEN

from .conftest import invoice, ledger, payment

CLIENT_BODY = {
    "service": {"type": "LIFECYCLE", "partnerCode": "PARTNER1"},
    "client": {"name": "Example Client Oy", "businessCode": "7654321-0", "countryCode": "FI"},
}
ACTION_BODY = {"actions": [{"code": "COMMENT", "comment": "hi", "data": {"invoiceNumber": 10001, "caseId": 555001}}]}
VALID_BODIES = {
    Endpoint.CREATE_CLIENT: CLIENT_BODY,
    Endpoint.CREATE_INVOICE: invoice(10001),
    Endpoint.CREATE_INVOICE_ACTION: ACTION_BODY,
    Endpoint.SUBMIT_LEDGER: ledger("lg-1"),
    Endpoint.SUBMIT_PAYMENTS: {"payments": [payment("p1")]},
}
GET_PARAMS = {Endpoint.CASE_DETAILS: {"caseId": "555001"}}


@pytest.mark.parametrize("endpoint", list(Endpoint), ids=lambda e: e.name)
def test_every_documented_endpoint_is_served(api, endpoint):
    key = DEFAULT_PROVISIONING_TOKEN if endpoint is Endpoint.CREATE_CLIENT else "default"
    response = api.call(endpoint, VALID_BODIES.get(endpoint), key=key, params=GET_PARAMS.get(endpoint))
    assert response.status_code in (200, 204), response.text
    if response.status_code == 200:
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() is not None


@pytest.mark.parametrize("endpoint", list(Endpoint), ids=lambda e: e.name)
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_wrong_key_is_401_everywhere(confirma_sandbox, api, endpoint, key):
    response = api.call(endpoint, VALID_BODIES.get(endpoint), key=key)
    assert response.status_code == 401
    assert "X-Api-Key" in response.json()["message"]
    assert confirma_sandbox.stats()["stored"] == {
        "payments": 0,
        "ledgers": 0,
        "invoices": 0,
        "actions": 0,
        "clients": 0,
    }


def test_create_client_needs_the_provisioning_token(api):
    assert api.call(Endpoint.CREATE_CLIENT, CLIENT_BODY).status_code == 401  # the client key is not enough
    created = api.call(Endpoint.CREATE_CLIENT, CLIENT_BODY, key=DEFAULT_PROVISIONING_TOKEN).json()
    assert api.call(Endpoint.VALIDATE, key=created["apiKey"]).json() == {"isValid": True, "message": "Token is valid"}
    assert api.call(Endpoint.VALIDATE, key=DEFAULT_PROVISIONING_TOKEN).status_code == 401


def test_renewed_key_works(api):
    new_key = api.call(Endpoint.RENEW).json()["Message"]
    assert api.call(Endpoint.VALIDATE, key=new_key).status_code == 200


def test_status_endpoints_answer_204_when_empty(api):
    for endpoint in (Endpoint.PAYMENT_SYNC_STATUS, Endpoint.LEDGER_SYNC_STATUS):
        response = api.call(endpoint)
        assert response.status_code == 204 and response.content == b""


def test_payment_progression_over_http(confirma_sandbox, api):
    confirma_sandbox.configure(sync_delay=0.3, failure_pattern="^fail-")
    assert api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("ok-1"), payment("fail-1")]}).json() == {
        "message": "2 payment record(s) queued",
        "accepted": ["ok-1", "fail-1"],
        "duplicates": [],
    }
    assert [(r["status"], r["syncDate"]) for r in api.payment_status()] == [(0, None), (0, None)]
    time.sleep(0.35)
    done = {r["sourceIdentifier"]: r for r in api.payment_status()}
    assert done["ok-1"]["status"] == 1 and done["ok-1"]["syncDate"]
    assert done["fail-1"]["status"] == 2 and done["fail-1"]["description"].startswith("Sync failed")


def test_ledger_progression_with_sync_now(confirma_sandbox, api):
    confirma_sandbox.configure(sync_delay=3600)
    assert api.call(Endpoint.SUBMIT_LEDGER, ledger("lg-1")).status_code == 200
    assert api.call(Endpoint.LEDGER_SYNC_STATUS).json()["ledgers"][0]["status"] == 0
    assert confirma_sandbox.sync_now() == 1
    assert api.call(Endpoint.LEDGER_SYNC_STATUS).json()["ledgers"][0]["status"] == 1


def test_422_names_the_field(api, confirma_sandbox):
    body = {"payments": [payment("p1"), payment("p2", amount="1.005"), payment("p3", currency="euro")]}
    response = api.call(Endpoint.SUBMIT_PAYMENTS, body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["payments[1].amount", "payments[2].currency"]
    assert "payments[1].amount" in response.json()["message"]
    assert confirma_sandbox.stats()["stored"]["payments"] == 0  # nothing from a rejected body

    bad_ledger = ledger("lg-1")
    bad_ledger["ledgers"]["ledgerRows"][0]["bookingDate"] = "31.01.2026"
    response = api.call(Endpoint.SUBMIT_LEDGER, bad_ledger)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "ledgers.ledgerRows[0].bookingDate"

    response = api.call(Endpoint.CREATE_INVOICE, {"invoice": {"header": {"number": 1}}})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "invoice.header.date",
        "invoice.header.dueDate",
        "invoice.header.currencyCode",
    }


def test_amounts_are_checked_exactly_as_sent(api):
    raw = (
        b'{"payments":[{"paymentIdentifier":"p1","invoiceNumber":"1","paymentDate":"2026-01-01",'
        b'"amount":0.1000000000000000055511151231257827,"currency":"EUR"}]}'
    )
    response = api.call(Endpoint.SUBMIT_PAYMENTS, raw=raw)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "payments[0].amount"


def test_amounts_are_stored_exactly(confirma_sandbox, api):
    api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1", amount="1234567890123.10")]})
    stored = confirma_sandbox.records()["payments"][0]["submitted"]
    assert stored["amount"] == Decimal("1234567890123.10")


def test_bad_bodies_get_400_and_415(api):
    response = api.call(Endpoint.SUBMIT_PAYMENTS, raw=b'{"payments": [')
    assert response.status_code == 400 and "malformed JSON" in response.json()["message"]
    response = api.call(Endpoint.SUBMIT_PAYMENTS, raw=b'{"payments": []}', content_type="text/plain")
    assert response.status_code == 415 and "application/json" in response.json()["message"]


def test_duplicates_are_counted_per_kind(confirma_sandbox, api):
    api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1"), payment("p2")]})
    again = api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p2"), payment("p3")]}).json()
    assert (again["accepted"], again["duplicates"]) == (["p3"], ["p2"])
    api.call(Endpoint.SUBMIT_LEDGER, ledger("lg-1"))
    api.call(Endpoint.SUBMIT_LEDGER, ledger("lg-1"))
    assert api.call(Endpoint.CREATE_INVOICE, invoice(10001)).json()["duplicate"] is False
    assert api.call(Endpoint.CREATE_INVOICE, invoice(10001)).json()["duplicate"] is True
    duplicates = confirma_sandbox.stats()["duplicates"]
    assert (duplicates["total"], duplicates["payments"], duplicates["ledgers"], duplicates["invoices"]) == (3, 1, 1, 1)
    assert duplicates["identifiers"] == {"payments": ["p2"], "ledgers": ["lg-1"], "invoices": ["10001"]}


def test_reject_policy_answers_409(confirma_sandbox, api):
    confirma_sandbox.configure(duplicate_policy="reject")
    api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    response = api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    assert response.status_code == 409 and response.json()["duplicates"] == ["p1"]
    assert api.call(Endpoint.CREATE_INVOICE, invoice(5)).status_code == 200
    assert api.call(Endpoint.CREATE_INVOICE, invoice(5)).status_code == 409


def test_request_counts_per_path_and_query_passthrough(confirma_sandbox, api):
    for _ in range(3):
        api.call(Endpoint.PAYMENT_SYNC_STATUS, params={"fromDate": "2026-01-01"})
    api.call(Endpoint.VALIDATE, key=None)
    stats = confirma_sandbox.stats()
    assert stats["requests"] == {
        f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}": 3,
        f"GET {Endpoint.VALIDATE.full_path}": 1,
    }
    assert stats["responses"][f"GET {Endpoint.VALIDATE.full_path}"] == {"401": 1}
    assert stats["queries"][f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}"] == [{"fromDate": "2026-01-01"}] * 3


def test_posted_invoice_shows_in_distribution_and_case(confirma_sandbox, api):
    created = api.call(Endpoint.CREATE_INVOICE, invoice(10001)).json()
    assert created["caseId"] is not None
    confirma_sandbox.sync_now()
    records = api.call(Endpoint.DISTRIBUTION_INFO, params={"invoiceNumber": "10001"}).json()
    assert records["metaData"]["totalCount"] == 1
    assert records["distributions"][0]["distributionStatus"] == "DELIVERED"
    case = api.call(Endpoint.CASE_DETAILS, params={"caseId": created["caseId"]}).json()["case"]
    assert case["summary"]["caseId"] == created["caseId"] and case["summary"]["agency"] == "CashIn"
    actions = api.call(Endpoint.CREATE_INVOICE_ACTION, ACTION_BODY).json()["actions"]
    assert actions == [{"code": "COMMENT", "invoiceNumber": 10001, "caseId": 555001, "status": "PENDING"}]


def test_seeded_reads(api):
    payments = api.call(Endpoint.PAYMENTS).json()
    assert isinstance(payments, list) and payments
    assert set(payments[0]) >= {"caseId", "invoiceNumber", "invoicePaymentReference", "accountName", "paymentDate"}
    day = payments[0]["paymentDate"][:10]
    window = api.call(Endpoint.PAYMENTS, params={"fromDate": day, "toDate": day}).json()
    assert window and all(p["paymentDate"].startswith(day) for p in window)
    settlements = api.call(Endpoint.SETTLEMENTS, params={"fromDate": "2000-01-01"}).json()
    assert settlements["createdAt"].endswith("Z") and settlements["settlements"]
    assert api.call(Endpoint.CASE_DETAILS).status_code == 400
    assert api.call(Endpoint.CASE_DETAILS, params={"caseId": "1"}).status_code == 404
    response = api.call(Endpoint.PAYMENTS, params={"fromDate": "01.01.2026"})
    assert response.status_code == 400 and "fromDate" in response.json()["message"]


def test_unknown_paths_are_404(api, confirma_sandbox):
    response = api.session.get(confirma_sandbox.url + API_PREFIX + "/nope", headers={"X-Api-Key": api.key})
    assert response.status_code == 404


def test_admin_rejects_bad_settings_with_the_setting_name(confirma_sandbox):
    with pytest.raises(SandboxAdminError, match="failure_rate must be between 0 and 1"):
        confirma_sandbox.configure(failure_rate=3)
    with pytest.raises(SandboxAdminError, match="sum must be <= 1"):
        confirma_sandbox.set_chaos(error_500=0.7, error_503=0.7)
    assert confirma_sandbox.admin.config()["failure_rate"] == 0.0


def test_reset_forgets_everything_and_restores_the_start_config(confirma_sandbox, api):
    confirma_sandbox.configure(sync_delay=99)
    confirma_sandbox.set_chaos(error_500=0.5)
    api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    confirma_sandbox.reset()
    assert confirma_sandbox.admin.config() == confirma_sandbox.config.public_dict()
    assert confirma_sandbox.stats()["total_requests"] == 0
    assert api.call(Endpoint.PAYMENT_SYNC_STATUS).status_code == 204


def test_allowed_hosts_of_a_bind():
    assert allowed_hosts("127.0.0.1", 8765) == {b"127.0.0.1:8765", b"localhost:8765", b"[::1]:8765"}
    assert allowed_hosts("0.0.0.0", 81) == {b"0.0.0.0:81", b"127.0.0.1:81", b"localhost:81", b"[::1]:81"}
    assert allowed_hosts("192.0.2.7", 81) == {b"192.0.2.7:81"}  # a specific interface: only its address
    assert allowed_hosts("::1", 80, ["Box.Example"]) >= {b"[::1]", b"[::1]:80", b"box.example", b"box.example:80"}
    assert allowed_hosts("127.0.0.1", 5, ["proxy.test:9", "[fe80::1]:7"]) >= {b"proxy.test:9", b"[fe80::1]:7"}


def test_extra_allowed_hosts_are_answered_and_others_refused():
    with ConfirmaSandbox(SandboxConfig(), allowed_hosts=["sandbox.test", "other.test:9"]) as sandbox:
        url = sandbox.url + "/_sandbox/health"

        def status(host: str) -> int:
            return requests.get(url, headers={"Host": host, "X-Api-Key": sandbox.api_key}, timeout=10).status_code

        for host in (f"sandbox.test:{sandbox.port}", "other.test:9", f"localhost:{sandbox.port}"):
            assert status(host) == 200, host
        for host in (f"other.test:{sandbox.port}", "sandbox.test", "evil.test"):
            assert status(host) == 400, host
