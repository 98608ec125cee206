"""ConfirmaPaymentSyncSensor and ConfirmaLedgerSyncSensor without Airflow's runtime: arguments, poke
over mocked HTTP, deferral, events, and the asset event's extra. Every test runs on both sensors (the
``variant`` fixture, see ``tests/sync_variants.py``) unless it names one.
"""

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
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_confirma.exceptions import ConfirmaAuthError, ConfirmaConfigError, ConfirmaResponseError
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.sensors.base import ConfirmaSyncStatusSensor
from airflow_provider_confirma.sensors.ledger_sync import ConfirmaLedgerSyncSensor
from airflow_provider_confirma.sensors.payment_sync import ERROR_STREAK_KEY, ConfirmaPaymentSyncSensor
from tests.airflow_compat import only_on_airflow_3_3
from tests.sync_variants import VARIANT_PARAMS, SyncVariant, other_variant
from tests.triggers.fake_status_api import fake_api, first_event, trigger_conns

__all__ = ["fake_api", "trigger_conns"]  # fixtures of the trigger tests, for the trigger's old kwargs

KEY = "ck_test_SECRET_sensor_51c0aa"
HOST = "http://127.0.0.1:8997"
ONE_ATTEMPT = RetryPolicy(max_attempts=1, max_total_seconds=2, backoff_initial=0.01, backoff_max=0.01, jitter=0.01)


@pytest.fixture(autouse=True)
def sensor_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CONFIRMA_SENSOR", json.dumps({"conn_type": "confirma", "password": KEY, "host": HOST})
    )


@pytest.fixture(params=VARIANT_PARAMS)
def variant(request: pytest.FixtureRequest) -> SyncVariant:
    return request.param


@pytest.fixture
def url(variant: SyncVariant) -> str:
    return HOST + variant.endpoint.full_path


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def make_sensor(variant: SyncVariant, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "task_id": "wait_sync",
        "confirma_conn_id": "confirma_sensor",
        "source_identifiers": ["a", "b"],
        "poke_interval": 0.01,
        "timeout": 30,
        "http_retry_policy": ONE_ATTEMPT,
    }
    kwargs.update(overrides)
    return variant.sensor(**kwargs)


def context(**extra: Any) -> dict[str, Any]:
    return {"outlet_events": OutletEventAccessors(), **extra}


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
def test_bad_arguments_fail_at_parse_time_naming_the_sensor(
    variant: SyncVariant, overrides: dict[str, Any], fragment: str
):
    with pytest.raises(ConfirmaConfigError) as err:
        make_sensor(variant, **overrides)
    assert str(err.value).startswith(f"{variant.sensor.__name__} 'wait_sync': ")
    assert fragment in str(err.value)


def test_templates_and_xcom_args_are_checked_after_rendering(variant: SyncVariant):
    make_sensor(variant, source_identifiers="{{ ti.xcom_pull('submit') }}", query_params="{{ params.q }}")
    with DAG(f"sensor_xcomarg_parse_{variant.name}", schedule=None):

        @task
        def submit() -> dict[str, Any]:
            return {"identifiers": ["a"]}

        submitted = submit()
        sensor = make_sensor(variant, source_identifiers=submitted)
    assert sensor.upstream_task_ids == {"submit"}


def test_rendered_values_are_validated_naming_the_argument(variant: SyncVariant, api: responses.RequestsMock):
    sensor = make_sensor(variant, source_identifiers="{{ something }}")
    sensor.source_identifiers = "[]"  # what the template rendered to
    with pytest.raises(ConfirmaConfigError, match="'wait_sync': rendered source_identifiers is empty") as info:
        sensor.execute({})
    # A retry would render the same input: fail without using up the task's retries.
    assert isinstance(info.value, AirflowFailException)
    sensor = make_sensor(variant, query_params="{{ params.q }}")
    sensor.query_params = "fromDate=2026-01-01"
    with pytest.raises(ConfirmaConfigError, match="'wait_sync': rendered query_params must be a dict") as info:
        sensor.execute({})
    assert isinstance(info.value, AirflowFailException)
    assert len(api.calls) == 0  # validation happens before any request


def test_emit_asset_declares_the_variants_asset_once(variant: SyncVariant):
    assert make_sensor(variant).outlets == []
    assert make_sensor(variant, emit_asset=True).outlets == [variant.asset]
    assert variant.asset.uri == f"confirma://accounting/{variant.name}"
    other = variant.asset.__class__("s3://bucket/records")
    combined = make_sensor(variant, emit_asset=True, outlets=[other, variant.asset])
    assert combined.outlets == [other, variant.asset]


def test_the_base_sensor_needs_an_endpoint_subclass():
    with pytest.raises(TypeError, match="sets no sync status endpoint"):
        ConfirmaSyncStatusSensor(task_id="wait_sync", source_identifiers=["a"])


@only_on_airflow_3_3("BaseOperator.retry_policy is 3.3's")
def test_http_retry_policy_is_not_airflows_task_retry_policy(variant: SyncVariant):
    sensor = make_sensor(variant, http_retry_policy={"max_attempts": 2})
    assert sensor.http_retry_policy == RetryPolicy(max_attempts=2)
    assert sensor.retry_policy is None  # Airflow 3.3's task-level retry policy stays untouched
    assert sensor.hook.retry_policy == RetryPolicy(max_attempts=2)


# -- poke --------------------------------------------------------------------------------------------
def test_poke_reads_its_endpoint_only_waits_while_pending_and_logs_progress(
    variant: SyncVariant, url: str, api: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
):
    api.get(url, json=variant.body({"a": 1}))
    other = other_variant(variant)  # would say "b is synced", but is not this sensor's endpoint
    api.get(HOST + other.endpoint.full_path, json=other.body({"b": 1}))
    sensor = make_sensor(variant, source_identifiers=["a", "b", "c"])
    assert sensor.poke({}) is False
    out = capsys.readouterr().out
    assert f"Confirma {variant.noun} sync: 1/3 synced; waiting: b, c; failed: -; not yet listed: b, c" in out
    assert [str(call.request.url).split("?")[0] for call in api.calls] == [url]
    assert api.calls[0].request.headers["X-Api-Key"] == KEY
    assert KEY not in out


def test_poke_returns_the_summary_when_all_synced(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, json=variant.body({"a": 1, "b": 1, "other": 0}))
    sensor = make_sensor(variant, query_params={"fromDate": "2026-02-01"})
    result = sensor.poke({})
    assert result
    summary = result.xcom_value
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["a", "b"]
    # The records keep their own fields (invoiceNumber / documentName ...) in the summary.
    for name, value in variant.own_fields:
        assert all(r[name] == value for r in summary["records"])
    assert json.loads(json.dumps(summary)) == summary
    assert str(api.calls[0].request.url).endswith("?fromDate=2026-02-01")


def test_poke_fails_at_once_naming_the_failed_records(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, json=variant.body({"a": 2, "b": 0, "c": 4}, {"a": "Invoice not found in target"}))
    with pytest.raises(AirflowFailException) as err:
        make_sensor(variant, source_identifiers=["a", "b", "c"]).poke({})
    assert str(err.value) == (
        f"Confirma {variant.noun} sync failed for 2 of 3 record(s): "
        "a (status 2: Invoice not found in target), c (status 4: Closed period)"
    )


def test_poke_names_a_record_it_must_show_that_cannot_be_read(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    records = variant.body({"a": 1, "b": 1})[variant.list_key]
    records[1]["syncDate"] = "32/13/2026"
    api.get(url, json={variant.list_key: records})
    with pytest.raises(ConfirmaResponseError, match=f"{variant.list_key} record 'b': syncDate is not a date"):
        make_sensor(variant).poke({})
    records[1]["sourceIdentifier"] = "not-tracked"
    api.replace(responses.GET, url, json={variant.list_key: [*records, {"sourceIdentifier": "b", "status": 1}]})
    done = make_sensor(variant).poke({})
    assert done and done.xcom_value["counts"]["synced"] == 2


def test_poke_keeps_waiting_on_failure_when_told_to(
    variant: SyncVariant, url: str, api: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
):
    api.get(url, json=variant.body({"a": 2, "b": 1}, {"a": "Rejected"}))
    assert make_sensor(variant, fail_on_sync_failure=False).poke({}) is False
    assert "failed: a (Rejected)" in capsys.readouterr().out


def test_poke_without_identifiers_waits_for_nothing_pending(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, json=variant.body({"x": 1, "y": 0}))
    api.get(url, status=204)
    sensor = make_sensor(variant, source_identifiers=None)
    assert sensor.poke({}) is False
    done = sensor.poke({})
    assert done and done.xcom_value["counts"]["total"] == 0


def test_transient_errors_are_tolerated_up_to_the_limit(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, status=503, body="busy")
    sensor = make_sensor(variant, max_consecutive_errors=3)
    assert sensor.poke({}) is False
    assert sensor.poke({}) is False
    with pytest.raises(AirflowException, match=r"failed 3 times in a row; last error: .*HTTP 503"):
        sensor.poke({})
    assert len(api.calls) == 3  # one request per poke


def test_a_good_poke_resets_the_error_count(variant: SyncVariant, url: str, api: responses.RequestsMock):
    for status in (503, 429):
        api.get(url, status=status)
    api.get(url, json=variant.body({"a": 0, "b": 0}))
    api.get(url, status=503)
    sensor = make_sensor(variant, max_consecutive_errors=3)
    assert [sensor.poke({}) for _ in range(4)] == [False] * 4


def test_non_transient_errors_raise_at_once(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, status=401, body="bad key")
    with pytest.raises(ConfirmaAuthError) as err:
        make_sensor(variant, max_consecutive_errors=5).poke({})
    assert KEY not in str(err.value)
    assert len(api.calls) == 1


def test_execute_in_poke_mode_returns_the_summary(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, json=variant.body({"a": 0, "b": 0}))
    api.get(url, json=variant.body({"a": 1, "b": 0}))
    api.get(url, json=variant.body({"a": 1, "b": 1}))
    summary = make_sensor(variant).execute({})
    assert summary["counts"]["synced"] == 2
    assert summary["waited_seconds"] >= 0.02
    assert len(api.calls) == 3


def test_reschedule_mode_keeps_its_error_count_under_its_own_key(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, status=503)
    store: dict[str, Any] = {}
    state_store = mock.Mock(get=store.get, set=store.__setitem__, delete=store.pop)
    ti = mock.Mock(try_number=1)
    assert make_sensor(variant, mode="reschedule").poke({"ti": ti, "task_state_store": state_store}) is False
    assert store == {variant.error_streak_key: {"try_number": 1, "errors": 1}}
    assert variant.sensor.error_streak_key == variant.error_streak_key


def test_the_two_sensors_keep_their_error_counts_apart():
    assert ConfirmaPaymentSyncSensor.error_streak_key == ERROR_STREAK_KEY
    assert ConfirmaLedgerSyncSensor.error_streak_key != ERROR_STREAK_KEY


# -- deferrable --------------------------------------------------------------------------------------
def test_deferrable_checks_once_then_defers_to_its_trigger_with_the_sensor_timeout(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, json=variant.body({"a": 1, "b": 0}))
    sensor = make_sensor(
        variant, deferrable=True, timeout=120, poke_interval=5, query_params={"fromDate": "2026-02-01"}
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert len(api.calls) == 1
    assert deferred.value.method_name == "execute_complete"
    assert timedelta(seconds=119) < deferred.value.timeout <= timedelta(seconds=120)
    trigger = deferred.value.trigger
    assert type(trigger) is variant.trigger
    classpath, kwargs = trigger.serialize()
    assert classpath == variant.trigger_classpath
    assert kwargs["confirma_conn_id"] == "confirma_sensor"
    assert kwargs["source_identifiers"] == ["a", "b"]
    assert kwargs["poll_interval"] == 5
    assert kwargs["query_params"] == {"fromDate": "2026-02-01"}
    assert before <= kwargs["started_at"] <= time.time()
    assert kwargs["end_time"] == pytest.approx(kwargs["started_at"] + 120)
    assert kwargs["http_retry_policy"]["max_attempts"] == 1  # the sensor's name for it
    assert KEY not in json.dumps(kwargs)


def test_the_trigger_class_is_the_class_or_a_dotted_path_imported_on_use(variant: SyncVariant):
    assert variant.sensor.trigger_class is variant.trigger
    assert variant.sensor.get_trigger_class() is variant.trigger

    class DottedPathSensor(variant.sensor):  # type: ignore[name-defined]
        trigger_class = variant.trigger_classpath

    assert DottedPathSensor.get_trigger_class() is variant.trigger


def test_deferrable_returns_without_deferring_when_already_synced(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, json=variant.body({"a": 1, "b": 1}))
    assert make_sensor(variant, deferrable=True).execute({})["outcome"] == "success"


def test_deferrable_first_check_failure_fails_or_skips(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, json=variant.body({"a": 3, "b": 1}))
    with pytest.raises(AirflowFailException, match="a \\(status 3"):
        make_sensor(variant, deferrable=True).execute({})
    with pytest.raises(AirflowSkipException, match="soft_fail"):
        make_sensor(variant, deferrable=True, soft_fail=True).execute({})


def test_deferrable_first_check_transient_error_still_defers(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, status=502)
    with pytest.raises(TaskDeferred):
        make_sensor(variant, deferrable=True).execute({})


def test_reschedule_mode_measures_the_wait_from_the_first_reschedule(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, json=variant.body({"a": 1, "b": 1}))
    ti = mock.Mock()
    first = time.time() - 50
    ti.get_first_reschedule_date.return_value = mock.Mock(timestamp=lambda: first)
    summary = make_sensor(variant, mode="reschedule", timeout=120).execute({"ti": ti})
    assert 50 <= summary["waited_seconds"] < 60


# -- execute_complete --------------------------------------------------------------------------------
SUMMARY = {"outcome": "success", "counts": {"total": 1}, "records": []}  # as an earlier release sent it


def test_execute_complete_success_returns_an_earlier_releases_whole_summary(variant: SyncVariant):
    event = {"status": "success", "message": "1/1 synced", "summary": SUMMARY}
    assert make_sensor(variant).execute_complete({}, event) == SUMMARY  # no request: nothing mocked


def test_execute_complete_reads_the_records_once_for_xcom(variant: SyncVariant, url: str, api: responses.RequestsMock):
    """The event carries the verdict's counts; the records come from one status GET on resume."""
    api.get(url, json=variant.body({"a": 1, "b": 1, "other": 0}))
    counts = {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0}
    compact = {"outcome": "success", "counts": counts, "unreadable": {"count": 0}, "waited_seconds": 12.5}
    event = {"status": "success", "message": "2/2 synced", "summary": compact, "started_at": 1.0}
    ctx = context()
    summary = make_sensor(variant, emit_asset=True).execute_complete(ctx, event)
    assert len(api.calls) == 1 and api.calls[0].request.method == "GET"
    assert [r["sourceIdentifier"] for r in summary["records"]] == ["a", "b"]
    assert (summary["outcome"], summary["counts"], summary["waited_seconds"]) == ("success", counts, 12.5)
    assert summary["records_omitted"] == 0 and summary["missing"] == []
    assert ctx["outlet_events"][variant.asset].extra == {"synced": 2, "identifiers": ["a", "b"]}


def test_execute_complete_says_when_the_records_cannot_be_read(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, status=503)
    compact = {"outcome": "success", "counts": {"total": 2}, "waited_seconds": 1.0}
    with pytest.raises(AirflowException, match="sync succeeded, but reading its records for XCom failed") as info:
        make_sensor(variant).execute_complete({}, {"status": "success", "message": "2/2", "summary": compact})
    assert not isinstance(info.value, AirflowFailException)  # a retry of the task can still succeed
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    ("event", "error", "fragment"),
    [
        ({"status": "failed", "message": "sync failed for 1", "summary": SUMMARY}, AirflowFailException, "1"),
        ({"status": "timeout", "message": "Timed out after 5.0s", "summary": None}, AirflowSensorTimeout, "Timed out"),
        ({"status": "error", "message": "HTTP 401"}, AirflowException, "HTTP 401"),
        (None, AirflowException, "without a trigger event"),
        ({"status": "done", "message": "?"}, AirflowException, "unknown trigger event status 'done'"),
        ({"status": "success", "message": "no summary"}, AirflowException, "has no summary"),
        ("success", AirflowException, "not a dict"),
    ],
)
def test_execute_complete_accepts_only_the_closed_vocabulary(
    variant: SyncVariant, event: Any, error: type[Exception], fragment: str
):
    with pytest.raises(error) as err:
        make_sensor(variant).execute_complete({}, event)
    assert fragment in str(err.value)
    if error is AirflowException:
        assert not isinstance(err.value, (AirflowFailException, AirflowSensorTimeout))


def test_resume_with_soft_fail_turns_timeout_into_skip(variant: SyncVariant):
    event = {"status": "timeout", "message": "Timed out", "summary": None}
    with pytest.raises(AirflowSkipException):
        make_sensor(variant, soft_fail=True).resume_execution("execute_complete", {"event": event}, {})
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(variant).resume_execution("execute_complete", {"event": event}, {})


# -- the asset event's extra -------------------------------------------------------------------------
def test_poke_mode_success_fills_the_asset_event_extra(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, json=variant.body({"a": 1, "b": 1, "other": 0}))
    ctx = context()
    make_sensor(variant, emit_asset=True).execute(ctx)
    assert ctx["outlet_events"][variant.asset].extra == {"synced": 2, "identifiers": ["a", "b"]}
    assert list(ctx["outlet_events"]) == [variant.asset]  # its own asset only


def test_no_extra_without_emit_asset(variant: SyncVariant, url: str, api: responses.RequestsMock):
    api.get(url, json=variant.body({"a": 1, "b": 1}))
    ctx = context()
    make_sensor(variant).execute(ctx)
    assert len(ctx["outlet_events"]) == 0


def test_execute_complete_fills_the_extra_from_the_event_summary(variant: SyncVariant):
    summary = {
        "outcome": "success",
        "counts": {"total": 2, "synced": 2, "pending": 0, "failed": 0, "missing": 0},
        "records": [{"sourceIdentifier": "a", "status": 1}, {"sourceIdentifier": "b", "status": 1}],
    }
    ctx = context()
    event = {"status": "success", "message": "2/2 synced", "summary": summary}
    assert make_sensor(variant, emit_asset=True).execute_complete(ctx, event) == summary
    assert ctx["outlet_events"][variant.asset].extra == {"synced": 2, "identifiers": ["a", "b"]}


def test_a_deferred_wait_that_fails_sets_no_extra(variant: SyncVariant):
    ctx = context()
    event = {"status": "failed", "message": f"Confirma {variant.noun} sync failed", "summary": None}
    with pytest.raises(AirflowFailException):
        make_sensor(variant, emit_asset=True).execute_complete(ctx, event)
    assert len(ctx["outlet_events"]) == 0


def test_extra_counts_every_synced_record_and_names_at_most_100(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    ids = [f"rec-{i:03d}" for i in range(150)]
    api.get(url, json=variant.body(dict.fromkeys(ids, 1)))
    ctx = context()
    make_sensor(variant, source_identifiers=ids, emit_asset=True).execute(ctx)
    extra = ctx["outlet_events"][variant.asset].extra
    assert extra == {"synced": 150, "identifiers": ids[:100]}
    json.dumps(extra)


def test_extra_without_identifiers_names_only_synced_records(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    """Waiting for "nothing pending": failed records do not block the wait, and are not named as synced."""
    api.get(url, json=variant.body({"a": 1, "b": 2, "c": 1}))
    ctx = context()
    make_sensor(variant, source_identifiers=None, fail_on_sync_failure=False, emit_asset=True).execute(ctx)
    assert ctx["outlet_events"][variant.asset].extra == {"synced": 2, "identifiers": ["a", "c"]}


def test_extra_count_stays_exact_when_the_summary_lists_fewer_records(
    variant: SyncVariant, url: str, api: responses.RequestsMock
):
    api.get(url, json=variant.body({"a": 1, "b": 1}))
    ctx = context()
    summary = make_sensor(variant, max_xcom_records=1, emit_asset=True).execute(ctx)
    assert summary["records_omitted"] == 1
    assert ctx["outlet_events"][variant.asset].extra == {"synced": 2, "identifiers": ["a"]}


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


async def test_a_payment_trigger_built_from_the_old_serialized_kwargs_still_runs(fake_api, trigger_conns):
    from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

    fake_api.statuses.update({"a": 1})
    with pytest.warns(DeprecationWarning, match=r"retry_policy=\.\.\.\) is deprecated; use http_retry_policy"):
        trigger = ConfirmaPaymentSyncTrigger(**OLD_SERIALIZED_KWARGS, end_time=time.time() + 10)
    assert trigger.retry_policy == RetryPolicy(**OLD_SERIALIZED_KWARGS["retry_policy"])
    payload = await first_event(trigger)
    assert payload["status"] == "success"
    _, kwargs = trigger.serialize()  # serialized again under the new name only
    assert "retry_policy" not in kwargs
    assert kwargs["http_retry_policy"] == OLD_SERIALIZED_KWARGS["retry_policy"]


def test_the_trigger_takes_one_spelling_of_the_retry_policy_and_checks_its_connection_id(variant: SyncVariant):
    with pytest.raises(ConfirmaConfigError, match="give http_retry_policy only"):
        variant.trigger(end_time=1.0, retry_policy={}, http_retry_policy={})
    for bad in ("", " ", None):
        with pytest.raises(ConfirmaConfigError, match="confirma_conn_id must be a non-empty string"):
            variant.trigger(end_time=1.0, confirma_conn_id=bad)
