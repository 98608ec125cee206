"""ConfirmaLedgerSyncSensor without Airflow's runtime: what the ledger subclass changes (endpoint,
asset, trigger, messages, error-count key), and the asset event's extra of both sync sensors.

The shared argument handling and modes are tested in depth on the payment sensor
(``test_payment_sync_sensor.py``); here each is checked to apply to the ledger sensor too.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
import responses
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_confirma.assets import LEDGER_SYNC_ASSET, PAYMENT_SYNC_ASSET
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaConfigError
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.sensors.base import ConfirmaSyncStatusSensor
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor
from airflow_provider_confirma.sensors.payment_sync import ERROR_STREAK_KEY, ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.ledger_sync import ConfirmaLedgerSyncTrigger

KEY = "ck_test_SECRET_ledger_sensor_0b7e"
HOST = "http://127.0.0.1:8996"
LEDGER_URL = HOST + Endpoint.LEDGER_SYNC_STATUS.full_path
PAYMENT_URL = HOST + Endpoint.PAYMENT_SYNC_STATUS.full_path
ONE_ATTEMPT = RetryPolicy(max_attempts=1, max_total_seconds=2, backoff_initial=0.01, backoff_max=0.01, jitter=0.01)


@pytest.fixture(autouse=True)
def sensor_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CONFIRMA_SENSOR", json.dumps({"conn_type": "confirma", "password": KEY, "host": HOST})
    )


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def ledgers(statuses: dict[str, int]) -> dict[str, Any]:
    return {
        "ledgers": [
            {
                "sourceIdentifier": ident,
                "documentDate": "2026-02-02",
                "documentName": f"doc-{ident}",
                "documentStatus": "Approved",
                "syncDate": "2026-02-03" if status == 1 else None,
                "status": status,
                "description": {0: "Pending", 1: "Successfully synced"}.get(status, "Closed period"),
            }
            for ident, status in statuses.items()
        ]
    }


def make_sensor(cls: type[ConfirmaSyncStatusSensor] = ConfirmaLedgerSyncSensor, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "task_id": "wait_ledger",
        "confirma_conn_id": "confirma_sensor",
        "source_identifiers": ["ml-1", "ml-2"],
        "poke_interval": 0.01,
        "timeout": 30,
        "http_retry_policy": ONE_ATTEMPT,
    }
    kwargs.update(overrides)
    return cls(**kwargs)


def context(**extra: Any) -> dict[str, Any]:
    return {"outlet_events": OutletEventAccessors(), **extra}


# -- what the subclass sets ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"source_identifiers": []}, "source_identifiers is empty"),
        ({"poke_interval": 0}, "poke_interval must be a positive number"),
        ({"success_statuses": {1, 2}, "pending_statuses": {2}}, "overlap on [2]"),
    ],
)
def test_bad_arguments_fail_at_parse_time_naming_the_ledger_sensor(overrides: dict[str, Any], fragment: str):
    with pytest.raises(ConfirmaConfigError) as err:
        make_sensor(**overrides)
    assert str(err.value).startswith("ConfirmaLedgerSyncSensor 'wait_ledger': ")
    assert fragment in str(err.value)


def test_emit_asset_declares_the_ledger_asset():
    assert make_sensor().outlets == []
    assert make_sensor(emit_asset=True).outlets == [LEDGER_SYNC_ASSET]
    assert LEDGER_SYNC_ASSET.uri == "confirma://accounting/ledger"


def test_the_base_sensor_needs_an_endpoint_subclass():
    with pytest.raises(TypeError, match="sets no sync status endpoint"):
        make_sensor(ConfirmaSyncStatusSensor)


def test_poke_reads_the_ledger_endpoint_only(api: responses.RequestsMock, capsys: pytest.CaptureFixture[str]):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1}))
    api.get(PAYMENT_URL, json={"payments": [{"sourceIdentifier": "ml-2", "status": 1}]})
    assert make_sensor().poke({}) is False
    assert [call.request.url.split("?")[0] for call in api.calls] == [LEDGER_URL]
    assert "Confirma ledger sync: 1/2 synced; waiting: ml-2" in capsys.readouterr().out


def test_poke_returns_a_summary_of_ledger_records(api: responses.RequestsMock):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1, "ml-2": 1}))
    summary = make_sensor().execute({})
    assert summary["counts"] == {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    assert [(r["sourceIdentifier"], r["documentName"]) for r in summary["records"]] == [
        ("ml-1", "doc-ml-1"),
        ("ml-2", "doc-ml-2"),
    ]


def test_a_failed_ledger_fails_the_task_naming_it(api: responses.RequestsMock):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1, "ml-2": 4}))
    with pytest.raises(AirflowFailException) as err:
        make_sensor().poke({})
    assert str(err.value) == "Confirma ledger sync failed for 1 of 2 record(s): ml-2 (status 4: Closed period)"


def test_deferrable_defers_to_the_ledger_trigger(api: responses.RequestsMock):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 0}))
    sensor = make_sensor(deferrable=True, timeout=60, poke_interval=3, query_params={"fromDate": "2026-02-01"})
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    trigger = deferred.value.trigger
    assert type(trigger) is ConfirmaLedgerSyncTrigger
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_confirma.triggers.ledger_sync.ConfirmaLedgerSyncTrigger"
    assert kwargs["source_identifiers"] == ["ml-1", "ml-2"]
    assert kwargs["poll_interval"] == 3
    assert kwargs["query_params"] == {"fromDate": "2026-02-01"}
    assert KEY not in json.dumps(kwargs)


def test_reschedule_mode_keeps_its_error_count_under_a_ledger_key(api: responses.RequestsMock):
    api.get(LEDGER_URL, status=503)
    store: dict[str, Any] = {}
    state_store = mock.Mock(get=store.get, set=store.__setitem__, delete=store.pop)
    ti = mock.Mock(try_number=1)
    assert make_sensor(mode="reschedule").poke({"ti": ti, "task_state_store": state_store}) is False
    assert store == {"confirma_ledger_sync_error_streak": {"try_number": 1, "errors": 1}}
    assert ConfirmaLedgerSyncSensor.error_streak_key != ERROR_STREAK_KEY


# -- the asset event's extra -----------------------------------------------------------------------
def test_poke_mode_success_fills_the_asset_event_extra(api: responses.RequestsMock):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1, "ml-2": 1, "other": 0}))
    ctx = context()
    make_sensor(emit_asset=True).execute(ctx)
    assert ctx["outlet_events"][LEDGER_SYNC_ASSET].extra == {"synced": 2, "identifiers": ["ml-1", "ml-2"]}
    assert list(ctx["outlet_events"]) == [LEDGER_SYNC_ASSET]  # the ledger asset only


def test_no_extra_without_emit_asset(api: responses.RequestsMock):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1, "ml-2": 1}))
    ctx = context()
    make_sensor().execute(ctx)
    assert len(ctx["outlet_events"]) == 0


def test_execute_complete_fills_the_extra_from_the_event_summary():
    summary = {
        "outcome": "success",
        "counts": {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0},
        "records": [{"sourceIdentifier": "ml-1", "status": 1}, {"sourceIdentifier": "ml-2", "status": 1}],
    }
    ctx = context()
    event = {"status": "success", "message": "2/2 synced", "summary": summary}
    assert make_sensor(emit_asset=True).execute_complete(ctx, event) == summary
    assert ctx["outlet_events"][LEDGER_SYNC_ASSET].extra == {"synced": 2, "identifiers": ["ml-1", "ml-2"]}


def test_a_deferred_wait_that_fails_sets_no_extra():
    ctx = context()
    event = {"status": "failed", "message": "Confirma ledger sync failed", "summary": None}
    with pytest.raises(AirflowFailException):
        make_sensor(emit_asset=True).execute_complete(ctx, event)
    assert len(ctx["outlet_events"]) == 0


def test_extra_counts_every_synced_record_and_names_at_most_100(api: responses.RequestsMock):
    ids = [f"pay-{i:03d}" for i in range(150)]
    body = {"payments": [{"sourceIdentifier": i, "status": 1, "syncDate": "2026-02-03"} for i in ids]}
    api.get(PAYMENT_URL, json=body)
    ctx = context()
    make_sensor(ConfirmaPaymentSyncSensor, source_identifiers=ids, emit_asset=True).execute(ctx)
    extra = ctx["outlet_events"][PAYMENT_SYNC_ASSET].extra
    assert extra == {"synced": 150, "identifiers": ids[:100]}
    json.dumps(extra)


def test_extra_without_identifiers_names_only_synced_records(api: responses.RequestsMock):
    """Waiting for "nothing pending": failed records do not block the wait, and are not named as synced."""
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1, "ml-2": 2, "ml-3": 1}))
    ctx = context()
    make_sensor(source_identifiers=None, fail_on_sync_failure=False, emit_asset=True).execute(ctx)
    assert ctx["outlet_events"][LEDGER_SYNC_ASSET].extra == {"synced": 2, "identifiers": ["ml-1", "ml-3"]}


def test_extra_count_stays_exact_when_the_summary_lists_fewer_records(api: responses.RequestsMock):
    api.get(LEDGER_URL, json=ledgers({"ml-1": 1, "ml-2": 1}))
    ctx = context()
    summary = make_sensor(max_xcom_records=1, emit_asset=True).execute(ctx)
    assert summary["records_omitted"] == 1
    assert ctx["outlet_events"][LEDGER_SYNC_ASSET].extra == {"synced": 2, "identifiers": ["ml-1"]}
