"""What differs between the supported Airflow versions (3.0 to 3.3) works on the one this runs on.

The same tests run in every environment (``make test`` on 3.3, ``make compat`` on 3.0, ``make matrix``
on each): the connection form shows the Confirma fields whichever way Airflow reads it, and what needs
the task state store (3.3) degrades with a message or carries its state another way.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import responses
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.get_provider_info import get_provider_info
from airflow_provider_confirma.hooks.confirma import ConfirmaHook
from airflow_provider_confirma.hooks.http_policy import RetryPolicy
from airflow_provider_confirma.sensors.base import NO_STREAK_WARNING
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger

HOST = "http://127.0.0.1:8996"
URL = HOST + Endpoint.PAYMENT_SYNC_STATUS.full_path
ONE_ATTEMPT = RetryPolicy(max_attempts=1, max_total_seconds=2, backoff_initial=0.01, backoff_max=0.01, jitter=0.01)
METADATA = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == "confirma")


@pytest.fixture(autouse=True)
def versions_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    value = json.dumps({"conn_type": "confirma", "password": "ck_versions_key_8e1f", "host": HOST})
    monkeypatch.setenv("AIRFLOW_CONN_CONFIRMA_VERSIONS", value)


def sensor(**overrides: Any) -> ConfirmaPaymentSyncSensor:
    kwargs: dict[str, Any] = {
        "task_id": "wait",
        "confirma_conn_id": "confirma_versions",
        "source_identifiers": ["a"],
        "poke_interval": 5,
        "timeout": 600,
        "http_retry_policy": ONE_ATTEMPT,
    }
    return ConfirmaPaymentSyncSensor(**{**kwargs, **overrides})


# -- the connection form --------------------------------------------------------------------------
@pytest.fixture
def fresh_hook_metadata() -> Any:
    """The hook metadata service as a fresh API server sees it: on Airflow 3.0 and 3.1 it reads the
    hooks' form widgets under its own wtforms stand-ins and drops real wtforms fields, so widgets an
    earlier test made ProvidersManager load must go (and the service's own cache with them)."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from airflow.providers_manager import ProvidersManager

    def reset() -> None:
        ProvidersManager()._cleanup()
        HookMetaService.hook_meta_data.cache_clear()

    reset()
    yield HookMetaService
    reset()


def test_the_connection_form_shows_the_confirma_fields(fresh_hook_metadata: Any):
    """What the UI's connection form is built from (Airflow's hook metadata service): the extra
    fields of ``conn-fields`` with their labels and defaults, and the relabelled standard fields,
    whether this Airflow reads the provider metadata (3.2+) or the hook's form methods (3.0, 3.1)."""
    HookMetaService = fresh_hook_metadata
    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "confirma"]
    fields = meta.extra_fields or {}
    assert list(fields) == list(METADATA["conn-fields"])
    for name, spec in METADATA["conn-fields"].items():
        assert fields[name]["schema"]["title"] == spec["label"], name
        assert fields[name]["description"] == spec["description"], name
    assert fields["environment"]["schema"]["enum"] == ["staging", "production"]
    assert fields["environment"]["value"] == "staging"
    assert fields["partner_provisioning_token"]["schema"]["format"] == "password"
    standard = meta.standard_fields
    assert standard is not None
    assert standard.password is not None and standard.password.title == "API key"
    assert standard.host is not None and standard.host.title == "Base URL (optional)"
    hidden = [getattr(standard, name) for name in ("url_schema", "login")]
    assert all(field is not None and field.hidden for field in hidden)
    # The port is shown (Airflow 3.3.2's Test refuses a stored connection without one: docs/connection.md).
    assert standard.port is not None and standard.port.title == "Port" and not standard.port.hidden


def test_the_hook_form_methods_build_the_metadata_fields():
    """On Airflow 3.0 and 3.1 the form comes from these; they derive from the same ``conn-fields``."""
    widgets = ConfirmaHook.get_connection_form_widgets()
    assert list(widgets) == list(METADATA["conn-fields"])
    assert [w.args[0] for w in widgets.values()] == [s["label"] for s in METADATA["conn-fields"].values()]
    assert widgets["environment"].kwargs["default"] == "staging"
    assert widgets["timeout"].kwargs["default"] == "30"  # a number field: text, so 2.5 s is allowed
    assert widgets["partner_provisioning_token"].field_class.__name__ == "PasswordField"
    behaviour = ConfirmaHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == METADATA["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == METADATA["ui-field-behaviour"]["relabeling"]


# -- without a task state store (Airflow < 3.3) ------------------------------------------------------
def test_a_deferred_wait_carries_its_start_in_the_deferral_not_the_store():
    wait = sensor(deferrable=True)
    wait._started_at = started = time.time() - 100
    with pytest.raises(TaskDeferred) as deferred:
        wait._defer()
    assert deferred.value.kwargs == {"started_at": started}
    assert isinstance(deferred.value.trigger, ConfirmaPaymentSyncTrigger)


def test_silent_fail_goes_on_after_an_error_event_without_a_task_state_store():
    """A trigger's error under ``silent_fail``: a pause, then the trigger again with the rest of the
    timeout, though the context has no task state store (before 3.3 it never has one)."""
    started = time.time() - 100
    wait = sensor(deferrable=True, silent_fail=True)
    error = {"status": "error", "message": "Confirma payment sync status poll failed: HTTP 503"}
    with pytest.raises(TaskDeferred) as paused:
        wait.resume_execution("execute_complete", {"started_at": started, "event": error}, {})
    assert paused.value.method_name == "resume_wait"
    assert paused.value.kwargs == {"started_at": started}
    assert 490 < paused.value.timeout.total_seconds() <= 500

    resumed = sensor(deferrable=True, silent_fail=True)  # a new process resumes it
    with pytest.raises(TaskDeferred) as again:
        resumed.resume_execution("resume_wait", {"started_at": started, "event": None}, {})
    assert again.value.method_name == "execute_complete"
    assert isinstance(again.value.trigger, ConfirmaPaymentSyncTrigger)
    assert abs(again.value.trigger.end_time - (started + 600)) < 1e-6
    assert 490 < again.value.timeout.total_seconds() <= 500


def test_a_resume_that_knows_no_start_ends_as_timed_out_and_says_why():
    """The README's row: a pause resumed with neither the deferral's kwargs nor a start in the event
    nor a task state store cannot know how much of the timeout is left."""
    wait = sensor(deferrable=True, silent_fail=True)
    with pytest.raises(AirflowSensorTimeout, match=r"Sensor has timed out; timeout is .*s \(wait start unknown\)"):
        wait.resume_execution("resume_wait", {"event": None}, {})


async def test_the_event_carries_the_start_for_runners_that_replace_the_deferral_kwargs():
    """``dag.test()`` resumes with ``{"event": payload}`` only (a triggerer merges the deferral's
    kwargs): the trigger's event has the start, so ``silent_fail`` still pauses and goes on."""
    started = time.time() - 100
    trigger = sensor(deferrable=True, silent_fail=True, confirma_conn_id="confirma_nope")
    trigger._started_at = started
    event = None
    async for fired in trigger.build_trigger().run():  # an unknown connection: an error event
        event = fired.payload
    assert event is not None and event["status"] == "error" and event["started_at"] == started
    wait = sensor(deferrable=True, silent_fail=True)
    with pytest.raises(TaskDeferred) as paused:
        wait.resume_execution("execute_complete", {"event": event}, {})
    assert paused.value.method_name == "resume_wait"
    assert paused.value.kwargs == {"started_at": started}
    assert 490 < paused.value.timeout.total_seconds() <= 500


def test_reschedule_mode_without_a_task_state_store_warns_that_errors_cannot_be_counted(caplog, capsys):
    class TaskInstance:
        try_number = 1

    wait = sensor(mode="reschedule", max_consecutive_errors=3)
    with responses.RequestsMock() as api, caplog.at_level(logging.WARNING):
        api.get(URL, status=503)
        assert wait.poke({"ti": TaskInstance()}) is False
    logged = caplog.text + capsys.readouterr().out  # stdlib logging (3.0) or structured logs (3.3)
    assert NO_STREAK_WARNING % 3 in logged
