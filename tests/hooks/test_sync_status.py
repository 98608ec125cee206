"""``ConfirmaHook`` sync status readers chosen by endpoint: ``get_sync_status`` / ``aget_sync_status``
and the per-kind methods on top of them (incl. ``aget_ledger_sync_status``, what the ledger trigger polls).

Sync HTTP is mocked with ``responses``, async with ``aioresponses``.
"""

from __future__ import annotations

import re

import pytest
from aioresponses import aioresponses

from airflow_provider_confirma.endpoints import API_PREFIX, Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError, ConfirmaResponseError
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.models import LedgerSyncRecord, PaymentSyncRecord

from .conftest import STAGING_BASE, TINY_POLICY

LEDGER_URL = STAGING_BASE + Endpoint.LEDGER_SYNC_STATUS.path
LEDGER_URL_ANY_QUERY = re.compile("^" + re.escape(LEDGER_URL) + r"(\?.*)?$")
LEDGERS_BODY = {
    "ledgers": [
        {
            "sourceIdentifier": "ml-1",
            "documentDate": "2026-02-02",
            "documentName": "Accruals",
            "documentStatus": "Approved",
            "syncDate": "2026-02-03",
            "status": 1,
            "description": "Successfully synced",
        },
        {"sourceIdentifier": "ml-2", "documentDate": "2026-02-02", "syncDate": None, "status": 0},
    ]
}
PAYMENTS_BODY = {"payments": [{"sourceIdentifier": "pay-1", "paymentDate": "2026-02-02", "status": 0}]}


@pytest.fixture
def async_hook(staging_conn) -> ConfirmaHook:
    return ConfirmaHook(retry_policy=TINY_POLICY)


async def test_aget_ledger_sync_status_reads_typed_ledger_records(async_hook):
    with aioresponses() as mock:
        mock.get(LEDGER_URL_ANY_QUERY, payload=LEDGERS_BODY)
        records = await async_hook.aget_ledger_sync_status({"fromDate": "2026-02-01"})
    assert [type(r) for r in records] == [LedgerSyncRecord, LedgerSyncRecord]
    assert [(r.source_identifier, r.status) for r in records] == [("ml-1", 1), ("ml-2", 0)]
    assert records[0].document_name == "Accruals"
    ((method, url), _) = next(iter(mock.requests.items()))
    assert method == "GET"
    assert url.path == API_PREFIX + "/accounting/ledger"
    assert url.query_string == "fromDate=2026-02-01"


async def test_aget_ledger_sync_status_no_content_is_an_empty_list(async_hook):
    with aioresponses() as mock:
        mock.get(LEDGER_URL, status=204)
        assert await async_hook.aget_ledger_sync_status() == []


async def test_aget_ledger_sync_status_reads_the_ledgers_list_only(async_hook):
    """The list key is the ledger endpoint's own: payments in the same body are not ledger records."""
    with aioresponses() as mock:
        mock.get(LEDGER_URL, payload={**PAYMENTS_BODY, **LEDGERS_BODY})
        records = await async_hook.aget_ledger_sync_status()
    assert [r.source_identifier for r in records] == ["ml-1", "ml-2"]


async def test_aget_ledger_sync_status_names_the_endpoint_of_a_bad_body(async_hook):
    with aioresponses() as mock:
        mock.get(LEDGER_URL, payload={"ledgers": {"sourceIdentifier": "ml-1"}})
        with pytest.raises(ConfirmaResponseError, match=r"/accounting/ledger.*'ledgers' is not a list"):
            await async_hook.aget_ledger_sync_status()


@pytest.mark.parametrize(
    ("endpoint", "body", "record_type"),
    [
        (Endpoint.PAYMENT_SYNC_STATUS, PAYMENTS_BODY, PaymentSyncRecord),
        (Endpoint.LEDGER_SYNC_STATUS, LEDGERS_BODY, LedgerSyncRecord),
    ],
    ids=["payment", "ledger"],
)
async def test_sync_and_async_readers_agree_per_endpoint(hook, rsps, async_hook, endpoint, body, record_type):
    rsps.get(STAGING_BASE + endpoint.path, json=body)
    synced = hook.get_sync_status(endpoint)
    with aioresponses() as mock:
        mock.get(STAGING_BASE + endpoint.path, payload=body)
        awaited = await async_hook.aget_sync_status(endpoint)
    assert all(type(r) is record_type for r in synced + awaited)
    assert [r.to_xcom() for r in synced] == [r.to_xcom() for r in awaited]
    assert len(synced) == len(body[next(iter(body))])


@pytest.mark.parametrize("endpoint", [Endpoint.PAYMENTS, Endpoint.SUBMIT_LEDGER], ids=lambda e: e.name)
async def test_a_non_status_endpoint_is_refused_before_any_request(hook, rsps, async_hook, endpoint):
    message = f"{re.escape(endpoint.value)} is not a sync status endpoint"
    with pytest.raises(ConfirmaConfigError, match=message):
        hook.get_sync_status(endpoint)
    with aioresponses() as mock:
        with pytest.raises(ConfirmaConfigError, match=message):
            await async_hook.aget_sync_status(endpoint)
        assert not mock.requests
    assert len(rsps.calls) == 0
