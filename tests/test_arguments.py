"""The shared DAG-argument checks: identifiers, numbers, query params, timeouts, status codes, retry policy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from airflow_provider_confirma.arguments import (
    DEFAULT_PENDING_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    check_count,
    check_positive,
    check_query_params,
    check_status_sets,
    check_timeout,
    is_template,
    normalize_identifiers,
)
from airflow_provider_confirma.exceptions import ConfirmaConfigError
from airflow_provider_confirma.hooks.http_policy import RetryPolicy, retry_policy_from


# -- identifiers -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("pay-1", ("pay-1",)),
        (17, ("17",)),
        (["a", "b", "a"], ("a", "b")),
        (("a", 2), ("a", "2")),
        ({"b", "a"}, ("a", "b")),
        ({"identifiers": ["x", "y"], "submitted": 2}, ("x", "y")),
        ("['a', 'b']", ("a", "b")),  # a rendered Jinja template of a list
        ('{"identifiers": ["q"]}', ("q",)),
        ("[not a literal", ("[not a literal",)),
    ],
)
def test_normalize_identifiers_accepts_the_documented_shapes(value, expected):
    assert normalize_identifiers(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "source_identifiers is empty"),
        ({"identifiers": []}, "source_identifiers is empty"),
        ("[]", "source_identifiers is empty"),
        ({"ids": ["a"]}, "'identifiers' key"),
        ({"identifiers": None}, "'identifiers' must be a list"),
        ("   ", "must not be empty or blank"),
        (["a", ""], "source_identifiers[1]"),
        (["a", None], "source_identifiers[1]"),
        ([1.5], "source_identifiers[0]"),
        (True, "boolean"),
        (3.2, "got float"),
        (b"abc", "got bytes"),
    ],
)
def test_normalize_identifiers_rejects_bad_input_naming_the_argument(value, fragment):
    with pytest.raises(ConfirmaConfigError) as err:
        normalize_identifiers(value)
    assert fragment in str(err.value)


def test_check_helpers_name_the_argument():
    assert check_positive(0.2, "poke_interval") == 0.2
    for bad in (0, -1, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ConfirmaConfigError, match="poke_interval must be a positive number"):
            check_positive(bad, "poke_interval")
    assert check_query_params(None) == {}
    assert check_query_params({"fromDate": "2026-01-01"}) == {"fromDate": "2026-01-01"}
    with pytest.raises(ConfirmaConfigError, match="query_params must be a dict"):
        check_query_params(["fromDate"])
    with pytest.raises(ConfirmaConfigError, match="query_params keys"):
        check_query_params({1: "x"})


def test_check_count_and_timeout_name_the_argument():
    assert check_count(0, "max_xcom_records", 0) == 0
    for bad in (0, -1, 1.0, True, "3"):
        with pytest.raises(ConfirmaConfigError, match="max_consecutive_errors must be an integer >= 1"):
            check_count(bad, "max_consecutive_errors", 1)
    assert check_timeout(None) is None
    assert check_timeout(3) == 3.0
    for bad in (0, -2, float("inf"), True, "5"):
        with pytest.raises(ConfirmaConfigError, match="request_timeout must be a positive number of seconds"):
            check_timeout(bad, "request_timeout")


def test_templates_are_recognised_without_rendering():
    from airflow.providers.common.compat.sdk import DAG
    from airflow.sdk.bases.operator import BaseOperator

    assert is_template("{{ ti.xcom_pull('submit') }}")
    assert is_template("{% for x in y %}{{ x }}{% endfor %}")
    assert is_template("pay-1{# a Jinja comment renders away #}")  # a comment is a template too
    assert not is_template("pay-1")
    assert not is_template(Path("/tmp/payments.json"))  # has a resolve() but Airflow does not render it
    assert not is_template([{"paymentDate": "2026-02-01", "amount": Decimal("1.00")}])
    assert is_template(["{{ inside a list }}"])  # Airflow renders inside lists, dicts, tuples and sets
    assert is_template({"a": {"b": ("{% if x %}1{% endif %}",)}})
    with DAG("arguments_is_template", schedule=None):
        upstream = BaseOperator(task_id="up")
    assert is_template(upstream.output)  # an XComArg, resolved at run time
    assert is_template([{"identifiers": upstream.output}])


# -- status codes --------------------------------------------------------------------------------------
def test_status_sets_default_and_parse_user_input():
    assert check_status_sets() == (frozenset({1}), frozenset({0}))
    assert check_status_sets(None, None) == (DEFAULT_SUCCESS_STATUSES, DEFAULT_PENDING_STATUSES)
    assert check_status_sets(["1", 3], "0") == (frozenset({1, 3}), frozenset({0}))
    assert check_status_sets(2, {0, 5}) == (frozenset({2}), frozenset({0, 5}))
    success, pending = check_status_sets([1], ["0"])  # given as the defaults: the shared default sets
    assert success is DEFAULT_SUCCESS_STATUSES and pending is DEFAULT_PENDING_STATUSES


@pytest.mark.parametrize(
    ("success", "pending", "message"),
    [
        ([1], [0, 1], "overlap on [1]"),
        (None, [1], "overlap on [1]"),  # against the default success set
        ([], None, "success_statuses must not be empty"),
        (["x"], None, "success_statuses must hold integer status codes, got 'x'"),
        (None, [0.5], "pending_statuses must hold integer status codes, got 0.5"),
        ([True], None, "success_statuses must hold integer status codes, got True"),
    ],
)
def test_bad_status_sets_name_the_argument(success, pending, message):
    with pytest.raises(ConfirmaConfigError) as err:
        check_status_sets(success, pending)
    assert message in str(err.value)


# -- retry policy --------------------------------------------------------------------------------------
def test_retry_policy_from_itself_its_fields_or_none():
    policy = RetryPolicy(max_attempts=2)
    assert retry_policy_from(None) is None
    assert retry_policy_from(policy) is policy
    assert retry_policy_from({"max_attempts": 2, "backoff_max": 1.0}) == RetryPolicy(max_attempts=2, backoff_max=1.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", "http_retry_policy must be a RetryPolicy or a dict of its fields, got str"),
        ({"max_attempt": 2}, "http_retry_policy has unknown field(s) max_attempt; known: max_attempts"),
        ({"max_attempts": 0}, "http_retry_policy: max_attempts must be >= 1"),
    ],
)
def test_bad_retry_policies_name_the_argument(value, message):
    with pytest.raises(ConfirmaConfigError) as err:
        retry_policy_from(value, "http_retry_policy")
    assert message in str(err.value)
