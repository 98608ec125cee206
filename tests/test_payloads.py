"""The payload models: single-value checks, per-endpoint rules with JSON paths, and the old module."""

from __future__ import annotations

import copy
import warnings
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from airflow_provider_confirma.json_codec import decode_json, encode_json
from airflow_provider_confirma.payloads import (
    ClientRequest,
    InvoiceActionsRequest,
    LedgerRequest,
    PayloadValidationError,
    PaymentsRequest,
    SalesInvoiceRequest,
    ValidationIssue,
    check_amount,
    check_country,
    check_currency,
    check_email,
    check_iso_date,
    check_language,
    ensure_valid,
    format_issues,
    payload_issues,
    plain_decimal,
)

validate_payments_payload = partial(payload_issues, PaymentsRequest)
validate_ledger_payload = partial(payload_issues, LedgerRequest)
validate_invoice_payload = partial(payload_issues, SalesInvoiceRequest)
validate_invoice_action_payload = partial(payload_issues, InvoiceActionsRequest)
validate_client_payload = partial(payload_issues, ClientRequest)

PAYMENT = {
    "paymentIdentifier": "pay-0001",
    "invoiceNumber": "10001",
    "paymentDate": "2026-02-02",
    "bookingDate": None,
    "amount": Decimal("50.00"),
    "currency": "EUR",
    "targetIdentifier": "invoicenumber",
    "paymentReference": "RF18100013",
    "sourceName": "Example Buyer Oy",
}

LEDGER = {
    "ledgers": {
        "ledgerIdentifier": "lg-0001",
        "companyIdentifier": "7654321-0",
        "documentType": "ML",
        "documentName": "5001",
        "documentDate": "2026-01-31",
        "documentDescription": "January sales",
        "calculationMode": "GROSS",
        "ledgerRows": [
            {
                "bookingDate": "2026-01-31",
                "accountNumber": "1700",
                "vatPercentage": 0,
                "vatCode": "",
                "amount": Decimal("124.0"),
                "netAmount": Decimal("124.0"),
                "isVatRow": 0,
                "ledgerDimensions": [{"dimensionType": "COST_CENTER", "dimensionValue": "10"}],
            },
            {
                "bookingDate": "2026-01-31",
                "accountNumber": "3000",
                "vatPercentage": Decimal("25.5"),
                "vatCode": "20",
                "amount": Decimal("-124.0"),
                "netAmount": Decimal("-100.0"),
                "isVatRow": 0,
                "ledgerDimensions": [],
            },
        ],
    }
}

INVOICE = {
    "processing": {"paymentControlEnabled": True, "manualApprovalEnabled": False, "accountingInvoiceEnabled": False},
    "distribution": {"method": "EMAIL", "enabled": True},
    "invoice": {
        "header": {
            "number": 10001,
            "type": "INVOICE",
            "date": "2026-01-05",
            "dueDate": "2026-01-19",
            "currencyCode": "EUR",
            "languageCode": "FI",
        },
        "references": {"payment": "100013", "orderNumber": "PO-7"},
        "parties": {
            "sellerParty": {
                "businessId": "7654321-0",
                "name": "Example Seller Oy",
                "address": {"street": "Katu 1", "postalCode": "00100", "countryCode": "FI"},
                "contact": {"email": "ar@seller.example", "phone": "+358400000000"},
                "paymentDetails": {"iban": "FI0000000000000000", "bic": "XXXXFIHH"},
            },
            "buyerParty": {
                "entityType": "BUSINESS",
                "name": "Example Buyer Oy",
                "address": {"street": "Tie 2", "countryCode": "FI"},
                "contact": {"email": "ap@buyer.example"},
            },
        },
    },
}

ACTIONS = {
    "actions": [
        {"code": "COMMENT", "comment": "Called the customer", "data": {"invoiceNumber": 10001, "caseId": 555}},
        {
            "code": "DIRECTPAYMENT",
            "comment": "Paid to our account",
            "data": {
                "invoiceNumber": 10001,
                "caseId": 555,
                "paymentMethod": "Bank transfer",
                "amount": Decimal("50.00"),
                "currency": "EUR",
                "paymentDate": "2026-02-01",
                "reference": "REF-1",
                "outstandingCapitalAmount": 0,
            },
        },
    ]
}


def fields(issues: list[ValidationIssue]) -> list[str]:
    return [issue.field for issue in issues]


# -- single values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.30", Decimal("12.30")), (" 7 ", Decimal("7")), (5, Decimal("5")), (Decimal("-0.01"), Decimal("-0.01"))],
)
def test_check_amount_accepts_exact_inputs(value, expected):
    assert check_amount(value) == expected
    assert isinstance(check_amount(value), Decimal)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (12.3, "float"),
        (True, "boolean"),
        ("12.345", "3 decimal places"),
        (Decimal("1.005"), "3 decimal places"),
        ("NaN", "not a decimal number"),
        ("1e3", "not a decimal number"),
        ("", "not a decimal number"),
        (Decimal("Infinity"), "finite"),
        (Decimal("NaN"), "finite"),
        ([1], "list"),
    ],
)
def test_check_amount_rejects_with_a_clear_message(value, message):
    with pytest.raises(ValueError, match=message):
        check_amount(value)


def test_check_iso_date():
    assert check_iso_date("2026-01-31") == date(2026, 1, 31)
    assert check_iso_date(date(2026, 1, 31)) == date(2026, 1, 31)
    with pytest.raises(ValueError, match="not a valid calendar date"):
        check_iso_date("2026-02-30")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        check_iso_date("31.01.2026")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        check_iso_date("2026-01-31T00:00:00Z")
    with pytest.raises(ValueError, match="datetime"):
        check_iso_date(datetime(2026, 1, 31))


def test_check_currency():
    assert check_currency("SEK") == "SEK"
    with pytest.raises(ValueError, match="upper case"):
        check_currency("eur")
    with pytest.raises(ValueError, match="not an ISO 4217"):
        check_currency("EUX")
    with pytest.raises(ValueError, match="not an ISO 4217"):
        check_currency("EURO")
    with pytest.raises(ValueError, match="as text"):
        check_currency(978)


def test_check_email():
    assert check_email("billing@example.fi") == "billing@example.fi"
    with pytest.raises(ValueError, match="not a valid email"):
        check_email("billing@")


# -- payments --------------------------------------------------------------------------------------
def test_valid_payments_payload_has_no_issues():
    assert validate_payments_payload({"payments": [PAYMENT, {**PAYMENT, "paymentIdentifier": "pay-2"}]}) == []


def test_payment_issues_name_the_json_path():
    bad = [
        PAYMENT,
        {**PAYMENT, "amount": Decimal("1.001")},
        {**PAYMENT, "currency": "eur", "paymentDate": "2026-13-01"},
    ]
    issues = validate_payments_payload({"payments": bad})
    assert fields(issues) == ["payments[1].amount", "payments[2].paymentDate", "payments[2].currency"]
    assert "3 decimal places" in issues[0].message


def test_payment_required_fields_and_types():
    payment = {k: v for k, v in PAYMENT.items() if k not in {"paymentIdentifier", "currency"}}
    payment["amount"] = "50.00"
    payment["sourceName"] = 7
    issues = validate_payments_payload({"payments": [payment, "nope"]})
    by_field = {issue.field: issue.message for issue in issues}
    assert by_field["payments[0].paymentIdentifier"] == "is required"
    assert by_field["payments[0].currency"] == "is required"
    assert "JSON number, not a string" in by_field["payments[0].amount"]
    assert by_field["payments[0].sourceName"] == "must be a string, not a number"
    assert by_field["payments[1]"] == "must be an object, not a string"


def test_payments_container_rules():
    assert fields(validate_payments_payload([PAYMENT])) == ["body"]
    assert validate_payments_payload({"payments": []})[0] == ValidationIssue("payments", "must not be empty")
    assert validate_payments_payload({})[0] == ValidationIssue("payments", "is required")
    issues = validate_payments_payload({"payments": [{**PAYMENT, "paymentIdentifier": "  "}]})
    assert issues == [ValidationIssue("payments[0].paymentIdentifier", "must not be empty")]


def test_python_only_containers_are_named_as_such():
    """A tuple or a non-dict mapping is not JSON: the message names the Python type, not "a list"."""
    from types import MappingProxyType

    issues = validate_payments_payload({"payments": (PAYMENT,)})
    assert issues == [ValidationIssue("payments", "must be a list, not a Python tuple")]
    issues = validate_payments_payload({"payments": [MappingProxyType(PAYMENT)]})
    assert issues == [ValidationIssue("payments[0]", "must be an object, not a Python mappingproxy")]


def test_payment_float_amount_is_an_issue_not_a_crash():
    issues = validate_payments_payload({"payments": [{**PAYMENT, "amount": 0.1}]})
    assert fields(issues) == ["payments[0].amount"]
    assert "float" in issues[0].message


def test_amounts_parsed_from_wire_json_are_exact():
    body = decode_json(encode_json({"payments": [{**PAYMENT, "amount": Decimal("0.10")}]}))
    assert body["payments"][0]["amount"] == Decimal("0.10")
    assert validate_payments_payload(body) == []
    wire = decode_json(
        b'{"payments": [{"paymentIdentifier": "p", "invoiceNumber": "1", "paymentDate": "2026-01-01",'
        b' "amount": 10.005, "currency": "EUR"}]}'
    )
    assert fields(validate_payments_payload(wire)) == ["payments[0].amount"]


# -- ledger ----------------------------------------------------------------------------------------
def test_valid_ledger_payload_has_no_issues():
    assert validate_ledger_payload(LEDGER) == []


def test_ledger_issues():
    body = copy.deepcopy(LEDGER)
    ledger = body["ledgers"]
    del ledger["ledgerIdentifier"]
    ledger["documentDescription"] = "x" * 211
    ledger["ledgerRows"][0]["amount"] = Decimal("1.234")
    ledger["ledgerRows"][1]["isVatRow"] = 2
    ledger["ledgerRows"][1]["ledgerDimensions"] = [{"dimensionType": "COST_CENTER"}]
    by_field = {i.field: i.message for i in validate_ledger_payload(body)}
    assert set(by_field) == {
        "ledgers.ledgerIdentifier",
        "ledgers.documentDescription",
        "ledgers.ledgerRows[0].amount",
        "ledgers.ledgerRows[1].isVatRow",
        "ledgers.ledgerRows[1].ledgerDimensions[0].dimensionValue",
    }
    assert "211 characters" in by_field["ledgers.documentDescription"]


def test_ledger_must_be_one_object():
    issues = validate_ledger_payload({"ledgers": [LEDGER["ledgers"]]})
    assert fields(issues) == ["ledgers"]
    assert "one ledger document per request" in issues[0].message


# -- invoice and actions ---------------------------------------------------------------------------
def test_valid_invoice_payload_has_no_issues():
    assert validate_invoice_payload(INVOICE) == []


def test_invoice_issues():
    body = copy.deepcopy(INVOICE)
    header = body["invoice"]["header"]
    header["number"] = "10001"
    header["dueDate"] = "19.01.2026"
    del header["currencyCode"]
    body["processing"]["paymentControlEnabled"] = "yes"
    body["invoice"]["parties"]["buyerParty"]["address"]["countryCode"] = "FIN"
    body["invoice"]["parties"]["sellerParty"]["contact"]["email"] = "not-an-email"
    assert set(fields(validate_invoice_payload(body))) == {
        "processing.paymentControlEnabled",
        "invoice.header.number",
        "invoice.header.dueDate",
        "invoice.header.currencyCode",
        "invoice.parties.sellerParty.contact.email",
        "invoice.parties.buyerParty.address.countryCode",
    }


def test_valid_invoice_action_payload_has_no_issues():
    assert validate_invoice_action_payload(ACTIONS) == []


def test_invoice_action_code_specific_requirements():
    body = {
        "actions": [
            {"code": "DUEDATE", "data": {"invoiceNumber": 1, "caseId": 2}},
            {"code": "DIRECTPAYMENT", "data": {"invoiceNumber": 1, "caseId": 2, "amount": Decimal("1.5")}},
            {"code": "COMMENT", "data": {"invoiceNumber": True}},
        ]
    }
    assert fields(validate_invoice_action_payload(body)) == [
        "actions[0].data.dueDate",
        "actions[1].data.currency",
        "actions[1].data.paymentDate",
        "actions[2].data.invoiceNumber",
        "actions[2].data.caseId",
    ]


def test_client_payload():
    body = {
        "service": {"type": "LIFECYCLE", "partnerCode": "PARTNER1"},
        "client": {"name": "Example Client Oy", "businessCode": "7654321-0", "countryCode": "FI", "email": ""},
    }
    assert validate_client_payload(body) == []
    body["client"]["languageCode"] = "FIN"
    del body["service"]["partnerCode"]
    assert fields(validate_client_payload(body)) == ["service.partnerCode", "client.languageCode"]


# -- reporting -------------------------------------------------------------------------------------
def test_ensure_valid_raises_with_every_issue():
    ensure_valid("payments", [])
    issues = [ValidationIssue(f"payments[{i}].amount", "bad") for i in range(12)]
    with pytest.raises(PayloadValidationError, match=r"invalid payments payload: payments\[0\].amount: bad") as err:
        ensure_valid("payments", issues)
    assert err.value.issues == issues
    assert format_issues(issues).endswith("(+2 more)")


def test_more_than_ten_issues_are_counted_not_listed():
    bad = {"payments": [{**PAYMENT, "currency": "eur"} for _ in range(13)]}
    with pytest.raises(PayloadValidationError) as err:
        ensure_valid("payments", validate_payments_payload(bad))
    assert len(err.value.issues) == 13
    assert str(err.value).count("must be upper case") == 10
    assert str(err.value).endswith("(+3 more)")


# -- the models: paths, nulls, pass-through, exactness, size -------------------------------------
@pytest.mark.parametrize(
    ("body", "issue"),
    [
        ({"payments": [{**PAYMENT, "paymentDate": None}]}, ("payments[0].paymentDate", "is required (got null)")),
        ({"payments": None}, ("payments", "is required (got null)")),
        ({"payments": {"a": 1}}, ("payments", "must be a list, not an object")),
        ({"payments": [{**PAYMENT, "amount": True}]}, ("payments[0].amount", "amount must be a number, not a boolean")),
        ({"payments": [{**PAYMENT, "paymentDate": datetime(2026, 2, 2)}]}, ("payments[0].paymentDate", "datetime")),
        ({"payments": [{**PAYMENT, "currency": 978}]}, ("payments[0].currency", "as text, not int")),
        ("payments", ("body", "must be a JSON object (with a 'payments' list), not a string")),
    ],
)
def test_issue_paths_and_messages(body: Any, issue: tuple[str, str]) -> None:
    (found,) = validate_payments_payload(body)
    assert found.field == issue[0]
    assert issue[1] in found.message


def test_optional_fields_accept_null_and_dates_accept_date_objects():
    payment = {**PAYMENT, "bookingDate": None, "targetIdentifier": None, "paymentDate": date(2026, 2, 2)}
    assert validate_payments_payload({"payments": [payment]}) == []
    row = {**LEDGER["ledgers"]["ledgerRows"][0], "netAmount": None, "isVatRow": None, "ledgerDimensions": None}
    assert validate_ledger_payload({"ledgers": {**LEDGER["ledgers"], "ledgerRows": [row]}}) == []


def test_ledger_vat_row_flag_is_0_or_1_not_a_boolean():
    body = copy.deepcopy(LEDGER)
    body["ledgers"]["ledgerRows"][0]["isVatRow"] = True
    flag = ValidationIssue("ledgers.ledgerRows[0].isVatRow", "must be 0 or 1, got True")
    assert validate_ledger_payload(body) == [flag]
    body["ledgers"]["ledgerRows"][0]["isVatRow"] = 1
    assert validate_ledger_payload(body) == []


def test_country_language_and_email_rules():
    assert check_country("FI") == "FI"
    assert check_language("sv") == "sv"
    for check, value in ((check_country, "fi"), (check_country, "FIN"), (check_language, "FIN"), (check_email, "")):
        with pytest.raises(ValueError, match="is not a"):
            check(value)
    client = {"service": {"type": "T", "partnerCode": "P"}, "client": {"name": "N", "businessCode": "B"}}
    for email, ok in (("", True), ("a@b.fi", True), ("a@", False), (5, False)):
        issues = validate_client_payload({**client, "client": {**client["client"], "email": email}})
        assert (issues == []) is ok, issues


def test_required_objects_and_blank_text():
    assert validate_invoice_payload({"invoice": None}) == [ValidationIssue("invoice", "is required (got null)")]
    assert validate_invoice_payload({}) == [ValidationIssue("invoice", "is required")]
    assert validate_client_payload({"service": "x", "client": {"name": " ", "businessCode": "B"}}) == [
        ValidationIssue("service", "must be an object, not a string"),
        ValidationIssue("client.name", "must not be empty"),
    ]
    assert validate_invoice_action_payload({"actions": ["x"]}) == [
        ValidationIssue("actions[0]", "must be an object, not a string")
    ]


def test_undocumented_fields_pass_through_untouched():
    extra = {"futureField": {"anything": [1, "two", None]}, "amountNote": "text"}
    body = {"payments": [{**PAYMENT, **extra}], "batchNote": 7}
    assert validate_payments_payload(body) == []
    body = copy.deepcopy(INVOICE)
    body["invoice"]["rows"] = [{"whatever": 1.5}]  # the documented shape of rows is not captured: unchecked
    body["invoice"]["header"]["customField"] = True
    assert validate_invoice_payload(body) == []


def test_checking_changes_nothing_in_the_payload():
    amount = Decimal("0.10")
    body = {"payments": [{**PAYMENT, "amount": amount, "extra": {"z": 1, "a": 2}}]}
    before = copy.deepcopy(body)
    assert validate_payments_payload(body) == []
    assert body == before
    assert body["payments"][0]["amount"] is amount and str(amount) == "0.10"
    assert list(body["payments"][0]) == list(before["payments"][0])  # key order kept
    assert encode_json(body) == encode_json(before)


def test_one_malformed_record_among_ten_thousand_is_named_by_its_index():
    payments = [{**PAYMENT, "paymentIdentifier": f"pay-{i}", "amount": Decimal(i) / 100} for i in range(10_000)]
    assert validate_payments_payload({"payments": payments}) == []
    payments[7345] = {**payments[7345], "amount": Decimal("1.001")}
    (issue,) = validate_payments_payload({"payments": payments})
    assert issue.field == "payments[7345].amount"
    assert "3 decimal places" in issue.message


def test_plain_decimal_is_the_one_parser_of_amount_text():
    assert plain_decimal(" -12.30 ") == Decimal("-12.30") and str(plain_decimal("12.30")) == "12.30"
    for text in ("1e3", "NaN", "Infinity", "1,5", "1.", ".5", "", "١٢"):
        assert plain_decimal(text) is None, text


# -- the old module --------------------------------------------------------------------------------
def test_the_old_module_still_works_and_warns():
    from airflow_provider_confirma import payloads, validation

    with pytest.warns(
        DeprecationWarning, match=r"validation\.check_amount is deprecated: use .*\.payloads\.check_amount"
    ):
        assert validation.check_amount("1.50") == Decimal("1.50")
    with pytest.warns(DeprecationWarning, match=r"payload_issues\(PaymentsRequest, body\)"):
        old = validation.validate_payments_payload
    assert old({"payments": [{**PAYMENT, "currency": "eur"}]}) == [
        ValidationIssue("payments[0].currency", "'eur' must be upper case (EUR)")
    ]
    with pytest.warns(DeprecationWarning, match="PayloadValidationError"):
        from airflow_provider_confirma.validation import PayloadValidationError as Old
    assert Old is payloads.PayloadValidationError
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            validation.no_such_name  # noqa: B018
    for name in validation.__all__:
        with pytest.warns(DeprecationWarning):
            getattr(validation, name)


def test_the_models_load_without_airflow():
    """The sandbox validates with them and starts without Airflow."""
    import subprocess
    import sys

    code = "import sys, airflow_provider_confirma.payloads; print('airflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"
