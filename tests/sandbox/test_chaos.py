"""Chaos: deterministic draws, filters and scripts (engine), and what clients see over real HTTP."""

from __future__ import annotations

import socket
import time
from collections import Counter

import pytest
import requests

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.sandbox.config import ChaosConfig
from airflow_provider_confirma.sandbox.state import ChaosEngine

from .conftest import payment

STATUS = Endpoint.PAYMENT_SYNC_STATUS.path


def draws(config: ChaosConfig, n: int = 200, path: str = STATUS, method: str = "GET") -> list[str | None]:
    engine = ChaosEngine(config)
    return [engine.decide(method, path).outcome for _ in range(n)]


def test_same_seed_same_sequence_other_seed_other_sequence():
    config = ChaosConfig(error_500=0.1, error_503=0.1, rate_limit=0.1, reset=0.1, seed=42)
    first = draws(config)
    assert first == draws(config)
    assert first != draws(ChaosConfig(**{**config.to_dict(), "seed": 43}))
    counts = Counter(first)
    assert set(counts) == {None, "error_500", "error_503", "rate_limit", "reset"}
    assert 80 < counts[None] < 160  # about 60 %


def test_draws_per_path_do_not_depend_on_other_paths():
    config = ChaosConfig(error_503=0.5, seed=1)
    alone = draws(config, 50)
    engine = ChaosEngine(config)
    interleaved = []
    for _ in range(50):
        engine.decide("POST", Endpoint.SUBMIT_PAYMENTS.path)
        interleaved.append(engine.decide("GET", STATUS).outcome)
    assert interleaved == alone


def test_filters_by_method_and_path():
    only_get = ChaosConfig(error_500=1.0, methods=["get"])
    assert set(draws(only_get, 5, method="POST")) == {None}
    assert set(draws(only_get, 5)) == {"error_500"}
    for spec in (STATUS, Endpoint.PAYMENT_SYNC_STATUS.full_path, f"GET {STATUS}"):
        only_status = ChaosConfig(error_500=1.0, paths=[spec])
        assert set(draws(only_status, 3)) == {"error_500"}
        assert set(draws(only_status, 3, path=Endpoint.LEDGER_SYNC_STATUS.path)) == {None}
    assert set(draws(ChaosConfig(error_500=1.0, paths=[f"POST {STATUS}"]), 3)) == {None}


def test_script_runs_first_then_fractions():
    config = ChaosConfig(script=["503", "reset", "ok", "rate_limit"], error_500=1.0)
    assert draws(config, 6) == ["error_503", "reset", None, "rate_limit", "error_500", "error_500"]


def test_latency_is_drawn_for_a_fraction():
    engine = ChaosEngine(ChaosConfig(latency_ms=250, latency_rate=0.5, seed=3))
    latencies = [engine.decide("GET", STATUS).latency for _ in range(200)]
    assert set(latencies) == {0.0, 0.25}
    assert 60 < latencies.count(0.25) < 140


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"error_500": 0.6, "error_503": 0.6}, "sum must be <= 1"),
        ({"reset": -0.1}, "reset must be between 0 and 1"),
        ({"script": ["boom"]}, "script entry 'boom'"),
        ({"latency_ms": -1}, "latency_ms must be a number >= 0"),
        ({"flakiness": 0.1}, "unknown chaos setting"),
    ],
)
def test_bad_chaos_settings_name_the_setting(bad, message):
    with pytest.raises(ValueError, match=message):
        ChaosConfig.from_dict(bad)


# -- over HTTP -------------------------------------------------------------------------------------
def test_error_statuses_and_retry_after(confirma_sandbox, api):
    confirma_sandbox.set_chaos(script=["500", "502", "503", "429"], retry_after=7)
    seen = [api.call(Endpoint.PAYMENT_SYNC_STATUS) for _ in range(5)]
    assert [r.status_code for r in seen] == [500, 502, 503, 429, 204]
    assert seen[2].headers["Retry-After"] == "7" and seen[3].headers["Retry-After"] == "7"
    assert "Retry-After" not in seen[0].headers
    stats = confirma_sandbox.stats()
    assert stats["chaos"] == {"error_500": 1, "error_502": 1, "error_503": 1, "rate_limit": 1}
    assert stats["responses"][f"GET {Endpoint.PAYMENT_SYNC_STATUS.full_path}"] == {
        "500": 1,
        "502": 1,
        "503": 1,
        "429": 1,
        "204": 1,
    }


def test_chaos_comes_before_authentication(confirma_sandbox, api):
    confirma_sandbox.set_chaos(script=["503"])
    assert api.call(Endpoint.PAYMENT_SYNC_STATUS, key=None).status_code == 503
    assert api.call(Endpoint.PAYMENT_SYNC_STATUS, key=None).status_code == 401


def test_reset_before_the_request_is_handled_stores_nothing(confirma_sandbox, api):
    confirma_sandbox.set_chaos(script=["reset"])
    with pytest.raises(requests.ConnectionError):
        api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    assert confirma_sandbox.stats()["stored"]["payments"] == 0
    assert api.call(Endpoint.PAYMENT_SYNC_STATUS).status_code == 204


def test_reset_after_body_stores_the_post_but_never_answers(confirma_sandbox, api):
    confirma_sandbox.set_chaos(script=["reset_after_body"])
    with pytest.raises(requests.ConnectionError):
        api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    assert [r["sourceIdentifier"] for r in api.payment_status()] == ["p1"]
    stats = confirma_sandbox.stats()
    assert stats["responses"][f"POST {Endpoint.SUBMIT_PAYMENTS.full_path}"] == {"reset": 1}
    # the caller's blind retry would be a duplicate
    api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    assert confirma_sandbox.stats()["duplicates"]["payments"] == 1


def test_reset_is_a_tcp_reset_on_a_raw_socket(confirma_sandbox):
    confirma_sandbox.set_chaos(script=["reset"])
    with socket.create_connection((confirma_sandbox.host, confirma_sandbox.port), timeout=5) as sock:
        host = f"{confirma_sandbox.host}:{confirma_sandbox.port}"
        sock.sendall(f"GET {Endpoint.VALIDATE.full_path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):  # RST, not a clean close (recv would return b"")
            sock.recv(1024)


def test_malformed_json_and_wrong_content_type_still_handle_the_request(confirma_sandbox, api):
    confirma_sandbox.set_chaos(script=["malformed_json", "wrong_content_type"])
    spoiled = api.call(Endpoint.SUBMIT_PAYMENTS, {"payments": [payment("p1")]})
    assert spoiled.status_code == 200 and spoiled.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        spoiled.json()
    html = api.call(Endpoint.PAYMENT_SYNC_STATUS)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert [r["sourceIdentifier"] for r in api.payment_status()] == ["p1"]


def test_latency_is_added(confirma_sandbox, api):
    confirma_sandbox.set_chaos(latency_ms=300, paths=[Endpoint.VALIDATE.path])
    began = time.monotonic()
    assert api.call(Endpoint.VALIDATE).status_code == 200
    assert time.monotonic() - began >= 0.3
    assert confirma_sandbox.stats()["chaos"] == {"latency": 1}


def test_same_seed_gives_the_same_responses_over_http(confirma_sandbox, api):
    def run() -> list[int]:
        confirma_sandbox.set_chaos(error_500=0.2, error_503=0.2, rate_limit=0.2, seed=11)
        return [api.call(Endpoint.VALIDATE).status_code for _ in range(30)]

    first = run()
    assert first == run()
    assert {200, 500, 503, 429} <= set(first)


def test_chaos_never_touches_admin_endpoints(confirma_sandbox):
    confirma_sandbox.set_chaos(error_500=1.0)
    assert confirma_sandbox.stats()["total_requests"] == 0
    confirma_sandbox.clear_chaos()
    assert confirma_sandbox.admin.chaos()["error_500"] == 0.0
