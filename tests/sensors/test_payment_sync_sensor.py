"""ConfirmaPaymentSyncSensor without Airflow's runtime: arguments, poke over mocked HTTP, deferral, events."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import responses
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
    task,
)

from airflow_provider_confirma.assets import PAYMENT_SYNC_ASSET
from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.exceptions import ConfirmaAuthError, ConfirmaConfigError, ConfirmaResponseError
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import only_on_airflow_3_3
from tests.triggers.fake_status_api import fake_api, first_event, trigger_conns

__all__ = ["fake_api", "trigger_conns"]  # fixtures of the trigger tests, for the trigger's old kwargs

KEY = "ck_test_SECRET_sensor_51c0aa"
HOST = "http://127.0.0.1:8997"
URL = HOST + Endpoint.PAYMENT_SYNC_STATUS.full_path
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


def body(statuses: dict[str, int], descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    descriptions = descriptions or {}
    return {
        "payments": [
            {
                "sourceIdentifier": ident,
                "invoiceNumber": "10001",
                "paymentDate": "2026-02-02",
                "syncDate": "2026-02-03" if status == 1 else None,
                "status": status,
                "description": descriptions.get(ident, "Pending" if status == 0 else "Successfully synced"),
            }
            for ident, status in statuses.items()
        ]
    }


def make_sensor(**overrides: Any) -> ConfirmaPaymentSyncSensor:
    kwargs: dict[str, Any] = {
        "task_id": "wait_sync",
        "confirma_conn_id": "confirma_sensor",
        "source_identifiers": ["a", "b"],
        "poke_interval": 0.01,
        "timeout": 30,
        "http_retry_policy": ONE_ATTEMPT,
    }
    kwargs.update(overrides)
    return ConfirmaPaymentSyncSensor(**kwargs)


# -- arguments ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"source_identifiers": []}, "source_identifiers is empty"),
        ({"source_identifiers": {"ids": []}}, "'identifiers' key"),
        ({"source_identifiers": [None]}, "source_identifiers[0]"),
        ({"success_statuses": {1, 2}, "pending_statuses": {2}}, "overlap on [2]"),
        ({"success_statuses": []}, "success_statuses must not be empty"),
        ({"pending_statuses": ["x"]}, "pending_statuses must hold integer status codes"),
        ({"poke_interval": 0}, "poke_interval must be a positive number"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"query_params": ["fromDate"]}, "query_params must be a dict"),
        ({"max_xcom_records": -1}, "max_xcom_records must be an integer >= 0"),
        ({"max_consecutive_errors": 0}, "max_consecutive_errors must be an integer >= 1"),
        ({"confirma_conn_id": ""}, "confirma_conn_id must be a non-empty string"),
        ({"http_retry_policy": {"max_attempts": 0}}, "max_attempts must be >= 1"),
    ],
)
def test_bad_arguments_fail_at_parse_time(overrides: dict[str, Any], fragment: str):
    with pytest.raises(ConfirmaConfigError) as err:
        make_sensor(**overrides)
    assert fragment in str(err.value)
    assert "ConfirmaPaymentSyncSensor 'wait_sync'" in str(err.value)


def test_templates_and_xcom_args_are_checked_after_rendering():
    make_sensor(source_identifiers="{{ ti.xcom_pull('submit') }}", query_params="{{ params.q }}")
    with DAG("sensor_xcomarg_parse", schedule=None):

        @task
        def submit() -> dict[str, Any]:
            return {"identifiers": ["a"]}

        submitted = submit()
        sensor = make_sensor(source_identifiers=submitted)
    assert sensor.upstream_task_ids == {"submit"}


def test_rendered_values_are_validated_naming_the_argument(api: responses.RequestsMock):
    sensor = make_sensor(source_identifiers="{{ something }}")
    sensor.source_identifiers = "[]"  # what the template rendered to
    with pytest.raises(ConfirmaConfigError, match="'wait_sync': rendered source_identifiers is empty") as info:
        sensor.execute({})
    # A retry would render the same input: fail without using up the task's retries.
    assert isinstance(info.value, AirflowFailException)
    sensor = make_sensor(query_params="{{ params.q }}")
    sensor.query_params = "fromDate=2026-01-01"
    with pytest.raises(ConfirmaConfigError, match="'wait_sync': rendered query_params must be a dict") as info:
        sensor.execute({})
    assert isinstance(info.value, AirflowFailException)
    assert len(api.calls) == 0  # validation happens before any request


def test_emit_asset_declares_the_payment_asset_once():
    assert make_sensor().outlets == []
    sensor = make_sensor(emit_asset=True)
    assert sensor.outlets == [PAYMENT_SYNC_ASSET]
    assert PAYMENT_SYNC_ASSET.uri == "confirma://accounting/payment"
    other = PAYMENT_SYNC_ASSET.__class__("s3://bucket/payments")
    combined = make_sensor(emit_asset=True, outlets=[other, PAYMENT_SYNC_ASSET])
    assert combined.outlets == [other, PAYMENT_SYNC_ASSET]


@only_on_airflow_3_3("BaseOperator.retry_policy is 3.3's")
def test_http_retry_policy_is_not_airflows_task_retry_policy():
    sensor = make_sensor(http_retry_policy={"max_attempts": 2})
    assert sensor.http_retry_policy == RetryPolicy(max_attempts=2)
    assert sensor.retry_policy is None  # Airflow 3.3's task-level retry policy stays untouched
    assert sensor.hook.retry_policy == RetryPolicy(max_attempts=2)


# -- poke --------------------------------------------------------------------------------------------
def test_poke_waits_while_pending_and_logs_progress(api: responses.RequestsMock, capsys: pytest.CaptureFixture[str]):
    api.get(URL, json=body({"a": 1}))
    sensor = make_sensor(source_identifiers=["a", "b", "c"])
    assert sensor.poke({}) is False
    out = capsys.readouterr().out
    assert "1/3 synced; waiting: b, c; failed: -; not yet listed: b, c" in out
    assert len(api.calls) == 1
    assert api.calls[0].request.headers["X-Api-Key"] == KEY
    assert KEY not in out


def test_poke_returns_the_summary_when_all_synced(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 1, "b": 1, "other": 0}))
    sensor = make_sensor(query_params={"fromDate": "2026-02-01"})
    result = sensor.poke({})
    assert result
    summary = result.xcom_value  # type: ignore[union-attr]
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["a", "b"]
    assert json.loads(json.dumps(summary)) == summary
    assert api.calls[0].request.url.endswith("?fromDate=2026-02-01")


def test_poke_fails_at_once_naming_failed_payments(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 2, "b": 0}, {"a": "Invoice not found in target"}))
    with pytest.raises(AirflowFailException) as err:
        make_sensor().poke({})
    assert str(err.value) == (
        "Confirma payment sync failed for 1 of 2 record(s): a (status 2: Invoice not found in target)"
    )


def test_poke_names_a_record_it_must_show_that_cannot_be_read(api: responses.RequestsMock):
    records = body({"a": 1, "b": 1})["payments"]
    records[1]["syncDate"] = "32/13/2026"
    api.get(URL, json={"payments": records})
    with pytest.raises(ConfirmaResponseError, match="payments record 'b': syncDate is not a date"):
        make_sensor().poke({})
    records[1]["sourceIdentifier"] = "not-tracked"
    api.replace(responses.GET, URL, json={"payments": [*records, {"sourceIdentifier": "b", "status": 1}]})
    done = make_sensor().poke({})
    assert done and done.xcom_value["counts"]["synced"] == 2  # type: ignore[union-attr]


def test_poke_keeps_waiting_on_failure_when_told_to(api: responses.RequestsMock, capsys: pytest.CaptureFixture[str]):
    api.get(URL, json=body({"a": 2, "b": 1}, {"a": "Rejected"}))
    assert make_sensor(fail_on_sync_failure=False).poke({}) is False
    assert "failed: a (Rejected)" in capsys.readouterr().out


def test_poke_without_identifiers_waits_for_nothing_pending(api: responses.RequestsMock):
    api.get(URL, json=body({"x": 1, "y": 0}))
    api.get(URL, status=204)
    sensor = make_sensor(source_identifiers=None)
    assert sensor.poke({}) is False
    done = sensor.poke({})
    assert done and done.xcom_value["counts"]["total"] == 0  # type: ignore[union-attr]


def test_transient_errors_are_tolerated_up_to_the_limit(api: responses.RequestsMock):
    api.get(URL, status=503, body="busy")
    sensor = make_sensor(max_consecutive_errors=3)
    assert sensor.poke({}) is False
    assert sensor.poke({}) is False
    with pytest.raises(AirflowException, match=r"failed 3 times in a row; last error: .*HTTP 503"):
        sensor.poke({})
    assert len(api.calls) == 3  # one request per poke


def test_a_good_poke_resets_the_error_count(api: responses.RequestsMock):
    for status in (503, 429):
        api.get(URL, status=status)
    api.get(URL, json=body({"a": 0, "b": 0}))
    api.get(URL, status=503)
    sensor = make_sensor(max_consecutive_errors=3)
    assert [sensor.poke({}) for _ in range(4)] == [False] * 4


def test_non_transient_errors_raise_at_once(api: responses.RequestsMock):
    api.get(URL, status=401, body="bad key")
    with pytest.raises(ConfirmaAuthError) as err:
        make_sensor(max_consecutive_errors=5).poke({})
    assert KEY not in str(err.value)
    assert len(api.calls) == 1


def test_execute_in_poke_mode_returns_the_summary(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 0, "b": 0}))
    api.get(URL, json=body({"a": 1, "b": 0}))
    api.get(URL, json=body({"a": 1, "b": 1}))
    summary = make_sensor().execute({})
    assert summary["counts"]["synced"] == 2
    assert summary["waited_seconds"] >= 0.02
    assert len(api.calls) == 3


# -- deferrable --------------------------------------------------------------------------------------
def test_deferrable_checks_once_then_defers_with_the_sensor_timeout(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 1, "b": 0}))
    sensor = make_sensor(deferrable=True, timeout=120, poke_interval=5, query_params={"fromDate": "2026-02-01"})
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert len(api.calls) == 1
    assert deferred.value.method_name == "execute_complete"
    assert timedelta(seconds=119) < deferred.value.timeout <= timedelta(seconds=120)
    trigger = deferred.value.trigger
    assert isinstance(trigger, ConfirmaPaymentSyncTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["confirma_conn_id"] == "confirma_sensor"
    assert kwargs["source_identifiers"] == ["a", "b"]
    assert kwargs["poll_interval"] == 5
    assert kwargs["query_params"] == {"fromDate": "2026-02-01"}
    assert before <= kwargs["started_at"] <= time.time()
    assert kwargs["end_time"] == pytest.approx(kwargs["started_at"] + 120)
    assert kwargs["http_retry_policy"]["max_attempts"] == 1  # the sensor's name for it
    assert KEY not in json.dumps(kwargs)


def test_the_trigger_class_is_the_class_or_a_dotted_path_imported_on_use():
    assert ConfirmaPaymentSyncSensor.trigger_class is ConfirmaPaymentSyncTrigger
    assert ConfirmaPaymentSyncSensor.get_trigger_class() is ConfirmaPaymentSyncTrigger

    class DottedPathSensor(ConfirmaPaymentSyncSensor):
        trigger_class = "airflow_provider_confirma.triggers.payment_sync.ConfirmaPaymentSyncTrigger"

    assert DottedPathSensor.get_trigger_class() is ConfirmaPaymentSyncTrigger


def test_deferrable_returns_without_deferring_when_already_synced(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 1, "b": 1}))
    assert make_sensor(deferrable=True).execute({})["outcome"] == "success"


def test_deferrable_first_check_failure_fails_or_skips(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 3, "b": 1}))
    with pytest.raises(AirflowFailException, match="a \\(status 3"):
        make_sensor(deferrable=True).execute({})
    with pytest.raises(AirflowSkipException, match="soft_fail"):
        make_sensor(deferrable=True, soft_fail=True).execute({})


def test_deferrable_first_check_transient_error_still_defers(api: responses.RequestsMock):
    api.get(URL, status=502)
    with pytest.raises(TaskDeferred):
        make_sensor(deferrable=True).execute({})


def test_reschedule_mode_measures_the_wait_from_the_first_reschedule(api: responses.RequestsMock):
    api.get(URL, json=body({"a": 1, "b": 1}))
    ti = mock.Mock()
    first = time.time() - 50
    ti.get_first_reschedule_date.return_value = mock.Mock(timestamp=lambda: first)
    summary = make_sensor(mode="reschedule", timeout=120).execute({"ti": ti})
    assert 50 <= summary["waited_seconds"] < 60


# -- execute_complete --------------------------------------------------------------------------------
SUMMARY = {"outcome": "success", "counts": {"total": 1}}


def test_execute_complete_success_returns_the_summary():
    event = {"status": "success", "message": "1/1 synced", "summary": SUMMARY}
    assert make_sensor().execute_complete({}, event) == SUMMARY


@pytest.mark.parametrize(
    ("event", "error", "fragment"),
    [
        ({"status": "failed", "message": "payment sync failed for 1", "summary": SUMMARY}, AirflowFailException, "1"),
        ({"status": "timeout", "message": "Timed out after 5.0s", "summary": None}, AirflowSensorTimeout, "Timed out"),
        ({"status": "error", "message": "HTTP 401"}, AirflowException, "HTTP 401"),
        (None, AirflowException, "without a trigger event"),
        ({"status": "done", "message": "?"}, AirflowException, "unknown trigger event status 'done'"),
        ({"status": "success", "message": "no summary"}, AirflowException, "has no summary"),
        ("success", AirflowException, "not a dict"),
    ],
)
def test_execute_complete_accepts_only_the_closed_vocabulary(event: Any, error: type[Exception], fragment: str):
    with pytest.raises(error) as err:
        make_sensor().execute_complete({}, event)
    assert fragment in str(err.value)
    if error is AirflowException:
        assert not isinstance(err.value, (AirflowFailException, AirflowSensorTimeout))


def test_resume_with_soft_fail_turns_timeout_into_skip():
    sensor = make_sensor(soft_fail=True)
    event = {"status": "timeout", "message": "Timed out", "summary": None}
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event}, {})
    with pytest.raises(AirflowSensorTimeout):
        make_sensor().resume_execution("execute_complete", {"event": event}, {})


# -- the trigger's kwargs: the names an earlier version stored in the metadata DB still run -------
#: What a sensor of the previous release serialized for its trigger (``retry_policy``, since renamed
#: ``http_retry_policy`` as on the sensor and the operators).
OLD_SERIALIZED_KWARGS: dict[str, Any] = {
    "confirma_conn_id": "confirma_test",
    "source_identifiers": ["a"],
    "success_statuses": [1],
    "pending_statuses": [0],
    "query_params": {},
    "poll_interval": 0.05,
    "started_at": 1_760_000_000.0,
    "fail_on_sync_failure": True,
    "max_xcom_records": 1000,
    "max_consecutive_errors": 5,
    "coalesce": False,
    "retry_policy": {
        "max_attempts": 1,
        "max_total_seconds": 2.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.01,
        "jitter": 0.01,
        "retry_after_cap": 30.0,
    },
}


async def test_a_trigger_built_from_the_old_serialized_kwargs_still_runs(fake_api, trigger_conns):
    fake_api.statuses.update({"a": 1})
    with pytest.warns(DeprecationWarning, match=r"retry_policy=\.\.\.\) is deprecated; use http_retry_policy"):
        trigger = ConfirmaPaymentSyncTrigger(**OLD_SERIALIZED_KWARGS, end_time=time.time() + 10)
    assert trigger.retry_policy == RetryPolicy(**OLD_SERIALIZED_KWARGS["retry_policy"])
    payload = await first_event(trigger)
    assert payload["status"] == "success"
    _, kwargs = trigger.serialize()  # serialized again under the new name only
    assert "retry_policy" not in kwargs
    assert kwargs["http_retry_policy"] == OLD_SERIALIZED_KWARGS["retry_policy"]


def test_the_trigger_takes_one_spelling_of_the_retry_policy_and_checks_its_connection_id():
    with pytest.raises(ConfirmaConfigError, match="give http_retry_policy only"):
        ConfirmaPaymentSyncTrigger(end_time=1.0, retry_policy={}, http_retry_policy={})
    for bad in ("", " ", None):
        with pytest.raises(ConfirmaConfigError, match="confirma_conn_id must be a non-empty string"):
            ConfirmaPaymentSyncTrigger(end_time=1.0, confirma_conn_id=bad)
