"""ConfirmaHook against the real sandbox server: the contract the provider's tests and demo rely on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaAuthError, ConfirmaResponseError, ConfirmaTransportError
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.models import StatusSets, evaluate_sync

TINY = RetryPolicy(
    max_attempts=3, max_total_seconds=5, backoff_initial=0.001, backoff_max=0.005, jitter=0.001, retry_after_cap=0.01
)
SUBMISSION = {
    "payments": [
        {
            "paymentIdentifier": ident,
            "invoiceNumber": "10001",
            "paymentDate": date(2026, 2, 1),
            "amount": Decimal("12.30"),
            "currency": "EUR",
        }
        for ident in ("pay-1", "bad-2")
    ]
}


@pytest.fixture
def hook(confirma_sandbox_conn) -> ConfirmaHook:
    confirma_sandbox_conn.configure(failure_pattern="^bad-")
    return ConfirmaHook(retry_policy=TINY)


def test_submit_then_status(hook, confirma_sandbox_conn):
    assert hook.get_payment_sync_status() == []  # 204
    hook.submit_payments(SUBMISSION)
    stored = confirma_sandbox_conn.records()["payments"]
    assert [p["submitted"]["amount"] for p in stored] == [Decimal("12.30"), Decimal("12.30")]
    progress = evaluate_sync(hook.get_payment_sync_status(), StatusSets(), ["pay-1", "bad-2", "pay-3"])
    assert (progress.synced, progress.failed, progress.missing) == (["pay-1"], ["bad-2"], ["pay-3"])


def test_hook_retries_a_get_through_503s(hook, confirma_sandbox_conn):
    confirma_sandbox_conn.set_chaos(script=["503", "503"])
    assert hook.validate_token() == {"isValid": True, "message": "Token is valid"}
    assert confirma_sandbox_conn.stats()["requests"] == {f"GET {Endpoint.VALIDATE.full_path}": 3}


def test_hook_never_retries_a_post_reset_after_the_body(hook, confirma_sandbox_conn):
    confirma_sandbox_conn.set_chaos(script=["reset_after_body"])
    with pytest.raises(ConfirmaTransportError) as err:
        hook.submit_payments(SUBMISSION)
    assert err.value.kind == "reset"
    stats = confirma_sandbox_conn.stats()
    assert stats["requests"] == {f"POST {Endpoint.SUBMIT_PAYMENTS.full_path}": 1}
    assert stats["stored"]["payments"] == 2 and stats["duplicates"]["total"] == 0


def test_hook_reports_spoiled_responses(hook, confirma_sandbox_conn):
    confirma_sandbox_conn.set_chaos(script=["malformed_json", "wrong_content_type"], methods=["GET"])
    with pytest.raises(ConfirmaResponseError, match="malformed JSON"):
        hook.validate_token()
    with pytest.raises(ConfirmaResponseError, match="expected JSON"):
        hook.validate_token()


def test_wrong_key_is_an_auth_error_without_the_key(confirma_sandbox_conn, confirma_conn_env):
    confirma_conn_env(
        "confirma_wrong",
        f'{{"conn_type": "confirma", "host": "{confirma_sandbox_conn.url}", "password": "ck_wrong_SECRET_1"}}',
    )
    with pytest.raises(ConfirmaAuthError) as err:
        ConfirmaHook("confirma_wrong", retry_policy=TINY).validate_token()
    assert "ck_wrong_SECRET_1" not in str(err.value)


async def test_async_status_read(hook, confirma_sandbox_conn):
    confirma_sandbox_conn.configure(sync_delay=60)
    hook.submit_payments(SUBMISSION)
    records = await ConfirmaHook(retry_policy=TINY).aget_payment_sync_status()
    assert [(r.source_identifier, r.status) for r in records] == [("pay-1", 0), ("bad-2", 0)]
