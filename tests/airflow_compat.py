"""Test-side imports that moved between the supported Airflow versions (3.0 to 3.3), and the marker
for tests of features a version lacks. The provider's own differences live in
``airflow_provider_confirma.compat``."""

from __future__ import annotations

import pytest

from airflow_provider_confirma.compat import AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import AirflowRescheduleException
    from airflow.sdk.serde import deserialize, serialize
else:  # Airflow 3.0, 3.1
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]
    from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]

#: Tests of what needs Airflow 3.3: the task state store, or Airflow internals of 3.3 that the test
#: drives directly (``dag.test()`` retries, DAG bundles). Below 3.3 the provider degrades as the
#: README's version table says, and those paths have their own tests.
needs_airflow_3_3 = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="needs Airflow 3.3 (task state store, 3.3 internals)"
)

__all__ = [
    "DAG_RUN_MODES",
    "AirflowRescheduleException",
    "deserialize",
    "needs_airflow_3_3",
    "only_on_airflow_3_3",
    "reschedule_dag_runs",
    "serialize",
]

#: A reschedule-mode sensor that fails (``AirflowFailException``) in ``dag.test()`` on Airflow < 3.3
#: is left up for retry and the run waits out ``retry_delay``: DAG runs in reschedule mode are 3.3's.
#: (The sensor raises the same exception there; ``tests/sensors`` checks it without ``dag.test()``.)
reschedule_dag_runs = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="dag.test() of a failing reschedule-mode sensor retries before Airflow 3.3"
)
#: The sensor modes of the DAG-run tests.
DAG_RUN_MODES = ("poke", pytest.param("reschedule", marks=reschedule_dag_runs), "deferrable")


def only_on_airflow_3_3(why: str) -> pytest.MarkDecorator:
    """Skip before Airflow 3.3, saying why (what the test asserts is 3.3's or not yet shown below)."""
    return pytest.mark.skipif(not AIRFLOW_V_3_3_PLUS, reason=f"Airflow < 3.3: {why}")
