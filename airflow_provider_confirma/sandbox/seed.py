"""Deterministic seeded business data of the sandbox: invoices, cases, payments and settlements.

The same ``seed``, ``count`` and ``anchor`` date always give the same data. Field names follow
confirma-api.md; where the docs' examples are cut off the sandbox adds a few fields of its own
(marked ``sandbox:`` below and listed in docs/sandbox.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

AGENCY = "CashIn"
CREDITOR = "Sandbox Seller Oy"
#: seeded invoice numbers start far from the docs' example numbers (10001) that callers copy
FIRST_INVOICE_NUMBER = 900001
FIRST_CASE_ID = 555001
LATE_FEE = Decimal("5.00")
_BUYERS = (
    "Example Buyer Oy",
    "Pohjoinen Rakennus Oy",
    "Kahvila Aamu Tmi",
    "Nordic Parts AB",
    "Saimaan Satama Oy",
    "Lakeside Logistics Oy",
    "Tampereen Tekniikka Oy",
    "Fjord Foods AS",
)
CENT = Decimal("0.01")


def rf_reference(base: str) -> str:
    """An ISO 11649 ``RF`` creditor reference for a numeric ``base`` (check digits computed)."""
    digits = "".join(str(int(ch, 36)) for ch in base + "RF00")
    return f"RF{98 - int(digits) % 97:02d}{base}"


@dataclass
class InvoiceInfo:
    """One invoice the sandbox knows: seeded or POSTed."""

    number: int
    invoice_date: date
    due_date: date
    currency: str
    buyer: str
    creditor: str = CREDITOR
    #: sandbox: the docs do not show an invoice's total, so a POSTed invoice has ``None``
    amount: Decimal | None = None
    case_id: int | None = None
    method: str = "EMAIL"
    #: ``DELIVERED``, ``FAILED`` or (for a POSTed invoice until its delay passes) ``PENDING``
    distribution_status: str = "DELIVERED"
    distributed_at: str | None = None
    payment_date: date | None = None
    interest: Decimal = Decimal("0.00")
    seeded: bool = True
    #: a POSTed invoice: when its distribution settles (monotonic clock) and whether it then fails
    ready_at: float | None = None
    fails: bool = False
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def reference(self) -> str:
        return rf_reference(str(self.number))

    def distribution_record(self) -> dict[str, Any]:
        """sandbox: the docs cut the record list off; these fields are the sandbox's own."""
        return {
            "invoiceNumber": self.number,
            "invoiceDate": self.invoice_date.isoformat(),
            "dueDate": self.due_date.isoformat(),
            "distributionMethod": self.method,
            "distributionStatus": self.distribution_status,
            "distributedAt": self.distributed_at,
            "paymentControlStatus": "ENABLED" if self.case_id is not None else "DISABLED",
            "caseId": self.case_id,
        }

    def case(self, anchor: date) -> dict[str, Any]:
        """The ``GET /invoice/case`` body (``case.summary`` + ``case.balance``)."""
        paid = self.payment_date is not None and self.payment_date <= anchor
        overdue = not paid and self.due_date < anchor
        end = self.payment_date if paid and self.payment_date else anchor
        capital = Decimal("0.00") if paid or self.amount is None else self.amount
        return {
            "case": {
                "summary": {
                    "caseId": self.case_id,
                    "status": "CLOSED" if paid else "OPEN",
                    "stage": "SETTLED" if paid else ("REMINDER" if overdue else "PAYMENT_CONTROL"),
                    "createdAt": f"{self.invoice_date.isoformat()}T08:00:00.000Z",
                    "closedAt": self.payment_date.isoformat() if paid and self.payment_date else None,
                    "activeDays": max(0, (end - self.invoice_date).days),
                    "creditor": self.creditor,
                    "currency": self.currency,
                    "agency": AGENCY,
                },
                "balance": {
                    "capitalAmount": capital if self.amount is not None else None,
                    "interestAmount": Decimal("0.00") if paid else self.interest,
                    "costsAmount": LATE_FEE if overdue else Decimal("0.00"),
                },
            }
        }


@dataclass
class SeedData:
    invoices: dict[int, InvoiceInfo]
    #: ``GET /payments`` records, by payment date
    payments: list[dict[str, Any]]
    #: ``GET /settlements`` entries, by settlement date
    settlements: list[dict[str, Any]]


def build_seed_data(seed: int, count: int, anchor: date) -> SeedData:
    """``count`` invoices over the 8 weeks before ``anchor``; about two thirds of the due ones paid."""
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    invoices: dict[int, InvoiceInfo] = {}
    for i in range(count):
        number = FIRST_INVOICE_NUMBER + i
        invoice_date = anchor - timedelta(days=56 * (count - i) // count + rng.randint(0, 3))
        due_date = invoice_date + timedelta(days=14)
        amount = (Decimal(rng.randint(2_000, 90_000)) / 100).quantize(CENT)
        failed = rng.random() < 0.12 and i > 0  # the first one always has a case
        info = InvoiceInfo(
            number=number,
            invoice_date=invoice_date,
            due_date=due_date,
            currency="EUR",
            buyer=_BUYERS[i % len(_BUYERS)],
            amount=amount,
            case_id=None if failed else FIRST_CASE_ID + i,
            distribution_status="FAILED" if failed else "DELIVERED",
            distributed_at=None if failed else f"{invoice_date.isoformat()}T09:{rng.randint(0, 59):02d}:00.000Z",
        )
        if not failed and due_date < anchor and rng.random() < 0.7:
            paid_on = due_date + timedelta(days=rng.randint(-6, 9))
            if paid_on < anchor:
                info.payment_date = paid_on
                if paid_on > due_date:
                    info.interest = (amount * Decimal("0.08") * (paid_on - due_date).days / 365).quantize(CENT)
        elif not failed and due_date < anchor:
            info.interest = (amount * Decimal("0.08") * (anchor - due_date).days / 365).quantize(CENT)
        invoices[number] = info
    paid = sorted((i for i in invoices.values() if i.payment_date), key=lambda i: (i.payment_date, i.number))
    return SeedData(invoices=invoices, payments=_payments(paid), settlements=_settlements(paid, anchor))


def _payments(paid: list[InvoiceInfo]) -> list[dict[str, Any]]:
    out = []
    for info in paid:
        assert info.payment_date is not None
        stamp = f"{info.payment_date.isoformat()}T00:00:00Z"
        late = info.payment_date > info.due_date
        out.append(
            {
                "caseId": info.case_id,
                "invoiceNumber": str(info.number),
                "invoicePaymentReference": info.reference,
                "originalPaymentReference": info.reference,
                "accountName": info.buyer,
                "bookingDate": stamp,
                "paymentDate": stamp,
                # sandbox: the docs' example is cut after paymentDate
                "amount": (info.amount or Decimal(0)) + (info.interest + LATE_FEE if late else Decimal(0)),
                "currency": info.currency,
            }
        )
    return out


def _settlements(paid: list[InvoiceInfo], anchor: date) -> list[dict[str, Any]]:
    """Weekly settlement runs (Mondays) covering the payments of the week before."""
    runs: dict[date, list[InvoiceInfo]] = {}
    for info in paid:
        assert info.payment_date is not None
        run = info.payment_date + timedelta(days=7 - info.payment_date.weekday())
        if run <= anchor:
            runs.setdefault(run, []).append(info)
    out = []
    allocation_id = 1
    for seq, run in enumerate(sorted(runs), start=1):
        allocations: list[dict[str, Any]] = []
        run_total = Decimal("0.00")
        for info in runs[run]:
            parts = [("CAPITAL", info.amount or Decimal("0.00"))]
            if info.payment_date and info.payment_date > info.due_date:
                parts += [("INTEREST", info.interest), ("FEES", LATE_FEE)]
            events = [{"type": kind, "amount": amount} for kind, amount in parts]
            total = sum((amount for _, amount in parts), Decimal("0.00"))
            allocations.append(
                {
                    "allocationId": allocation_id,
                    "allocatedTotalAmount": total,
                    "allocationDate": run.isoformat(),
                    "currency": info.currency,
                    "originalInvoiceNumber": str(info.number),
                    "events": events,
                }
            )
            allocation_id += 1
            run_total += total
        out.append(
            {
                "settlementId": int(f"{run:%Y%m%d}{seq:04d}"),
                "settlementDate": run.isoformat(),
                "agency": AGENCY,
                "remittanceReference": rf_reference(f"{run:%Y%m%d}{seq:02d}"),
                "beneficiary": CREDITOR,
                "settlementAmount": run_total,
                "currency": "EUR",
                "allocations": allocations,
            }
        )
    return out
