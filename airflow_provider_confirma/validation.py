"""The documented payload rules of the Confirma POST endpoints, as one shared module.

Used by the sandbox (a 422 naming the field) and by the submit operators (before sending). No
Airflow import, so the sandbox stays fast to start.

Rules come from confirma-api.md: dates are ISO 8601 ``YYYY-MM-DD``; currencies ISO 4217 (3 upper
case letters from the code list); numbers have at most 2 decimals; country codes ISO 3166-1
alpha-2; language codes 2 letters; emails a W3C-style pattern; ``documentDescription`` at most 210
characters; ``ledgers`` is one object per request. The docs' required flags were not captured, so a
field is **required** here only when it is an identifier, or a date, amount or currency that every
documented example carries; every other documented field is type-checked when present (``null``
allowed), and undocumented extra fields pass through untouched.

Payload amounts are checked as they go on the wire: a ``Decimal`` or ``int`` (a JSON number; the
sandbox parses request JSON with ``parse_float=Decimal``). Text amounts, floats and booleans are
issues; convert user input with :func:`check_amount` first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "ISO_4217_CODES",
    "PayloadValidationError",
    "ValidationIssue",
    "check_amount",
    "check_country",
    "check_currency",
    "check_email",
    "check_iso_date",
    "check_language",
    "check_number",
    "ensure_valid",
    "format_issues",
    "validate_client_payload",
    "validate_invoice_action_payload",
    "validate_invoice_payload",
    "validate_ledger_payload",
    "validate_payments_payload",
]

#: Active ISO 4217 alphabetic codes (incl. funds and X-codes), as of 2025 (ZWG, XCG included;
#: ANG, CUC, SLL, ZWL kept while still in circulation).
ISO_4217_CODES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
    MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
    TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG
    XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 - a readable block of codes
)

MAX_DECIMALS = 2
DOCUMENT_DESCRIPTION_MAX = 210

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER_TEXT_RE = re.compile(r"[+-]?\d+(\.\d+)?")
_ALPHA2_RE = re.compile(r"[A-Z]{2}")
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2}")
# The HTML5 (W3C) "valid e-mail address" pattern.
_EMAIL_RE = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


@dataclass(frozen=True)
class ValidationIssue:
    """One broken rule: ``field`` is a JSON path such as ``payments[2].amount``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def format_issues(issues: Sequence[ValidationIssue], limit: int = 10) -> str:
    """``a: msg; b: msg (+3 more)`` for error messages."""
    shown = "; ".join(str(issue) for issue in issues[:limit])
    return shown if len(issues) <= limit else f"{shown} (+{len(issues) - limit} more)"


class PayloadValidationError(ValueError):
    """A payload broke documented rules; ``issues`` lists every one."""

    def __init__(self, what: str, issues: Sequence[ValidationIssue]) -> None:
        self.what = what
        self.issues = list(issues)
        super().__init__(f"invalid {what} payload: {format_issues(self.issues)}")


def ensure_valid(what: str, issues: Sequence[ValidationIssue]) -> None:
    """Raise :class:`PayloadValidationError` when ``issues`` is not empty."""
    if issues:
        raise PayloadValidationError(what, issues)


# -- single values ---------------------------------------------------------------------------------
def check_number(value: Any, what: str = "number") -> Decimal:
    """A finite number with at most 2 decimals, as ``Decimal`` (from ``Decimal``, ``int`` or text).

    Floats are refused (they cannot hold 0.10 exactly), and so are booleans and text that is not a
    plain decimal number (no exponents, no ``NaN``).
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean ({value!r})")
    if isinstance(value, float):
        raise ValueError(
            f"{what} is a float ({value!r}); floats cannot hold money exactly: use Decimal or text such as '12.30'"
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER_TEXT_RE.fullmatch(text):
            raise ValueError(f"{what} {value!r} is not a decimal number such as '12.30'")
        number = Decimal(text)
    elif isinstance(value, Decimal):
        number = value
    else:
        raise ValueError(f"{what} must be a Decimal, text or int, not {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValueError(f"{what} {number} has {-exponent} decimal places; at most {MAX_DECIMALS} are allowed")
    return number


def check_amount(value: Any) -> Decimal:
    """A money amount (``Decimal``/text/``int``; finite; at most 2 decimals) as ``Decimal``.

    >>> check_amount("12.30")
    Decimal('12.30')
    """
    return check_number(value, "amount")


def check_iso_date(value: Any) -> date:
    """An ISO 8601 calendar date: a ``date`` (not a ``datetime``) or text ``YYYY-MM-DD``."""
    if isinstance(value, datetime):
        raise ValueError(f"{value!r} is a datetime; a date (YYYY-MM-DD) is expected")
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a date as text YYYY-MM-DD, not {type(value).__name__}")
    if not _DATE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid calendar date") from None


def check_currency(value: Any) -> str:
    """An ISO 4217 currency code (``EUR``, ``SEK``, ...), upper case."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 4217 currency code as text, not {type(value).__name__}")
    if value.upper() in ISO_4217_CODES and value != value.upper():
        raise ValueError(f"{value!r} must be upper case ({value.upper()})")
    if value not in ISO_4217_CODES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, SEK, NOK, DKK)")
    return value


def check_country(value: Any) -> str:
    """An ISO 3166-1 alpha-2 country code: two upper-case letters (format only, no code list)."""
    if not isinstance(value, str) or not _ALPHA2_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. FI, SE)")
    return value


def check_language(value: Any) -> str:
    """A two-letter language code (the docs list FI, SV, NO, DK, EN)."""
    if not isinstance(value, str) or not _LANGUAGE_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a two-letter language code (e.g. FI, SV, EN)")
    return value


def check_email(value: Any) -> str:
    """An email address matching the W3C (HTML5) pattern."""
    if not isinstance(value, str) or not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid email address")
    return value


# -- structure walker ------------------------------------------------------------------------------
_MISSING = object()


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


class _Checker:
    """Collects issues while walking one payload."""

    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []

    def add(self, field: str, message: str) -> None:
        self.issues.append(ValidationIssue(field, message))

    def _get(self, parent: Mapping[str, Any], key: str, path: str, required: bool) -> Any:
        value = parent.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.add(path, "is required" if value is _MISSING else "is required (got null)")
            return _MISSING
        return value

    def obj(self, parent: Mapping[str, Any], key: str, base: str, required: bool = False) -> Mapping[str, Any] | None:
        path = _path(base, key)
        value = self._get(parent, key, path, required)
        if value is _MISSING:
            return None
        if not isinstance(value, Mapping):
            self.add(path, f"must be an object, not {_json_type(value)}")
            return None
        return value

    def items(self, parent: Mapping[str, Any], key: str, base: str, required: bool = False) -> list[Any]:
        """A list; when required it must not be empty. Returns ``[]`` when absent or wrong."""
        path = _path(base, key)
        value = self._get(parent, key, path, required)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.add(path, f"must be a list, not {_json_type(value)}")
            return []
        if required and not value:
            self.add(path, "must not be empty")
        return value

    def each_obj(self, values: list[Any], base: str) -> list[tuple[str, Mapping[str, Any]]]:
        out = []
        for index, item in enumerate(values):
            path = _path(base, index)
            if isinstance(item, Mapping):
                out.append((path, item))
            else:
                self.add(path, f"must be an object, not {_json_type(item)}")
        return out

    def string(
        self,
        parent: Mapping[str, Any],
        key: str,
        base: str,
        required: bool = False,
        max_length: int | None = None,
    ) -> str | None:
        """Text; a required one must not be blank."""
        path = _path(base, key)
        value = self._get(parent, key, path, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.add(path, f"must be a string, not {_json_type(value)}")
            return None
        if required and not value.strip():
            self.add(path, "must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.add(path, f"is {len(value)} characters long; at most {max_length} are allowed")
        return value

    def integer(self, parent: Mapping[str, Any], key: str, base: str, required: bool = False) -> int | None:
        path = _path(base, key)
        value = self._get(parent, key, path, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be an integer, not {_json_type(value)}")
            return None
        return value

    def boolean(self, parent: Mapping[str, Any], key: str, base: str) -> None:
        path = _path(base, key)
        value = self._get(parent, key, path, False)
        if value is not _MISSING and not isinstance(value, bool):
            self.add(path, f"must be true or false, not {_json_type(value)}")

    def flag01(self, parent: Mapping[str, Any], key: str, base: str) -> None:
        path = _path(base, key)
        value = self._get(parent, key, path, False)
        if value is not _MISSING and (isinstance(value, bool) or value not in (0, 1)):
            self.add(path, f"must be 0 or 1, got {value!r}")

    def number(self, parent: Mapping[str, Any], key: str, base: str, required: bool = False, what: str = "") -> None:
        """A JSON number (``Decimal``/``int``) with at most 2 decimals."""
        path = _path(base, key)
        value = self._get(parent, key, path, required)
        if value is _MISSING:
            return
        if isinstance(value, str):
            self.add(path, "must be a JSON number, not a string (convert text with Decimal or check_amount)")
            return
        try:
            check_number(value, what or key)
        except ValueError as err:
            self.add(path, str(err))

    def value(
        self, parent: Mapping[str, Any], key: str, base: str, check: Callable[[Any], Any], required: bool = False
    ) -> Any:
        path = _path(base, key)
        value = self._get(parent, key, path, required)
        if value is _MISSING:
            return None
        try:
            return check(value)
        except ValueError as err:
            self.add(path, str(err))
            return None

    def date(self, parent: Mapping[str, Any], key: str, base: str, required: bool = False) -> date | None:
        return self.value(parent, key, base, check_iso_date, required)

    def currency(self, parent: Mapping[str, Any], key: str, base: str, required: bool = False) -> None:
        self.value(parent, key, base, check_currency, required)

    def email(self, parent: Mapping[str, Any], key: str, base: str) -> None:
        """Optional; an empty string is allowed (the docs' examples carry empty ones)."""
        if parent.get(key) != "":
            self.value(parent, key, base, check_email)

    def root(self, body: Any, what: str) -> Mapping[str, Any] | None:
        if not isinstance(body, Mapping):
            self.add("body", f"must be a JSON object ({what}), not {_json_type(body)}")
            return None
        return body


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


# -- payloads --------------------------------------------------------------------------------------
def validate_payments_payload(body: Any) -> list[ValidationIssue]:
    """POST ``/accounting/payment``: ``{"payments": [...]}`` (a non-empty list).

    Required per payment: ``paymentIdentifier``, ``invoiceNumber`` (non-empty strings),
    ``paymentDate`` (date), ``amount`` (number, 2 decimals), ``currency`` (ISO 4217).
    Checked when present: ``bookingDate`` (date, nullable), ``targetIdentifier``,
    ``paymentReference``, ``sourceName`` (strings).
    """
    c = _Checker()
    root = c.root(body, "with a 'payments' list")
    if root is None:
        return c.issues
    for path, payment in c.each_obj(c.items(root, "payments", "", required=True), "payments"):
        c.string(payment, "paymentIdentifier", path, required=True)
        c.string(payment, "invoiceNumber", path, required=True)
        c.date(payment, "paymentDate", path, required=True)
        c.date(payment, "bookingDate", path)
        c.number(payment, "amount", path, required=True)
        c.currency(payment, "currency", path, required=True)
        for key in ("targetIdentifier", "paymentReference", "sourceName"):
            c.string(payment, key, path)
    return c.issues


def validate_ledger_payload(body: Any) -> list[ValidationIssue]:
    """POST ``/accounting/ledger``: ``{"ledgers": {...}}``, one ledger document as an object.

    Required: ``ledgerIdentifier``, ``companyIdentifier`` (non-empty strings), ``documentDate``
    (date), ``ledgerRows`` (non-empty list); per row ``accountNumber`` (string), ``bookingDate``
    (date), ``amount`` (number). Checked when present: ``documentType``, ``documentName``,
    ``calculationMode`` (strings), ``documentDescription`` (at most 210 characters); per row
    ``netAmount`` and ``vatPercentage`` (numbers, 2 decimals), ``isVatRow`` (0 or 1), the other
    documented row strings, and ``ledgerDimensions`` (list of ``{dimensionType, dimensionValue}``).
    """
    c = _Checker()
    root = c.root(body, "with a 'ledgers' object")
    if root is None:
        return c.issues
    if isinstance(root.get("ledgers"), list):
        c.add("ledgers", "must be an object: one ledger document per request, as in the documented example")
        return c.issues
    ledger = c.obj(root, "ledgers", "", required=True)
    if ledger is None:
        return c.issues
    base = "ledgers"
    c.string(ledger, "ledgerIdentifier", base, required=True)
    c.string(ledger, "companyIdentifier", base, required=True)
    c.date(ledger, "documentDate", base, required=True)
    for key in ("documentType", "documentName", "calculationMode"):
        c.string(ledger, key, base)
    c.string(ledger, "documentDescription", base, max_length=DOCUMENT_DESCRIPTION_MAX)
    for path, row in c.each_obj(c.items(ledger, "ledgerRows", base, required=True), f"{base}.ledgerRows"):
        c.string(row, "accountNumber", path, required=True)
        c.date(row, "bookingDate", path, required=True)
        c.number(row, "amount", path, required=True)
        c.number(row, "netAmount", path)
        c.number(row, "vatPercentage", path)
        c.flag01(row, "isVatRow", path)
        for key in (
            "vatAccountNumber",
            "vatType",
            "vatCode",
            "projectNumber",
            "transactionType",
            "transactionDescription",
        ):
            c.string(row, key, path)
        dims = c.items(row, "ledgerDimensions", path)
        for dim_path, dim in c.each_obj(dims, _path(path, "ledgerDimensions")):
            c.string(dim, "dimensionType", dim_path, required=True)
            c.string(dim, "dimensionValue", dim_path, required=True)
    return c.issues


def _check_address(c: _Checker, parent: Mapping[str, Any], base: str) -> None:
    address = c.obj(parent, "address", base)
    if address is None:
        return
    path = _path(base, "address")
    for key in ("street", "street2", "street3", "postalCode", "postalDistrict", "countryName"):
        c.string(address, key, path)
    c.value(address, "countryCode", path, check_country)


def _check_contact(c: _Checker, parent: Mapping[str, Any], base: str) -> None:
    contact = c.obj(parent, "contact", base)
    if contact is None:
        return
    path = _path(base, "contact")
    c.email(contact, "email", path)
    c.string(contact, "phone", path)
    person = c.obj(contact, "contactPerson", path)
    if person is not None:
        c.string(person, "name", _path(path, "contactPerson"))
        c.email(person, "email", _path(path, "contactPerson"))


def validate_invoice_payload(body: Any) -> list[ValidationIssue]:
    """POST ``/invoice``: one SalesInvoiceRequest (``processing``, ``distribution``, ``invoice``).

    Required: ``invoice.header.number`` (integer), ``invoice.header.date`` and ``dueDate`` (dates),
    ``invoice.header.currencyCode`` (ISO 4217). Checked when present: the ``processing`` switches
    and ``distribution.enabled`` (booleans), ``distribution.method``, ``header.type`` (strings),
    ``header.languageCode``, ``references.orderDate`` (date), ``references.creditedInvoiceNumber``
    (integer), and in the parties the documented strings, country codes and emails.
    """
    c = _Checker()
    root = c.root(body, "a SalesInvoiceRequest")
    if root is None:
        return c.issues
    processing = c.obj(root, "processing", "")
    if processing is not None:
        for key in (
            "paymentControlEnabled",
            "manualApprovalEnabled",
            "accountingInvoiceEnabled",
            "showProductCodeEnabled",
        ):
            c.boolean(processing, key, "processing")
    distribution = c.obj(root, "distribution", "")
    if distribution is not None:
        c.string(distribution, "method", "distribution")
        c.boolean(distribution, "enabled", "distribution")
    invoice = c.obj(root, "invoice", "", required=True)
    if invoice is None:
        return c.issues
    header = c.obj(invoice, "header", "invoice", required=True)
    if header is not None:
        path = "invoice.header"
        c.integer(header, "number", path, required=True)
        c.date(header, "date", path, required=True)
        c.date(header, "dueDate", path, required=True)
        c.currency(header, "currencyCode", path, required=True)
        c.value(header, "languageCode", path, check_language)
        for key in ("type", "description", "additionalInformation"):
            c.string(header, key, path)
    references = c.obj(invoice, "references", "invoice")
    if references is not None:
        path = "invoice.references"
        for key in ("sales", "buyer", "agreement", "payment", "orderNumber", "electronicPaymentCode", "invoiceCopyUrl"):
            c.string(references, key, path)
        c.date(references, "orderDate", path)
        c.integer(references, "creditedInvoiceNumber", path)
    parties = c.obj(invoice, "parties", "invoice")
    if parties is not None:
        _check_parties(c, parties)
    return c.issues


def _check_parties(c: _Checker, parties: Mapping[str, Any]) -> None:
    base = "invoice.parties"
    seller = c.obj(parties, "sellerParty", base)
    if seller is not None:
        path = _path(base, "sellerParty")
        for key in ("businessId", "name", "vatCode"):
            c.string(seller, key, path)
        _check_address(c, seller, path)
        _check_contact(c, seller, path)
        details = c.obj(seller, "paymentDetails", path)
        if details is not None:
            for key in ("iban", "bic", "bankgiro", "postgiro"):
                c.string(details, key, _path(path, "paymentDetails"))
    buyer = c.obj(parties, "buyerParty", base)
    if buyer is not None:
        path = _path(base, "buyerParty")
        for key in (
            "entityType",
            "name",
            "customerAccountId",
            "personalIdentityNumber",
            "businessId",
            "vatCode",
            "electronicInvoiceAccount",
            "electronicRoutingAddress",
            "glnNumber",
        ):
            c.string(buyer, key, path)
        c.value(buyer, "languageCode", path, check_language)
        c.boolean(buyer, "disableCollection", path)
        _check_address(c, buyer, path)
        _check_contact(c, buyer, path)
    recipient = c.obj(parties, "invoiceRecipientParty", base)
    if recipient is not None:
        path = _path(base, "invoiceRecipientParty")
        for key in (
            "name",
            "businessId",
            "vatCode",
            "electronicInvoiceAccount",
            "electronicRoutingAddress",
            "glnNumber",
        ):
            c.string(recipient, key, path)
        c.email(recipient, "email", path)
        c.value(recipient, "languageCode", path, check_language)
        _check_address(c, recipient, path)


def validate_invoice_action_payload(body: Any) -> list[ValidationIssue]:
    """POST ``/invoice/action``: ``{"actions": [...]}`` (a non-empty list).

    Required per action: ``code`` (non-empty string; the documented list is incomplete, so any
    code is accepted), ``data.invoiceNumber`` and ``data.caseId`` (integers); for ``DUEDATE``
    ``data.dueDate`` (date); for ``DIRECTPAYMENT`` ``data.amount`` (number), ``data.currency``
    (ISO 4217) and ``data.paymentDate`` (date). Checked when present: ``comment``,
    ``data.paymentMethod``, ``data.reference`` (strings) and the ``outstanding*Amount`` numbers.
    """
    c = _Checker()
    root = c.root(body, "with an 'actions' list")
    if root is None:
        return c.issues
    for path, action in c.each_obj(c.items(root, "actions", "", required=True), "actions"):
        code = c.string(action, "code", path, required=True)
        c.string(action, "comment", path)
        data = c.obj(action, "data", path, required=True)
        if data is None:
            continue
        data_path = _path(path, "data")
        c.integer(data, "invoiceNumber", data_path, required=True)
        c.integer(data, "caseId", data_path, required=True)
        c.date(data, "dueDate", data_path, required=code == "DUEDATE")
        direct = code == "DIRECTPAYMENT"
        c.number(data, "amount", data_path, required=direct)
        c.currency(data, "currency", data_path, required=direct)
        c.date(data, "paymentDate", data_path, required=direct)
        c.string(data, "paymentMethod", data_path)
        c.string(data, "reference", data_path)
        for key in ("outstandingCapitalAmount", "outstandingInterestAmount", "outstandingCostsAmount"):
            c.number(data, key, data_path)
    return c.issues


def validate_client_payload(body: Any) -> list[ValidationIssue]:
    """POST ``/client``: ``service``, ``client`` (and ``contacts``, whose shape is not documented).

    Required: ``service.type``, ``service.partnerCode``, ``client.name`` and
    ``client.businessCode`` (non-empty strings). Checked when present: ``client.countryCode``
    (alpha-2), ``client.languageCode`` (2 letters), ``client.email`` (pattern; empty allowed) and
    the other documented strings.
    """
    c = _Checker()
    root = c.root(body, "with 'service' and 'client' objects")
    if root is None:
        return c.issues
    service = c.obj(root, "service", "", required=True)
    if service is not None:
        c.string(service, "type", "service", required=True)
        c.string(service, "partnerCode", "service", required=True)
    client = c.obj(root, "client", "", required=True)
    if client is not None:
        c.string(client, "name", "client", required=True)
        c.string(client, "businessCode", "client", required=True)
        for key in ("vatRegNbr", "postalAddress", "postalCode", "postalDistrict", "telephone", "website"):
            c.string(client, key, "client")
        c.value(client, "countryCode", "client", check_country)
        c.value(client, "languageCode", "client", check_language)
        c.email(client, "email", "client")
    return c.issues
