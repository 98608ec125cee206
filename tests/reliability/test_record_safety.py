"""One bad answer must not stop the fleet (issue 13, items 8, 9 and 17): what a wait makes of
unreadable records, of identifiers that render to nothing, of old failures and of duplicates.

Every status response comes from a real loopback server (:class:`ShapeServer`); sensors poke it,
deferred waits run their trigger rebuilt from its serialized kwargs (as the triggerer gets it) and
resume in ``execute_complete``; the status operator and the submit read it through the hook.
Rendering is Airflow's own: ``render_template_fields`` with a context, and ``dag.test()`` for
XComs that were never pushed.

* Item 8: an unrelated record without a usable ``sourceIdentifier`` (``null``, missing, a float, a
  list, a ``null`` record) is skipped by waits on explicit identifiers (counted, named once);
  a wait for every record and the submit dedupe stay strict and name it.
* Item 9: only an argument never given means "every record"; a template or XCom rendering to
  ``None``, ``"None"``, ``""``, ``[]`` or blanks fails naming ``source_identifiers``, without retries.
* Item 17: a wait for every record ends when nothing is pending, whatever failed before; an
  identifier listed twice is judged by one order-independent rule.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import DAG, AirflowFailException, PokeReturnValue, TaskDeferred, task
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_confirma.arguments import is_template
from airflow_provider_confirma.exceptions import ConfirmaArgumentError, ConfirmaConfigError, ConfirmaResponseError
from airflow_provider_confirma.operators.accounting import (
    ConfirmaGetPaymentSyncStatusOperator,
    ConfirmaSubmitPaymentsOperator,
)
from airflow_provider_confirma.operators.base import has_templates
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.airflow_compat import deserialize, serialize
from tests.dag_helpers import logged_text, run_dag, write_dag_file
from tests.reliability.helpers import Reply, ShapeServer, conn_json, payment, policy, record, records_reply
from tests.triggers.fake_status_api import first_event

CONN = "confirma_records"

#: records of other payments that cannot be read, after one good record (positions 1 to 5)
JUNK: list[Any] = [
    {"sourceIdentifier": None, "status": 1},
    None,
    {"status": 0, "description": "no identifier at all"},
    {"sourceIdentifier": 4.5, "status": 1},
    {"sourceIdentifier": ["x"], "status": 2},
]
JUNK_SAMPLE = [
    "payments[1]: record has no sourceIdentifier",
    "payments[2]: record is null",
    "payments[3]: record has no sourceIdentifier",
    "payments[4]: sourceIdentifier is not a string: number",
    "payments[5]: sourceIdentifier is not a string: array",
]
ALL_STRICT = "payments[1]: record has no sourceIdentifier (+4 more unreadable records)"
UNREADABLE_WARNING = "skipped 5 unreadable record(s) of the status response"


def serve(shape_server: ShapeServer, confirma_conn_env: Any, scenario: str, *replies: Reply) -> None:
    confirma_conn_env(CONN, conn_json(shape_server.script(scenario, *replies), "records-key"))


def sensor(**overrides: Any) -> ConfirmaPaymentSyncSensor:
    kwargs: dict[str, Any] = {
        "task_id": "wait",
        "confirma_conn_id": CONN,
        "source_identifiers": ["r-1"],
        "poke_interval": 0.02,
        "timeout": 20,
        "http_retry_policy": policy(1),
    }
    kwargs.update(overrides)
    return ConfirmaPaymentSyncSensor(**kwargs)


def status_operator(**overrides: Any) -> ConfirmaGetPaymentSyncStatusOperator:
    kwargs: dict[str, Any] = {"task_id": "status", "confirma_conn_id": CONN, "http_retry_policy": policy(1)}
    kwargs.update(overrides)
    return ConfirmaGetPaymentSyncStatusOperator(**kwargs)


def context(**params: Any) -> dict[str, Any]:
    dag = DAG("confirma_record_safety", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
    return {"params": params, "dag": dag, "outlet_events": OutletEventAccessors(), "ti": None}


def rebuilt(trigger: ConfirmaPaymentSyncTrigger) -> ConfirmaPaymentSyncTrigger:
    """The trigger as the triggerer gets it: serialized, sent through serde, built from its kwargs."""
    classpath, kwargs = trigger.serialize()
    return import_string(classpath)(**deserialize(json.loads(json.dumps(serialize(kwargs)))))


def deferred_wait(waiting: ConfirmaPaymentSyncSensor) -> tuple[ConfirmaPaymentSyncTrigger, Any]:
    """Execute a deferrable sensor: its first check must defer; returns the rebuilt trigger."""
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})
    return rebuilt(deferred.value.trigger), deferred.value


def make_trigger(**overrides: Any) -> ConfirmaPaymentSyncTrigger:
    kwargs: dict[str, Any] = {
        "confirma_conn_id": CONN,
        "source_identifiers": ["r-1"],
        "poll_interval": 0.02,
        "end_time": time.time() + 20,
        "http_retry_policy": policy(1),
    }
    kwargs.update(overrides)
    return rebuilt(ConfirmaPaymentSyncTrigger(**kwargs))


# == item 8: unreadable unrelated records ============================================================
def test_poke_wait_on_identifiers_skips_unreadable_records_and_names_them_once(
    shape_server: ShapeServer, confirma_conn_env: Any, capsys: pytest.CaptureFixture[str]
):
    serve(
        shape_server,
        confirma_conn_env,
        "poke-junk",
        records_reply(record("r-1", status=0), *JUNK),
        records_reply(record("r-1", status=0), *JUNK),
        records_reply(record("r-1"), *JUNK),
    )
    summary = sensor().execute({})
    out = capsys.readouterr().out
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 1, "synced": 1, "pending": 0, "failed": 0, "missing": 0}
    assert summary["unreadable"] == {"count": 5, "sample": JUNK_SAMPLE}
    assert out.count(UNREADABLE_WARNING) == 1  # three polls saw them, one warning names them
    assert "payments[1]: record has no sourceIdentifier" in out
    assert "1/1 synced; waiting: -; failed: -; unreadable records skipped: 5" in out
    assert shape_server.requests["poke-junk"] == 3


def test_poke_wait_for_every_record_stays_strict_and_names_the_record(
    shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(shape_server, confirma_conn_env, "poke-junk-all", records_reply(record("r-1"), *JUNK))
    with pytest.raises(ConfirmaResponseError) as err:
        sensor(source_identifiers=None).poke({})
    assert str(err.value).endswith(f"unexpected response: {ALL_STRICT}")


def test_sample_of_unreadable_records_is_bounded(shape_server: ShapeServer, confirma_conn_env: Any):
    many = [{"sourceIdentifier": None, "status": 1}] * 500
    serve(shape_server, confirma_conn_env, "poke-many-junk", records_reply(record("r-1"), *many))
    done = sensor().poke({})
    assert isinstance(done, PokeReturnValue) and done.is_done
    assert done.xcom_value["unreadable"]["count"] == 500
    assert len(done.xcom_value["unreadable"]["sample"]) == 5


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "own-poll"])
async def test_deferred_wait_on_identifiers_skips_unreadable_records(
    shape_server: ShapeServer, confirma_conn_env: Any, coalesce: bool, capsys: pytest.CaptureFixture[str]
):
    scenario = f"deferred-junk-{coalesce}"
    pending, synced = records_reply(record("r-1", status=0), *JUNK), records_reply(record("r-1"), *JUNK)
    serve(shape_server, confirma_conn_env, scenario, pending, pending, pending, synced)
    waiting = sensor(deferrable=True, coalesce=coalesce)
    trigger, _ = deferred_wait(waiting)  # the worker's first check saw r-1 pending
    payload = await first_event(trigger)
    assert payload["status"] == "success", payload["message"]
    assert payload["summary"]["unreadable"] == {"count": 5, "sample": JUNK_SAMPLE}
    assert capsys.readouterr().out.count(UNREADABLE_WARNING) == 2  # once by the first check, once by the trigger
    summary = waiting.execute_complete({}, payload)
    assert summary["counts"]["synced"] == 1
    assert summary["unreadable"] == {"count": 5, "sample": JUNK_SAMPLE}  # read again on resume
    assert shape_server.requests[scenario] == 5  # 4 polls, and the resumed task's read for XCom


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "own-poll"])
async def test_deferred_wait_for_every_record_is_an_error_event_naming_the_record(
    shape_server: ShapeServer, confirma_conn_env: Any, coalesce: bool
):
    scenario = f"deferred-junk-all-{coalesce}"
    serve(shape_server, confirma_conn_env, scenario, records_reply(record("r-1", status=0)), records_reply(*JUNK))
    payload = await first_event(make_trigger(source_identifiers=None, coalesce=coalesce))
    assert payload["status"] == "error"
    first = "payments[0]: record has no sourceIdentifier (+4 more unreadable records)"
    assert payload["message"].endswith(f"unexpected response: {first}")


def test_status_operator_skips_unreadable_records_for_identifiers_and_names_them_without(
    shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(shape_server, confirma_conn_env, "operator-junk", records_reply(record("r-1"), *JUNK))
    result = status_operator(source_identifiers=["r-1"], fail_on_sync_failure=True).execute(context())
    assert result["summary"]["outcome"] == "success"
    assert result["summary"]["unreadable"] == {"count": 5, "sample": JUNK_SAMPLE}
    assert [r["sourceIdentifier"] for r in result["records"]] == ["r-1"]
    with pytest.raises(ConfirmaResponseError) as err:
        status_operator().execute(context())
    assert str(err.value).endswith(f"unexpected response: {ALL_STRICT}")


def test_submit_dedupe_stays_strict_and_sends_nothing(shape_server: ShapeServer, confirma_conn_env: Any):
    serve(shape_server, confirma_conn_env, "submit-junk", records_reply(record("other"), *JUNK))
    submit = ConfirmaSubmitPaymentsOperator(
        task_id="submit", confirma_conn_id=CONN, payments=[payment("r-1")], http_retry_policy=policy(1)
    )
    with pytest.raises(ConfirmaResponseError, match=r"payments\[1\]: record has no sourceIdentifier"):
        submit.execute(context())
    assert shape_server.requests["submit-junk"] == 1  # the status GET only: no POST


def test_integer_identifiers_are_read_as_their_text(shape_server: ShapeServer, confirma_conn_env: Any):
    """The documented choice: a JSON number identifier is its decimal text (``12345`` is ``"12345"``)."""
    serve(shape_server, confirma_conn_env, "int-ident", records_reply({"sourceIdentifier": 12345, "status": 1}))
    done = sensor(source_identifiers=["12345"]).poke({})
    assert isinstance(done, PokeReturnValue) and done.xcom_value["records"][0]["sourceIdentifier"] == "12345"


# == item 9: identifiers that render to nothing ======================================================
@pytest.mark.parametrize(
    ("rendered", "fragment"),
    [
        ("None", "rendered source_identifiers is the text 'None'"),
        ("null", "rendered source_identifiers is the text 'null'"),
        ("", "rendered source_identifiers: an identifier must not be empty or blank"),
        ("   ", "rendered source_identifiers: an identifier must not be empty or blank"),
        ([], "rendered source_identifiers is empty"),
        (["None"], "rendered source_identifiers[0] is the text 'None'"),
    ],
)
@pytest.mark.parametrize("build", [sensor, status_operator], ids=["sensor", "status-operator"])
def test_a_template_rendering_to_nothing_fails_naming_the_argument(
    build: Any, rendered: Any, fragment: str, shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(shape_server, confirma_conn_env, "rendered-nothing", records_reply(record("unrelated")))
    op = build(source_identifiers="{{ params.ids }}")
    ctx = context(ids=rendered)
    op.render_template_fields(ctx)
    with pytest.raises(ConfirmaArgumentError) as err:  # an AirflowFailException: no retries
        op.execute(ctx)
    assert fragment in str(err.value)
    assert isinstance(err.value, AirflowFailException)
    assert shape_server.requests["rendered-nothing"] == 0


@pytest.mark.parametrize("build", [sensor, status_operator], ids=["sensor", "status-operator"])
def test_static_none_text_fails_at_parse_time_and_lists_with_xcoms_are_accepted(build: Any):
    with pytest.raises(ConfirmaConfigError, match="source_identifiers is the text 'None'"):
        build(source_identifiers="None")
    with DAG("confirma_record_safety_parse", schedule=None):

        @task
        def submit() -> list[str]:
            return ["a"]

        @task(multiple_outputs=True)
        def both() -> dict[str, Any]:
            return {"ids": ["b"]}

        upstream, named = submit(), both()
        mixed = build(task_id="mixed", source_identifiers=[upstream, "pay-1"])
        keyed = build(task_id="keyed", source_identifiers=[named["ids"]])
    assert mixed.upstream_task_ids == {"submit"} and keyed.upstream_task_ids == {"both"}


def test_one_template_detector_sees_inside_lists_and_jinja_comments():
    with DAG("confirma_record_safety_detect", schedule=None):

        @task
        def submit() -> list[str]:
            return ["a"]

        output = submit()
    cases = [
        ("{# a comment #}pay-1", True),
        ([output, "pay-1"], True),
        ({"identifiers": [output]}, True),
        ((output["x"],), True),
        (["pay-1", "{{ ds }}"], True),
        (["pay-1"], False),
        (Path("/tmp/pay-1"), False),  # a path has .resolve(), but Airflow does not render it
        (None, False),
    ]
    for value, expected in cases:
        assert is_template(value) is expected, value
        assert has_templates(value) is expected, value


DAG_SOURCE = '''
"""An upstream task that pushes no XCom, waited on by a sensor and a status operator."""

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_confirma.operators.accounting import ConfirmaGetPaymentSyncStatusOperator
from airflow_provider_confirma.sensors.payment_sync import ConfirmaPaymentSyncSensor

RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=0)}

with DAG("confirma_record_safety_no_xcom", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

    @task
    def nothing():
        return None

    @task
    def ids():
        return ["r-1"]

    @task(multiple_outputs=True)
    def named():
        return {"more": ["r-2"]}

    pushed_nothing, some, keyed = nothing(), ids(), named()
    ConfirmaPaymentSyncSensor(
        task_id="wait_none", confirma_conn_id="confirma_nothing", source_identifiers=pushed_nothing,
        poke_interval=0.05, timeout=10, **RETRIES,
    )
    ConfirmaPaymentSyncSensor(
        task_id="wait_none_text", confirma_conn_id="confirma_nothing",
        source_identifiers="{{ ti.xcom_pull(task_ids='nothing') }}", poke_interval=0.05, timeout=10, **RETRIES,
    )
    ConfirmaGetPaymentSyncStatusOperator(
        task_id="status_none", confirma_conn_id="confirma_nothing", source_identifiers=pushed_nothing, **RETRIES
    )
    ConfirmaPaymentSyncSensor(
        task_id="wait_mixed", confirma_conn_id="confirma_something", source_identifiers=[some, keyed["more"], "r-3"],
        poke_interval=0.05, timeout=10, **RETRIES,
    )
'''


def test_an_xcom_that_was_never_pushed_fails_the_wait_without_retries(
    airflow_db: Any, shape_server: ShapeServer, capfd: pytest.CaptureFixture[str]
):
    unrelated = records_reply(record("unrelated"))  # "every record" would succeed on this
    ours = records_reply(record("r-1"), record("r-2"), record("r-3"), record("unrelated"))
    env = {
        "AIRFLOW_CONN_CONFIRMA_NOTHING": conn_json(shape_server.script("dag-nothing", unrelated), "records-key"),
        "AIRFLOW_CONN_CONFIRMA_SOMETHING": conn_json(shape_server.script("dag-something", ours), "records-key"),
    }
    path = write_dag_file(DAG_SOURCE, "confirma_record_safety_dags.py")
    result = run_dag(path, "confirma_record_safety_no_xcom", conn_env=env)
    states = result.task_states
    assert (states["wait_none"], states["wait_none_text"], states["status_none"]) == ("failed",) * 3
    assert all(result.tasks[t].try_number == 1 for t in ("wait_none", "wait_none_text", "status_none"))
    assert shape_server.requests["dag-nothing"] == 0  # nothing was asked on their behalf
    out = logged_text(capfd)
    assert "ConfirmaPaymentSyncSensor 'wait_none': rendered source_identifiers is None" in out
    assert "ConfirmaPaymentSyncSensor 'wait_none_text': rendered source_identifiers is the text 'None'" in out
    assert "ConfirmaGetPaymentSyncStatusOperator 'status_none': rendered source_identifiers is None" in out
    assert states["wait_mixed"] == "success"
    assert [r["sourceIdentifier"] for r in result.xcom("wait_mixed")["records"]] == ["r-1", "r-2", "r-3"]


# == item 17: old failures and duplicates ============================================================
OLD_FAILURE = record("last-year", status=2, description="Account closed", paymentDate="2025-01-15")


def test_poke_wait_for_every_record_ends_when_nothing_is_pending_despite_an_old_failure(
    shape_server: ShapeServer, confirma_conn_env: Any, capsys: pytest.CaptureFixture[str]
):
    serve(
        shape_server,
        confirma_conn_env,
        "poke-old-failure",
        records_reply(OLD_FAILURE, record("r-1", status=0)),
        records_reply(OLD_FAILURE, record("r-1")),
    )
    summary = sensor(source_identifiers=None).execute({})  # fail_on_sync_failure=True, the default
    assert summary["outcome"] == "success"
    assert summary["counts"] == {"total": 2, "synced": 1, "pending": 0, "failed": 1, "missing": 0}
    assert summary["failures"] == [{"sourceIdentifier": "last-year", "status": 2, "description": "Account closed"}]
    assert "1/2 synced; waiting: -; failed: last-year (Account closed)" in capsys.readouterr().out
    assert shape_server.requests["poke-old-failure"] == 2  # it waited for r-1, not failed on last-year


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "own-poll"])
async def test_deferred_wait_for_every_record_ends_when_nothing_is_pending_despite_an_old_failure(
    shape_server: ShapeServer, confirma_conn_env: Any, coalesce: bool
):
    scenario = f"deferred-old-failure-{coalesce}"
    pending = records_reply(OLD_FAILURE, record("r-1", status=0))
    serve(shape_server, confirma_conn_env, scenario, pending, pending, records_reply(OLD_FAILURE, record("r-1")))
    waiting = sensor(source_identifiers=None, deferrable=True, coalesce=coalesce)
    trigger, _ = deferred_wait(waiting)
    payload = await first_event(trigger)
    assert payload["status"] == "success", payload["message"]
    assert waiting.execute_complete({}, payload)["counts"]["failed"] == 1


def test_status_operator_for_every_record_reports_an_old_failure_without_failing(
    shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(shape_server, confirma_conn_env, "operator-old-failure", records_reply(OLD_FAILURE, record("r-1")))
    result = status_operator(fail_on_sync_failure=True).execute(context())
    assert result["summary"]["outcome"] == "success"
    assert result["summary"]["failures"][0]["sourceIdentifier"] == "last-year"


#: two records of one identifier, in both orders: (statuses, what the wait makes of it)
DUPLICATES = [
    ((0, 1), "pending"),  # still queued somewhere: not synced yet
    ((1, 7), "failed"),  # one copy failed: the payment failed
    ((0, 7), "pending"),
    ((1, 1), "synced"),
]
ORDERS = [(statuses, state, order) for statuses, state in DUPLICATES for order in ("listed", "reversed")]


def duplicate_reply(statuses: tuple[int, int], order: str) -> Reply:
    records = [record("r-1", status=s, description=f"copy with {s}") for s in statuses]
    return records_reply(*(records if order == "listed" else records[::-1]))


@pytest.mark.parametrize(("statuses", "state", "order"), ORDERS)
def test_duplicates_poke_verdict_does_not_depend_on_order(
    statuses: tuple[int, int], state: str, order: str, shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(
        shape_server,
        confirma_conn_env,
        f"poke-dup-{statuses[0]}-{statuses[1]}-{order}",
        duplicate_reply(statuses, order),
    )
    waiting = sensor()
    if state == "failed":
        with pytest.raises(AirflowFailException, match=r"r-1 \(status 7: copy with 7\)"):
            waiting.poke({})
    elif state == "pending":
        assert waiting.poke({}) is False
    else:
        done = waiting.poke({})
        assert isinstance(done, PokeReturnValue) and done.xcom_value["counts"]["synced"] == 1


@pytest.mark.parametrize(("statuses", "state", "order"), ORDERS)
async def test_duplicates_trigger_verdict_does_not_depend_on_order(
    statuses: tuple[int, int], state: str, order: str, shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(
        shape_server,
        confirma_conn_env,
        f"trigger-dup-{statuses[0]}-{statuses[1]}-{order}",
        duplicate_reply(statuses, order),
    )
    payload = await first_event(make_trigger(end_time=time.time() + 0.3))
    expected = {"pending": "timeout", "failed": "failed", "synced": "success"}[state]
    assert payload["status"] == expected, payload["message"]
    counts = payload["summary"]["counts"]
    assert counts[state] == 1 and counts["total"] == 1


@pytest.mark.parametrize(("statuses", "state", "order"), ORDERS)
def test_duplicates_status_operator_state_does_not_depend_on_order(
    statuses: tuple[int, int], state: str, order: str, shape_server: ShapeServer, confirma_conn_env: Any
):
    serve(
        shape_server,
        confirma_conn_env,
        f"operator-dup-{statuses[0]}-{statuses[1]}-{order}",
        duplicate_reply(statuses, order),
    )
    for identifiers in (["r-1"], None):
        result = status_operator(source_identifiers=identifiers, fail_on_sync_failure=False).execute(context())
        assert [(r["sourceIdentifier"], r["state"]) for r in result["records"]] == [("r-1", state)]
        assert result["summary"]["counts"][state] == 1
