"""Poll safety of the sync triggers (issue 13, items 4, 14 and 15), against real loopback servers.

* A shared poll is keyed on what its request uses (base URL, TLS, timeout, a hash of the key, ...),
  resolved per wait: a wait started after a connection edit polls the new host with the new key,
  while a wait started before keeps its own poll; the key is in no poller key or task name.
* A wait polling on its own (``coalesce=False``) keeps no response through its sleep, only the few
  records its timeout event shows.
* A bad ``[confirma] max_concurrent_requests`` ends every wait with an ``error`` event naming the
  option and the value, in both modes, with no poller restarted back to back.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_confirma.endpoints import Endpoint
from airflow_provider_confirma.hooks import confirma as hook_module
from airflow_provider_confirma.hooks.connection import ConfirmaConnectionSettings
from airflow_provider_confirma.models import PaymentSyncRecord, StatusIndex, StatusSets, index_sync_records
from airflow_provider_confirma.sync_wait import SyncWait, timeout_message
from airflow_provider_confirma.triggers import base, coalescing
from airflow_provider_confirma.triggers.coalescing import active_pollers, subscribe
from airflow_provider_confirma.triggers.payment_sync import ConfirmaPaymentSyncTrigger
from tests.reliability.helpers import conn_json, policy, record
from tests.triggers.fake_status_api import first_event

OLD_KEY = "ck_live_SECRET_before_edit_5f2a91"
NEW_KEY = "ck_live_SECRET_after_edit_c03e77"
CONN_ID = "confirma_edited"
CONN_ENV = "AIRFLOW_CONN_CONFIRMA_EDITED"
MAX_CONCURRENT_ENV = "AIRFLOW__CONFIRMA__MAX_CONCURRENT_REQUESTS"


class KeyedServer:
    """A loopback status API: answers GET /accounting/payment with its records when the request
    carries one of ``keys`` (else 401), and records the key of every request it gets.

    The body is kept encoded, so no decoded record of this server lives in the test process.
    """

    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)
        self.seen: list[str | None] = []
        self.lock = threading.Lock()
        self.body = b'{"payments": []}'
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                key = self.headers.get("X-Api-Key")
                with server.lock:
                    server.seen.append(key)
                    accepted, body = key in server.keys, server.body
                if not self.path.startswith(Endpoint.PAYMENT_SYNC_STATUS.full_path):
                    status, body = 404, b'{"message": "not found"}'
                elif not accepted:
                    status, body = 401, b'{"message": "invalid API key"}'
                else:
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="keyed-server", daemon=True)

    def serve(self, *records: dict[str, Any]) -> None:
        body = json.dumps({"payments": list(records)}).encode()
        with self.lock:
            self.body = body

    def accept(self, *keys: str) -> None:
        with self.lock:
            self.keys = set(keys)

    @property
    def requests(self) -> int:
        with self.lock:
            return len(self.seen)

    def keys_seen(self) -> set[str | None]:
        with self.lock:
            return set(self.seen)

    def __enter__(self) -> KeyedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def servers() -> Iterator[tuple[KeyedServer, KeyedServer]]:
    with KeyedServer(OLD_KEY) as old, KeyedServer(NEW_KEY) as new:
        yield old, new


def trigger(**overrides: Any) -> ConfirmaPaymentSyncTrigger:
    kwargs: dict[str, Any] = {
        "confirma_conn_id": CONN_ID,
        "source_identifiers": ["p-1"],
        "poll_interval": 0.05,
        "end_time": time.time() + 20,
        "http_retry_policy": policy(1),
        "max_consecutive_errors": 3,
    }
    kwargs.update(overrides)
    return ConfirmaPaymentSyncTrigger(**kwargs)


async def until(predicate: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- item 4: a shared poll per resolved connection ------------------------------------------------------
async def test_a_wait_started_after_a_connection_edit_polls_the_new_host_with_the_new_key(
    servers: tuple[KeyedServer, KeyedServer], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    old, new = servers
    old.serve(record("p-1", 0, invoiceNumber="OLD-1"))
    new.serve(record("p-1", 0, invoiceNumber="NEW-1"))
    monkeypatch.setenv(CONN_ENV, conn_json(old.host, OLD_KEY))
    before = asyncio.create_task(first_event(trigger()))
    await until(lambda: old.requests >= 1, "the first wait's poll")

    monkeypatch.setenv(CONN_ENV, conn_json(new.host, NEW_KEY))  # the connection is edited
    after = asyncio.create_task(first_event(trigger()))
    await until(lambda: new.requests >= 1, "the second wait to poll the new host")

    pollers = active_pollers()
    assert len(pollers) == 2  # one poll per resolved connection
    names = [repr(key) for key in pollers] + [p._task.get_name() for p in pollers.values() if p._task]
    assert len(names) == 4
    for text in names:
        assert OLD_KEY not in text and NEW_KEY not in text
    assert sum(sha256(OLD_KEY) in name for name in names) == 2  # keyed by the key's hash
    assert sum(sha256(NEW_KEY) in name for name in names) == 2

    new.serve(record("p-1", 1, invoiceNumber="NEW-1"))
    done_after = await after
    assert done_after["status"] == "success"
    assert not before.done()  # the first wait judges its own host's answer, still pending

    polled = old.requests
    await until(lambda: old.requests > polled, "the first wait to keep polling its own host")
    old.serve(record("p-1", 1, invoiceNumber="OLD-1"))
    done_before = await before
    assert done_before["status"] == "success"

    assert old.keys_seen() == {OLD_KEY}
    assert new.keys_seen() == {NEW_KEY}
    assert OLD_KEY not in caplog.text and NEW_KEY not in caplog.text


async def test_after_a_key_rotation_new_waits_poll_with_the_new_key(
    servers: tuple[KeyedServer, KeyedServer], monkeypatch: pytest.MonkeyPatch
):
    api, _ = servers
    api.accept(OLD_KEY, NEW_KEY)  # both valid while the key is rotated
    api.serve(record("p-1", 0))
    monkeypatch.setenv(CONN_ENV, conn_json(api.host, OLD_KEY))
    before = asyncio.create_task(first_event(trigger()))
    await until(lambda: api.requests >= 1, "the first wait's poll")

    monkeypatch.setenv(CONN_ENV, conn_json(api.host, NEW_KEY))
    after = asyncio.create_task(first_event(trigger()))
    await until(lambda: NEW_KEY in api.keys_seen(), "a poll with the rotated key")
    api.accept(NEW_KEY)  # the old key is revoked

    done_before = await before  # the wait that began with the old key gets its own 401
    assert done_before["status"] == "error"
    assert "HTTP 401" in done_before["message"]
    api.serve(record("p-1", 1))
    done_after = await after  # the new wait never sees the old key's 401
    assert done_after["status"] == "success"


def settings(**changes: Any) -> ConfirmaConnectionSettings:
    fields: dict[str, Any] = {"conn_id": CONN_ID, "base_url": "https://api.example.test/api/v1/partner"}
    fields.update({"api_key": OLD_KEY, "timeout": 30.0, "verify": True, **changes})
    return ConfirmaConnectionSettings(**fields)


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://other.example.test/api/v1/partner"},
        {"api_key": NEW_KEY},
        {"verify": "/etc/ssl/private-ca.pem"},
        {"timeout": 5.0},
        {"provisioning_token": "pt_SECRET_token_1"},
        {"conn_id": "confirma_other"},
    ],
    ids=["base-url", "api-key", "ca-bundle", "timeout", "provisioning-token", "conn-id"],
)
def test_the_poll_key_is_what_the_request_uses_with_secrets_hashed(change: dict[str, Any]):
    wait = trigger()
    key = wait.poll_key(settings())
    assert key == trigger().poll_key(settings())  # same request, same poll
    assert key != wait.poll_key(settings(**change))
    text = repr(wait.poll_key(settings(**change)))
    assert OLD_KEY not in text and NEW_KEY not in text and "pt_SECRET_token_1" not in text


# -- item 14: what a wait keeps through its sleep ---------------------------------------------------------
BIG = 5_000


def big_response(pending: str = "p-0") -> list[dict[str, Any]]:
    return [record(f"p-{n}", 0 if f"p-{n}" == pending else 1) for n in range(BIG)]


def live_responses() -> list[str]:
    """Whole status responses still alive: an index, its records by identifier, or its record list."""
    gc.collect()
    found = []
    for obj in gc.get_objects():
        kind = type(obj)  # never isinstance: a lazy module proxy would import on the check
        if issubclass(kind, StatusIndex) and len(obj) >= BIG:
            found.append(repr(obj))
        elif kind in (dict, list) and len(obj) >= BIG:
            first = next(iter(obj.values() if isinstance(obj, dict) else obj))
            if isinstance(first, dict) and "sourceIdentifier" in first:
                found.append(f"{type(obj).__name__} of {len(obj)} records")
    return found


@pytest.mark.parametrize("identifiers", [["p-0"], None], ids=["explicit", "wait-for-all"])
async def test_an_own_poll_keeps_no_response_through_its_sleep(
    servers: tuple[KeyedServer, KeyedServer], monkeypatch: pytest.MonkeyPatch, identifiers: list[str] | None
):
    api, _ = servers
    api.serve(*big_response())
    monkeypatch.setenv(CONN_ENV, conn_json(api.host, OLD_KEY))
    during_sleep: list[list[str]] = []
    sleep, loop = asyncio.sleep, asyncio.get_running_loop()

    async def inspecting_sleep(seconds: float, *args: Any) -> Any:
        # the wait's sleep between polls (interval 0.2 s), on this test's loop (not a server thread's)
        if seconds >= 0.1 and asyncio.get_running_loop() is loop and not during_sleep:
            during_sleep.append(live_responses())
        return await sleep(seconds, *args)

    monkeypatch.setattr(asyncio, "sleep", inspecting_sleep)
    wait = trigger(
        coalesce=False, source_identifiers=identifiers, max_xcom_records=3, poll_interval=0.2, end_time=time.time() + 1
    )
    payload = await first_event(wait)

    assert during_sleep == [[]]  # nothing of the 5,000-record response survived into the sleep
    assert payload["status"] == "timeout"  # and the timeout event still tells the last poll
    summary = payload["summary"]
    if identifiers is None:
        assert "4999/5000 synced; waiting: p-0" in payload["message"]
        assert summary["counts"] == {"total": BIG, "synced": BIG - 1, "pending": 1, "failed": 0, "missing": 0}
    else:
        assert "0/1 synced; waiting: p-0" in payload["message"]
        assert summary["counts"] == {"total": 1, "synced": 0, "pending": 1, "failed": 0, "missing": 0}
    assert "records" not in summary  # an event carries counts, never records


def test_the_records_kept_for_the_timeout_event_tell_what_the_whole_response_told():
    """Trimmed to what it shows, a verdict gives the same timeout message and event summary."""
    records = [record(f"f-{n}", 7, description=f"broken {n}") for n in range(30)]
    records += [record(f"p-{n}", 0) for n in range(40)] + [record(f"s-{n}", 1) for n in range(40)]
    index = index_sync_records({"payments": records}, "payments", PaymentSyncRecord)
    ids = ("s-1", "f-3", "missing-1", "p-2", *(f"f-{n}" for n in range(12, 30)))
    for identifiers in (None, ids):
        wait = SyncWait(identifiers, StatusSets(), fail_on_sync_failure=False, max_xcom_records=5)
        full = wait.judge(index)
        kept = base.for_timeout(wait.judge(index))
        assert len(kept.progress.index) <= base.SHOWN_FAILURES < len(index)
        assert timeout_message("payment", 9, kept) == timeout_message("payment", 9, full)
        assert kept.event_summary(1.5) == full.event_summary(1.5)


async def test_coalesced_waiters_share_one_response_through_the_sleep(
    servers: tuple[KeyedServer, KeyedServer], monkeypatch: pytest.MonkeyPatch
):
    """Not a copy per waiter: all the waiters of a poll hold its one response (for their timeout)."""
    api, _ = servers
    api.serve(*big_response())
    monkeypatch.setenv(CONN_ENV, conn_json(api.host, OLD_KEY))
    waits = [asyncio.create_task(first_event(trigger(poll_interval=30))) for _ in range(5)]
    try:
        await until(lambda: api.requests >= 1, "the shared poll")
        (poller,) = active_pollers().values()
        await until(lambda: poller.polls == 1, "the shared poll to be judged")
        for _ in range(20):  # every waiter judges the round
            await asyncio.sleep(0)
        assert len(live_responses()) <= 2  # the one index (and its records by identifier)
    finally:
        for task in waits:
            task.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


# -- item 15: a bad [confirma] max_concurrent_requests ----------------------------------------------------
@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "own-poll"])
@pytest.mark.parametrize("raw", ["0", "many"])
async def test_a_bad_max_concurrent_requests_ends_every_wait_with_a_config_error(
    servers: tuple[KeyedServer, KeyedServer], monkeypatch: pytest.MonkeyPatch, raw: str, coalesce: bool
):
    api, _ = servers
    api.serve(record("p-1", 1))  # would succeed at once
    monkeypatch.setenv(CONN_ENV, conn_json(api.host, OLD_KEY))
    monkeypatch.setenv(MAX_CONCURRENT_ENV, raw)
    reads, started = [], []
    read_config = hook_module.max_concurrent_requests

    def counted_read() -> int:
        reads.append(1)
        return read_config()

    class CountedPoller(coalescing.SharedPoller):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(hook_module, "max_concurrent_requests", counted_read)
    monkeypatch.setattr(coalescing, "SharedPoller", CountedPoller)

    payloads = await asyncio.gather(*(first_event(trigger(coalesce=coalesce)) for _ in range(3)))
    await asyncio.sleep(0.2)  # four poll intervals after the waits ended: nothing polls on

    shown = "0" if raw == "0" else "'many'"
    for payload in payloads:
        assert payload["status"] == "error"
        assert "[confirma] max_concurrent_requests must be an integer >= 1, got " + shown in payload["message"]
        assert "configuration" in payload["message"]
        assert "HTTP" not in payload["message"]
    assert api.requests == 0
    assert active_pollers() == {}
    assert len(reads) <= 3  # one per waiter at most: no back-to-back retries
    assert len(started) <= (1 if coalesce else 0) * 3


async def test_a_replacement_poller_waits_out_the_interval_of_the_one_it_replaces():
    """A poller stopped under its waiters is replaced, but never polls back to back."""
    loop = asyncio.get_running_loop()
    polls: list[tuple[float, float]] = []

    async def fetch(session: Any) -> dict[str, Any]:
        began = loop.time()
        await asyncio.sleep(0)
        polls.append((began, loop.time()))
        return {}

    subscription = subscribe(("replaced",), fetch, 0.2)
    try:
        await subscription.next_round()
        first = subscription.poller
        assert first._task is not None
        first._task.cancel()  # e.g. torn down by someone else, or crashed
        await subscription.next_round()
        assert subscription.poller is not first
    finally:
        subscription.close()
    assert len(polls) == 2
    assert polls[1][0] - polls[0][1] >= 0.2 - 0.01


async def test_a_poller_whose_session_cannot_be_opened_publishes_the_error_and_keeps_its_pace(
    monkeypatch: pytest.MonkeyPatch,
):
    loop = asyncio.get_running_loop()
    attempts: list[float] = []

    async def broken_session() -> Any:
        attempts.append(loop.time())
        raise RuntimeError("no session today")

    async def fetch(session: Any) -> dict[str, Any]:
        raise AssertionError("no request without a session")

    monkeypatch.setattr(coalescing, "acquire_client_session", broken_session)
    subscription = subscribe(("no-session",), fetch, 0.1)
    try:
        for _ in range(3):
            current = await subscription.next_round()
            assert isinstance(current.error, RuntimeError)  # the cause, not "the poller stopped"
    finally:
        subscription.close()
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert min(gaps) >= 0.1 - 0.01


async def test_a_poller_that_crashes_hands_its_error_to_its_waiters_instead_of_restarting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    class CrashingPoller(coalescing.SharedPoller):
        async def _sleep(self) -> None:  # a bug in the poll loop itself, after its first poll
            if self.polls:
                raise RuntimeError("poll loop bug")
            await super()._sleep()

    polls = []

    async def fetch(session: Any) -> dict[str, Any]:
        polls.append(1)
        return {}

    monkeypatch.setattr(coalescing, "SharedPoller", CrashingPoller)
    subscription = subscribe(("crashing",), fetch, 0.05)
    try:
        assert (await subscription.next_round()).index == {}
        current = await subscription.next_round()  # asked for after the crash
    finally:
        subscription.close()
    assert isinstance(current.error, RuntimeError) and str(current.error) == "poll loop bug"
    assert polls == [1]  # no restarted poll in between
    assert "crashed" in caplog.text
