"""The HTTP policy without a network: what is retried, how long it waits, how responses map to errors."""

from __future__ import annotations

import email.utils
import random
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from tenacity import RetryCallState, Retrying

from airflow_provider_confirma.exceptions import (
    ConfirmaAPIError,
    ConfirmaAuthError,
    ConfirmaClientError,
    ConfirmaRateLimitError,
    ConfirmaResponseError,
    ConfirmaServerError,
    ConfirmaTransportError,
    PollerStopped,
)
from airflow_provider_confirma.hooks.http_policy import (
    RetryPolicy,
    clean_params,
    describe_error,
    interpret_response,
    is_retryable,
    is_transient,
    parse_retry_after,
)

PATH = "/accounting/payment"


def server_error(retry_after: float | None = None) -> ConfirmaServerError:
    err = ConfirmaServerError("GET", PATH, 503, "busy")
    err.retry_after = retry_after
    return err


def failed_state(exc: BaseException, attempt: int, elapsed: float = 0.0) -> RetryCallState:
    """A tenacity call state as the retry loop sees it after ``attempt`` failed ``elapsed`` s in."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    state.start_time = state.outcome_timestamp - elapsed  # type: ignore[operator]
    return state


# -- which failures are retried --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "exc", "expected"),
    [
        ("GET", ConfirmaTransportError("GET", PATH, "connect"), True),
        ("GET", ConfirmaTransportError("GET", PATH, "timeout"), True),
        ("GET", ConfirmaTransportError("GET", PATH, "reset"), True),
        ("GET", ConfirmaServerError("GET", PATH, 500), True),
        ("GET", ConfirmaServerError("GET", PATH, 503), True),
        ("GET", ConfirmaRateLimitError("GET", PATH, 429), True),
        ("GET", ConfirmaAuthError("GET", PATH, 401), False),
        ("GET", ConfirmaClientError("GET", PATH, 404), False),
        ("GET", ConfirmaResponseError("GET", PATH, 200), False),
        ("GET", ValueError("not ours"), False),
        # A POST is retried only when it provably never reached the server.
        ("POST", ConfirmaTransportError("POST", PATH, "connect"), True),
        ("POST", ConfirmaTransportError("POST", PATH, "timeout"), False),
        ("POST", ConfirmaTransportError("POST", PATH, "reset"), False),
        ("POST", ConfirmaServerError("POST", PATH, 500), False),
        ("POST", ConfirmaServerError("POST", PATH, 503), False),
        ("POST", ConfirmaRateLimitError("POST", PATH, 429), False),
        ("POST", ConfirmaAuthError("POST", PATH, 401), False),
    ],
)
def test_is_retryable(method, exc, expected):
    assert is_retryable(method, exc) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConfirmaTransportError("GET", PATH, "reset"), True),
        (ConfirmaServerError("GET", PATH, 502), True),
        (ConfirmaRateLimitError("GET", PATH, 429), True),
        (ConfirmaAuthError("GET", PATH, 401), False),
        (ConfirmaResponseError("GET", PATH, 200), False),
        (ValueError("not ours"), False),
    ],
)
def test_a_poll_error_is_transient_when_a_get_would_be_retried(exc, expected):
    assert is_transient(exc) is expected


def test_the_http_policy_knows_nothing_of_the_trigger_layers_poller():
    # a stopped shared poller is the coalescing trigger's business (see tests/triggers/test_coalescing.py)
    assert is_transient(PollerStopped("the shared status poller stopped")) is False


def test_describe_error_names_the_type_and_the_message():
    assert describe_error(ValueError("bad body")) == "ValueError: bad body"
    assert describe_error(PollerStopped()) == "PollerStopped"
    assert describe_error(ConfirmaServerError("GET", PATH, 503)).startswith("ConfirmaServerError: ")


def run_policy(policy: RetryPolicy, method: str, failures: list[BaseException], result: object = "ok"):
    """Drive tenacity with the policy's kwargs; returns (attempts, sleeps, outcome or exception)."""
    attempts: list[int] = []
    sleeps: list[float] = []

    def call():
        attempts.append(1)
        if len(attempts) <= len(failures):
            raise failures[len(attempts) - 1]
        return result

    retrying = Retrying(sleep=sleeps.append, **policy.tenacity_kwargs(method))
    try:
        outcome: object = retrying(call)
    except Exception as exc:
        outcome = exc
    return len(attempts), sleeps, outcome


def test_get_retries_then_succeeds():
    attempts, sleeps, outcome = run_policy(RetryPolicy(), "GET", [server_error(), server_error()])
    assert (attempts, outcome) == (3, "ok")
    assert len(sleeps) == 2


def test_get_attempts_are_bounded_and_the_last_error_is_raised():
    policy = RetryPolicy(max_attempts=4)
    last = ConfirmaRateLimitError("GET", PATH, 429)
    attempts, sleeps, outcome = run_policy(policy, "GET", [server_error()] * 3 + [last] * 5)
    assert attempts == 4
    assert len(sleeps) == 3
    assert outcome is last


@pytest.mark.parametrize(
    "exc",
    [
        ConfirmaServerError("POST", PATH, 500),
        ConfirmaServerError("POST", PATH, 503),
        ConfirmaTransportError("POST", PATH, "timeout"),
        ConfirmaTransportError("POST", PATH, "reset"),
    ],
)
def test_post_is_tried_exactly_once_when_it_may_have_reached_the_server(exc):
    attempts, sleeps, outcome = run_policy(RetryPolicy(), "POST", [exc] * 3)
    assert (attempts, sleeps, outcome) == (1, [], exc)


def test_post_is_retried_after_a_connect_failure():
    refused = ConfirmaTransportError("POST", PATH, "connect")
    attempts, _, outcome = run_policy(RetryPolicy(), "POST", [refused, refused])
    assert (attempts, outcome) == (3, "ok")


def test_total_time_is_bounded_before_sleeping_past_it():
    # The server asks for 20 s; 50 s have passed of a 60 s budget: stop now, do not sleep.
    policy = RetryPolicy(max_total_seconds=60)
    kwargs = policy.tenacity_kwargs("GET")
    state = failed_state(server_error(retry_after=20), attempt=1, elapsed=50)
    state.upcoming_sleep = kwargs["wait"](state)
    assert state.upcoming_sleep == 20
    assert kwargs["stop"](state) is True
    state = failed_state(server_error(retry_after=5), attempt=1, elapsed=50)
    state.upcoming_sleep = kwargs["wait"](state)
    assert kwargs["stop"](state) is False
    state = failed_state(server_error(), attempt=policy.max_attempts)
    assert kwargs["stop"](state) is True


def test_time_spent_before_the_retry_loop_counts_against_the_budget():
    # The hook makes its first attempt before tenacity starts: 55 s of a 60 s budget are gone.
    kwargs = RetryPolicy(max_total_seconds=60).tenacity_kwargs("GET", elapsed=55)
    state = failed_state(server_error(retry_after=10), attempt=1, elapsed=0)
    state.upcoming_sleep = kwargs["wait"](state)
    assert kwargs["stop"](state) is True
    state = failed_state(server_error(retry_after=3), attempt=1, elapsed=0)
    state.upcoming_sleep = kwargs["wait"](state)
    assert kwargs["stop"](state) is False
    assert RetryPolicy(max_total_seconds=60).tenacity_kwargs("GET", elapsed=90)["stop"](state) is True


def test_total_time_bound_stops_a_real_loop():
    policy = RetryPolicy(max_attempts=10, max_total_seconds=1.0, retry_after_cap=30)
    attempts, sleeps, outcome = run_policy(policy, "GET", [server_error(retry_after=5)] * 10)
    assert (attempts, sleeps) == (1, [])
    assert isinstance(outcome, ConfirmaServerError)


# -- how long it waits -----------------------------------------------------------------------------
def test_backoff_is_exponential_with_bounded_jitter():
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=8.0, jitter=0.5)
    wait = policy.tenacity_kwargs("GET")["wait"]
    random.seed(7)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        samples = [wait(failed_state(server_error(), attempt)) for _ in range(50)]
        assert all(base <= s <= base + 0.5 for s in samples), (attempt, min(samples), max(samples))
        assert len(set(samples)) > 40  # jittered, not a fixed schedule
    assert wait(failed_state(server_error(), 10)) == 8.0  # capped


def test_retry_after_replaces_backoff_and_is_capped():
    policy = RetryPolicy(retry_after_cap=30, backoff_initial=0.5, jitter=0.5)
    wait = policy.tenacity_kwargs("GET")["wait"]
    assert wait(failed_state(server_error(retry_after=12), 1)) == 12
    assert wait(failed_state(server_error(retry_after=0), 4)) == 0
    assert wait(failed_state(server_error(retry_after=3600), 1)) == 30
    assert wait(failed_state(server_error(retry_after=-5), 1)) == 0


def test_retry_after_from_a_real_response_drives_the_wait():
    wait = RetryPolicy(retry_after_cap=30).tenacity_kwargs("GET")["wait"]
    with pytest.raises(ConfirmaRateLimitError) as info:
        interpret_response("GET", PATH, 429, "application/json", b"{}", retry_after="7")
    assert wait(failed_state(info.value, 1)) == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_total_seconds": 0},
        {"backoff_initial": -1},
        {"backoff_max": 0},
        {"retry_after_cap": 0},
    ],
)
def test_policy_bounds_are_validated(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


# -- Retry-After -----------------------------------------------------------------------------------
def test_parse_retry_after_seconds_and_http_dates():
    now = 1_800_000_000.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after(email.utils.formatdate(now + 45, usegmt=True), now=now) == pytest.approx(45)
    assert parse_retry_after(email.utils.formatdate(now - 45, usegmt=True), now=now) == 0.0
    for junk in (None, "", "soon", "-5", "1.5x"):
        assert parse_retry_after(junk) is None


# -- responses to results or errors ----------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/problem+json"],
)
def test_json_success(content_type):
    assert interpret_response("GET", PATH, 200, content_type, b'{"payments": []}') == {"payments": []}


@pytest.mark.parametrize(("status", "body"), [(204, b""), (200, b""), (200, b"  \n"), (204, b"ignored")])
def test_no_content_is_none(status, body):
    assert interpret_response("GET", PATH, status, None, body) is None


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("text/html", b"<html>proxy error</html>", "expected JSON, got text/html"),
        (None, b'{"a": 1}', "expected JSON, got no content type"),
        ("application/json", b'{"payments": [', "malformed JSON"),
    ],
)
def test_unusable_success_bodies(content_type, body, reason):
    with pytest.raises(ConfirmaResponseError) as info:
        interpret_response("GET", PATH, 200, content_type, body)
    assert reason in str(info.value)
    assert "GET /accounting/payment returned HTTP 200" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, ConfirmaAuthError),
        (400, ConfirmaClientError),
        (403, ConfirmaClientError),
        (404, ConfirmaClientError),
        (409, ConfirmaClientError),
        (422, ConfirmaClientError),
        (429, ConfirmaRateLimitError),
        (500, ConfirmaServerError),
        (502, ConfirmaServerError),
        (503, ConfirmaServerError),
        (302, ConfirmaResponseError),
    ],
)
def test_error_statuses_map_to_exceptions(status, error_type):
    with pytest.raises(ConfirmaAPIError) as info:
        interpret_response("POST", "/invoice", status, "application/json", b'{"error": "nope"}')
    assert type(info.value) is error_type
    assert info.value.status == status
    message = str(info.value)
    assert f"Confirma API POST /invoice returned HTTP {status}" in message
    assert 'body: {"error": "nope"}' in message


def test_rate_limit_is_a_client_error_and_carries_retry_after():
    with pytest.raises(ConfirmaClientError) as info:
        interpret_response("GET", PATH, 429, "application/json", b"", retry_after="2")
    assert isinstance(info.value, ConfirmaRateLimitError)
    assert info.value.retry_after == 2.0
    assert "rate limited" in str(info.value)


def test_body_excerpt_is_short_and_single_line():
    body = ("line one\n\n   line two " + "x" * 1000).encode()
    with pytest.raises(ConfirmaServerError) as info:
        interpret_response("GET", PATH, 500, "text/plain", body)
    excerpt = info.value.excerpt
    assert excerpt.startswith("line one line two xxx")
    assert excerpt.endswith("…")
    assert len(excerpt) == 201
    assert "\n" not in str(info.value)


def test_excerpt_never_carries_a_secret_echoed_by_the_server():
    key = "ck_live_ECHOED_7c1d0e"
    body = f'{{"error": "invalid key", "key": "{key}"}}'.encode()
    with pytest.raises(ConfirmaAuthError) as info:
        interpret_response("GET", PATH, 401, "application/json", body, redact=(key,))
    assert key not in str(info.value)
    assert key not in repr(info.value)
    assert "invalid key" in str(info.value)


def test_api_errors_survive_pickling():
    import pickle

    err = pickle.loads(pickle.dumps(ConfirmaServerError("GET", PATH, 503, "busy", "")))  # noqa: S301
    assert (type(err), err.status, str(err)) == (
        ConfirmaServerError,
        503,
        "Confirma API GET /accounting/payment returned HTTP 503: body: busy",
    )
    transport = pickle.loads(pickle.dumps(ConfirmaTransportError("POST", PATH, "reset", "x")))  # noqa: S301
    assert transport.kind == "reset"


# -- query parameters ------------------------------------------------------------------------------
def test_clean_params_pass_values_through_as_text():
    params = {
        "fromDate": date(2026, 2, 1),
        "toDate": "2026-02-28",
        "sinceTime": datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc),
        "limit": 50,
        "onlyFailed": True,
        "includeSynced": False,
        "minAmount": Decimal("12.30"),
        "someUndocumentedParam": "kept as is",
        "dropped": None,
    }
    assert clean_params(params) == {
        "fromDate": "2026-02-01",
        "toDate": "2026-02-28",
        "sinceTime": "2026-02-01T08:00:00+00:00",
        "limit": "50",
        "onlyFailed": "true",
        "includeSynced": "false",
        "minAmount": "12.30",
        "someUndocumentedParam": "kept as is",
    }
    assert clean_params(None) == {}


def test_clean_params_repeat_list_values():
    assert clean_params({"sourceIdentifier": ["pay-1", "pay-2"], "status": (0, 1)}) == {
        "sourceIdentifier": ["pay-1", "pay-2"],
        "status": ["0", "1"],
    }
