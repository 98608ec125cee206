"""The sandbox's state without HTTP: sync progression on a fake clock, failures, duplicates,
status-body caching, seeded data, runtime configuration and reset."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from airflow_provider_confirma.sandbox.config import ChaosConfig, SandboxConfig
from airflow_provider_confirma.sandbox.seed import build_seed_data, rf_reference
from airflow_provider_confirma.sandbox.state import SandboxState, today_utc

from .conftest import invoice, ledger, payment


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_state(**config) -> tuple[SandboxState, Clock]:
    clock = Clock()
    return SandboxState(SandboxConfig(**config), clock=clock), clock


def status(state: SandboxState, kind: str = "payments") -> dict[str, dict]:
    body = state.status_body(kind)
    return {} if body is None else {r["sourceIdentifier"]: r for r in json.loads(body)[kind]}


def test_nothing_stored_means_no_body():
    state, _ = make_state()
    assert state.status_body("payments") is None
    assert state.status_body("ledgers") is None


def test_payments_start_pending_and_sync_after_the_delay():
    state, clock = make_state(sync_delay=5)
    state.submit_payments([payment("p1"), payment("p2")])
    records = status(state)
    assert [r["status"] for r in records.values()] == [0, 0]
    assert records["p1"] == {
        "sourceIdentifier": "p1",
        "invoiceNumber": "10001",
        "paymentDate": "2026-02-02",
        "syncDate": None,
        "status": 0,
        "description": "Pending",
    }
    clock.now += 4.9
    assert status(state)["p1"]["status"] == 0
    clock.now += 0.1
    synced = status(state)["p1"]
    assert (synced["status"], synced["description"]) == (1, "Successfully synced")
    assert synced["syncDate"] == today_utc().isoformat()


def test_each_record_keeps_its_own_delay():
    state, clock = make_state(sync_delay=5)
    state.submit_payments([payment("early")])
    clock.now += 3
    state.submit_payments([payment("late")])
    clock.now += 2
    assert {k: r["status"] for k, r in status(state).items()} == {"early": 1, "late": 0}
    clock.now += 3
    assert {k: r["status"] for k, r in status(state).items()} == {"early": 1, "late": 1}


def test_pattern_failures_are_deterministic_with_configurable_code():
    state, clock = make_state(
        sync_delay=1, failure_pattern=r"^bad-", failure_status=7, failure_description="Account 1700 is locked"
    )
    state.submit_payments([payment("bad-1"), payment("good-1")])
    assert status(state)["bad-1"]["status"] == 0  # fails only once the delay passed
    clock.now += 1
    records = status(state)
    assert records["bad-1"] == {**records["bad-1"], "status": 7, "syncDate": None}
    assert records["bad-1"]["description"] == "Account 1700 is locked"
    assert records["good-1"]["status"] == 1


def test_failure_rate_is_seeded_per_identifier():
    idents = [f"pay-{i}" for i in range(400)]

    def failed(seed: int, order: list[str]) -> set[str]:
        state, _ = make_state(sync_delay=0, failure_rate=0.25, seed=seed)
        state.submit_payments([payment(i) for i in order])
        return {k for k, r in status(state).items() if r["status"] == 2}

    first = failed(1, idents)
    assert first == failed(1, list(reversed(idents)))  # same seed, any order: same failures
    assert first != failed(2, idents)
    assert 60 < len(first) < 140  # about a quarter


def test_default_failure_status_is_2():
    state, _ = make_state(sync_delay=0, failure_rate=1.0)
    state.submit_payments([payment("p1")])
    assert status(state)["p1"]["status"] == 2
    assert status(state)["p1"]["description"].startswith("Sync failed")


def test_ledgers_progress_like_payments():
    state, clock = make_state(sync_delay=2)
    state.submit_ledger(ledger("lg-1")["ledgers"])
    assert status(state, "ledgers")["lg-1"] == {
        "sourceIdentifier": "lg-1",
        "documentDate": "2026-01-31",
        "documentName": "5001",
        "documentStatus": "Approved",
        "syncDate": None,
        "status": 0,
        "description": "Pending",
    }
    clock.now += 2
    assert status(state, "ledgers")["lg-1"]["status"] == 1
    assert state.status_body("payments") is None


def test_duplicates_are_counted_and_never_stored_twice():
    state, _ = make_state(sync_delay=0)
    first = state.submit_payments([payment("p1"), payment("p2")])
    assert (first.accepted, first.duplicates) == (["p1", "p2"], [])
    again = state.submit_payments([payment("p2", amount="99.99"), payment("p3"), payment("p3")])
    assert again.accepted == ["p3"]
    assert again.duplicates == ["p2", "p3"]
    assert state.records()["payments"][1]["submitted"]["amount"] == Decimal("12.30")  # first one kept
    state.submit_ledger(ledger("lg")["ledgers"])
    state.submit_ledger(ledger("lg")["ledgers"])
    stats = state.stats()["duplicates"]
    assert (stats["total"], stats["payments"], stats["ledgers"]) == (3, 2, 1)
    assert stats["identifiers"]["payments"] == ["p2", "p3"]


def test_reject_policy_stores_nothing_from_a_batch_with_a_duplicate():
    state, _ = make_state(sync_delay=0, duplicate_policy="reject")
    state.submit_payments([payment("p1")])
    result = state.submit_payments([payment("p2"), payment("p1")])
    assert result.rejected and result.duplicates == ["p1"] and result.accepted == []
    assert list(status(state)) == ["p1"]


def test_status_body_is_cached_until_something_changes():
    state, clock = make_state(sync_delay=10)
    state.submit_payments([payment("p1")])
    first = state.status_body("payments")
    assert state.status_body("payments") is first
    clock.now += 10
    settled = state.status_body("payments")
    assert settled is not first and json.loads(settled)["payments"][0]["status"] == 1
    assert state.status_body("payments") is settled
    state.submit_payments([payment("p2")])
    assert len(json.loads(state.status_body("payments"))["payments"]) == 2


def test_settle_all_finishes_pending_records_now():
    state, _ = make_state(sync_delay=3600, failure_pattern="x")
    state.submit_payments([payment("a"), payment("x1")])
    state.submit_ledger(ledger("lg")["ledgers"])
    assert state.settle_all() == 3
    assert {k: r["status"] for k, r in status(state).items()} == {"a": 1, "x1": 2}
    assert state.stats()["pending"] == {"payments": 0, "ledgers": 0}


def test_configure_applies_to_later_submissions_and_reset_restores():
    state, clock = make_state(sync_delay=0)
    state.submit_payments([payment("before")])
    state.configure({"failure_pattern": ".", "sync_delay": 100})
    state.submit_payments([payment("after")])
    clock.now += 1
    assert {k: r["status"] for k, r in status(state).items()} == {"before": 1, "after": 0}
    with pytest.raises(ValueError, match="failure_rate must be between 0 and 1"):
        state.configure({"failure_rate": 2})
    with pytest.raises(ValueError, match="unknown sandbox config setting"):
        state.configure({"sync_dealy": 1})
    state.reset()
    assert state.config.sync_delay == 0 and state.config.failure_pattern is None
    assert state.status_body("payments") is None
    assert state.stats()["duplicates"]["total"] == 0


def test_posted_invoice_gets_a_case_and_a_distribution_record():
    state, clock = make_state(sync_delay=2, anchor_date=date(2026, 11, 25))
    info, duplicate, rejected = state.submit_invoice(invoice(10001))
    assert (duplicate, rejected) == (False, False) and info.case_id == 700001
    record = state.distribution({"invoiceNumber": "10001"})["distributions"][0]
    assert record["distributionStatus"] == "PENDING" and record["caseId"] == 700001
    clock.now += 2
    record = state.distribution({"invoiceNumber": "10001"})["distributions"][0]
    assert record["distributionStatus"] == "DELIVERED" and record["distributedAt"]
    assert state.case({"caseId": "700001"})["case"]["summary"]["caseId"] == 700001
    again, duplicate, _ = state.submit_invoice(invoice(10001, payment_control=False))
    assert duplicate and again is info
    assert state.stats()["duplicates"]["invoices"] == 1
    no_case, _, _ = state.submit_invoice(invoice(10002, payment_control=False))
    assert no_case.case_id is None


def test_renewed_keys_are_accepted_until_reset():
    state, _ = make_state(api_key="k1")
    assert state.key_ok("k1") and not state.key_ok("nope") and not state.key_ok(None)
    new = state.renew()
    assert new != "k1" and state.key_ok(new) and state.key_ok("k1")
    assert not state.key_ok(new, provisioning=True)
    state.reset()
    assert not state.key_ok(new)


# -- seeded data -----------------------------------------------------------------------------------
ANCHOR = date(2026, 11, 25)


def test_seed_data_is_deterministic():
    a = build_seed_data(3, 20, ANCHOR)
    b = build_seed_data(3, 20, ANCHOR)
    c = build_seed_data(4, 20, ANCHOR)
    assert a.payments == b.payments and a.settlements == b.settlements
    assert [i.amount for i in a.invoices.values()] == [i.amount for i in b.invoices.values()]
    assert [i.amount for i in a.invoices.values()] != [i.amount for i in c.invoices.values()]


def test_seed_data_is_consistent():
    data = build_seed_data(0, 40, ANCHOR)
    assert all(ANCHOR - timedelta(days=60) <= i.invoice_date < ANCHOR for i in data.invoices.values())
    assert data.payments and data.settlements
    for settlement in data.settlements:
        assert date.fromisoformat(settlement["settlementDate"]) <= ANCHOR
        allocations = settlement["allocations"]
        assert settlement["settlementAmount"] == sum(a["allocatedTotalAmount"] for a in allocations)
        for allocation in allocations:
            assert allocation["allocatedTotalAmount"] == sum(e["amount"] for e in allocation["events"])
            assert all(isinstance(e["amount"], Decimal) for e in allocation["events"])
    for record in data.payments:
        assert record["paymentDate"].endswith("T00:00:00Z")
        assert record["invoicePaymentReference"].startswith("RF")


def test_rf_reference_check_digits():
    reference = rf_reference("100013")
    rearranged = reference[4:] + reference[:4]
    assert int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def test_default_windows_of_settlements_and_distribution():
    state, _ = make_state(anchor_date=ANCHOR, seed_invoices=40)
    settlements = state.settlements({})["settlements"]
    assert settlements
    assert all(s["settlementDate"] >= (ANCHOR - timedelta(days=30)).isoformat() for s in settlements)
    everything = state.settlements({"fromDate": "2000-01-01", "toDate": "2100-01-01"})["settlements"]
    assert len(everything) == len(state.seed_settlements) > len(settlements)
    meta = state.distribution({})["metaData"]
    assert meta["filtersApplied"]["defaultLast30Days"] is True
    assert meta["totalCount"] == meta["successfulCount"] + meta["failedCount"]
    with pytest.raises(ValueError, match="fromInvDate must be a date"):
        state.distribution({"fromInvDate": "yesterday"})


def test_chaos_config_in_state_can_be_replaced():
    state, _ = make_state(chaos=ChaosConfig(error_503=1.0))
    assert state.decide_chaos("GET", "/accounting/payment").outcome == "error_503"
    state.set_chaos(None)
    assert state.decide_chaos("GET", "/accounting/payment").outcome is None
    state.reset()
    assert state.decide_chaos("GET", "/accounting/payment").outcome == "error_503"


def test_runtime_seed_change_regenerates_seed_data_and_keys_are_fixed():
    state, _ = make_state(seed=1, anchor_date=ANCHOR)
    state.submit_invoice(invoice(10001))
    before = [i.amount for i in state.invoices.values() if i.seeded]
    state.configure({"seed": 2})
    after = [i.amount for i in state.invoices.values() if i.seeded]
    assert before != after and 10001 in state.invoices  # posted invoices stay
    with pytest.raises(ValueError, match="api_key can only be set when the sandbox starts"):
        state.configure({"api_key": "other"})
