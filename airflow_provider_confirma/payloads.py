"""The documented payload rules of the Confirma POST endpoints as pydantic models, with no Airflow import.

The submit operators check a payload before sending it (and send the payload itself, never a model
rebuilt from it); the sandbox answers 422 with the same issues. Rules from confirma-api.md: ISO dates,
ISO 4217 currencies, at most 2 decimals, alpha-2 countries, 2-letter languages, W3C emails. The docs'
required flags were not captured: a field is required when it is an identifier, or a date, amount or
currency every documented example carries; other documented fields are type-checked when present
(``null`` allowed); unknown fields pass through. Amounts are JSON numbers (``Decimal`` or ``int``):
text, floats and booleans are issues.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
)

from airflow_provider_confirma.text import bounded, json_type

__all__ = [
    "ISO_4217_CODES",
    "ClientRequest",
    "InvoiceActionsRequest",
    "LedgerRequest",
    "PayloadValidationError",
    "PaymentsRequest",
    "RequestModel",
    "SalesInvoiceRequest",
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
    "payload_issues",
    "plain_decimal",
]

#: Active ISO 4217 codes (incl. funds and X-codes) as of 2025; ANG, CUC, SLL, ZWL kept while in circulation.
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
#: At most this many issues are shown in a message; the rest are counted.
ISSUES_SHOWN = 10

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PLAIN_DECIMAL_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_ALPHA2_RE = re.compile(r"[A-Z]{2}")
_LANGUAGE_RE = re.compile(r"[A-Za-z]{2}")
_EMAIL_RE = re.compile(  # HTML5's "valid e-mail address"
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


# -- issues ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationIssue:
    """One broken rule: ``field`` is a JSON path such as ``payments[2].amount``."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def format_issues(issues: Sequence[ValidationIssue], limit: int = ISSUES_SHOWN) -> str:
    """``a: msg; b: msg (+3 more)`` for error messages."""
    return bounded([str(issue) for issue in issues[:limit]], limit, len(issues), sep="; ")


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
def plain_decimal(text: str) -> Decimal | None:
    """``Decimal`` of text such as ``" -12.30 "`` (no exponent, ``NaN`` or separators), else ``None``."""
    text = text.strip()
    return Decimal(text) if _PLAIN_DECIMAL_RE.fullmatch(text) else None


def check_number(value: Any, what: str = "number") -> Decimal:
    """A finite number with at most 2 decimals as ``Decimal``, from ``Decimal``, ``int`` or plain decimal text."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean ({value!r})")
    if isinstance(value, float):
        raise ValueError(
            f"{what} is a float ({value!r}); floats cannot hold money exactly: use Decimal or text such as '12.30'"
        )
    if isinstance(value, str):
        number = plain_decimal(value)
        if number is None:
            raise ValueError(f"{what} {value!r} is not a decimal number such as '12.30'")
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    else:
        raise ValueError(f"{what} must be a Decimal, text or int, not {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise ValueError(f"{what} {number} has {-exponent} decimal places; at most {MAX_DECIMALS} are allowed")
    return number


def check_amount(value: Any) -> Decimal:
    """:func:`check_number` for a money amount: ``check_amount("12.30") == Decimal("12.30")``."""
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
    if value in ISO_4217_CODES:
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 4217 currency code as text, not {type(value).__name__}")
    if value.upper() in ISO_4217_CODES:
        raise ValueError(f"{value!r} must be upper case ({value.upper()})")
    raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, SEK, NOK, DKK)")


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


def _email_or_empty(value: Any) -> str:
    return value if value == "" else check_email(value)  # the docs' examples carry empty ones


def _flag(value: Any) -> int:
    if isinstance(value, bool) or value not in (0, 1):
        raise ValueError(f"must be 0 or 1, got {value!r}")
    return int(value)


def _wire_number(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        raise ValueError("must be a JSON number, not a string (convert text with Decimal or check_amount)")
    check_number(value, info.field_name or "number")
    return value


# -- field types -----------------------------------------------------------------------------------
# The rules above run as plain validators, so each rule and its message exists once. A None reaching
# one is a null given for a required field (optional ones are ``X | None``): payload_issues says so.
Text = Annotated[str, StringConstraints(pattern=r"\S")]  # required text: not empty or blank
IsoDate = Annotated[date, PlainValidator(check_iso_date)]
Currency = Annotated[str, PlainValidator(check_currency)]
Number = Annotated[Decimal, PlainValidator(_wire_number)]
Country = Annotated[str, PlainValidator(check_country)]
Language = Annotated[str, PlainValidator(check_language)]
Email = Annotated[str, PlainValidator(_email_or_empty)]
Flag = Annotated[int, PlainValidator(_flag)]  # 0 or 1 (not a boolean)


class _Model(BaseModel):
    """Strict types (no text-to-number coercion), unknown fields kept, the schema built on first use."""

    model_config = ConfigDict(strict=True, extra="allow", defer_build=True)


class RequestModel(_Model):
    """A POST body; ``shape`` says what the body is, for the issue when it is not an object."""

    shape: ClassVar[str] = "a request body"


# -- POST /accounting/payment ----------------------------------------------------------------------
class Payment(_Model):
    paymentIdentifier: Text
    invoiceNumber: Text
    paymentDate: IsoDate
    bookingDate: IsoDate | None = None
    amount: Number
    currency: Currency
    targetIdentifier: str | None = None
    paymentReference: str | None = None
    sourceName: str | None = None


class PaymentsRequest(RequestModel):
    shape = "with a 'payments' list"
    payments: Annotated[list[Payment], Field(min_length=1)]


# -- POST /accounting/ledger -----------------------------------------------------------------------
class LedgerDimension(_Model):
    dimensionType: Text
    dimensionValue: Text


class LedgerRow(_Model):
    accountNumber: Text
    bookingDate: IsoDate
    amount: Number
    netAmount: Number | None = None
    vatPercentage: Number | None = None
    isVatRow: Flag | None = None
    vatAccountNumber: str | None = None
    vatType: str | None = None
    vatCode: str | None = None
    projectNumber: str | None = None
    transactionType: str | None = None
    transactionDescription: str | None = None
    ledgerDimensions: list[LedgerDimension] | None = None


class LedgerDocument(_Model):
    ledgerIdentifier: Text
    companyIdentifier: Text
    documentDate: IsoDate
    documentType: str | None = None
    documentName: str | None = None
    calculationMode: str | None = None
    documentDescription: Annotated[str, Field(max_length=210)] | None = None
    ledgerRows: Annotated[list[LedgerRow], Field(min_length=1)]


def _one_ledger(value: Any) -> Any:
    if isinstance(value, list):
        raise ValueError("must be an object: one ledger document per request, as in the documented example")
    return value


class LedgerRequest(RequestModel):
    shape = "with a 'ledgers' object"
    ledgers: Annotated[LedgerDocument, BeforeValidator(_one_ledger)]


# -- POST /invoice ---------------------------------------------------------------------------------
class Processing(_Model):
    paymentControlEnabled: bool | None = None
    manualApprovalEnabled: bool | None = None
    accountingInvoiceEnabled: bool | None = None
    showProductCodeEnabled: bool | None = None


class Distribution(_Model):
    method: str | None = None
    enabled: bool | None = None


class InvoiceHeader(_Model):
    number: int
    date: IsoDate
    dueDate: IsoDate
    currencyCode: Currency
    languageCode: Language | None = None
    type: str | None = None
    description: str | None = None
    additionalInformation: str | None = None


class InvoiceReferences(_Model):
    sales: str | None = None
    buyer: str | None = None
    agreement: str | None = None
    payment: str | None = None
    orderNumber: str | None = None
    electronicPaymentCode: str | None = None
    invoiceCopyUrl: str | None = None
    orderDate: IsoDate | None = None
    creditedInvoiceNumber: int | None = None


class Address(_Model):
    street: str | None = None
    street2: str | None = None
    street3: str | None = None
    postalCode: str | None = None
    postalDistrict: str | None = None
    countryName: str | None = None
    countryCode: Country | None = None


class ContactPerson(_Model):
    name: str | None = None
    email: Email | None = None


class Contact(_Model):
    email: Email | None = None
    phone: str | None = None
    contactPerson: ContactPerson | None = None


class PaymentDetails(_Model):
    iban: str | None = None
    bic: str | None = None
    bankgiro: str | None = None
    postgiro: str | None = None


class _Party(_Model):
    name: str | None = None
    businessId: str | None = None
    vatCode: str | None = None
    address: Address | None = None


class SellerParty(_Party):
    contact: Contact | None = None
    paymentDetails: PaymentDetails | None = None


class BuyerParty(_Party):
    entityType: str | None = None
    customerAccountId: str | None = None
    personalIdentityNumber: str | None = None
    electronicInvoiceAccount: str | None = None
    electronicRoutingAddress: str | None = None
    glnNumber: str | None = None
    languageCode: Language | None = None
    disableCollection: bool | None = None
    contact: Contact | None = None


class InvoiceRecipientParty(_Party):
    electronicInvoiceAccount: str | None = None
    electronicRoutingAddress: str | None = None
    glnNumber: str | None = None
    email: Email | None = None
    languageCode: Language | None = None


class Parties(_Model):
    sellerParty: SellerParty | None = None
    buyerParty: BuyerParty | None = None
    invoiceRecipientParty: InvoiceRecipientParty | None = None


class Invoice(_Model):
    header: InvoiceHeader
    references: InvoiceReferences | None = None
    parties: Parties | None = None


class SalesInvoiceRequest(RequestModel):
    shape = "a SalesInvoiceRequest"
    processing: Processing | None = None
    distribution: Distribution | None = None
    invoice: Invoice


# -- POST /invoice/action --------------------------------------------------------------------------
class ActionData(_Model):
    invoiceNumber: int
    caseId: int
    dueDate: IsoDate | None = None
    amount: Number | None = None
    currency: Currency | None = None
    paymentDate: IsoDate | None = None
    paymentMethod: str | None = None
    reference: str | None = None
    outstandingCapitalAmount: Number | None = None
    outstandingInterestAmount: Number | None = None
    outstandingCostsAmount: Number | None = None


class DueDateData(ActionData):
    dueDate: IsoDate


class DirectPaymentData(ActionData):
    amount: Number
    currency: Currency
    paymentDate: IsoDate


class InvoiceAction(_Model):
    """Any code is accepted (the documented list is incomplete)."""

    code: Text
    comment: str | None = None
    data: ActionData


class DueDateAction(InvoiceAction):
    data: DueDateData


class DirectPaymentAction(InvoiceAction):
    data: DirectPaymentData


#: The codes whose data requires more fields; the tags are in pydantic's error locations, not in paths.
_CODES = ("DUEDATE", "DIRECTPAYMENT")
_ANY_CODE = "any code"


def _action_tag(value: Any) -> str:
    code = value.get("code") if isinstance(value, Mapping) else None
    return code if code in _CODES else _ANY_CODE


class InvoiceActionsRequest(RequestModel):
    shape = "with an 'actions' list"
    actions: Annotated[
        list[
            Annotated[
                Annotated[DueDateAction, Tag("DUEDATE")]
                | Annotated[DirectPaymentAction, Tag("DIRECTPAYMENT")]
                | Annotated[InvoiceAction, Tag(_ANY_CODE)],
                Discriminator(_action_tag),
            ]
        ],
        Field(min_length=1),
    ]


# -- POST /client ----------------------------------------------------------------------------------
class Service(_Model):
    type: Text
    partnerCode: Text


class Client(_Model):
    name: Text
    businessCode: Text
    vatRegNbr: str | None = None
    postalAddress: str | None = None
    postalCode: str | None = None
    postalDistrict: str | None = None
    telephone: str | None = None
    website: str | None = None
    countryCode: Country | None = None
    languageCode: Language | None = None
    email: Email | None = None


class ClientRequest(RequestModel):
    """``service`` and ``client`` (``contacts`` passes through: its shape is not documented)."""

    shape = "with 'service' and 'client' objects"
    service: Service
    client: Client


# -- checking --------------------------------------------------------------------------------------
_LOCATION_TAGS = frozenset({*_CODES, _ANY_CODE})


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _LOCATION_TAGS:
            out = f"{out}.{part}" if out else part
    return out or "body"


#: How a message names a JSON type ("must be a string, not a number"); a tuple is "a Python tuple".
_JSON_TYPES = {
    "null": "null",
    "boolean": "a boolean",
    "number": "a number",
    "string": "a string",
    "object": "an object",
    "array": "a list",
}


def _json_type(value: Any) -> str:
    name = json_type(value)
    return _JSON_TYPES.get(name, f"a Python {name}")


#: pydantic error types and what our message says instead ("must be {kind}, not {JSON type}").
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "model_type": "an object",
    "list_type": "a list",
}


def _message(error: Mapping[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "is required"
    if value is None:
        return "is required (got null)"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, not {_json_type(value)}"
    if kind in ("too_short", "string_pattern_mismatch"):  # a required list, or text that is blank
        return "must not be empty"
    if kind == "string_too_long":
        return f"is {len(value)} characters long; at most {error['ctx']['max_length']} are allowed"
    return str(error["msg"])


def payload_issues(model: type[RequestModel], body: Any) -> list[ValidationIssue]:
    """Each rule of ``model`` that ``body`` breaks (``[]`` when valid), naming its JSON path; ``body`` is unchanged."""
    if not isinstance(body, Mapping):
        return [ValidationIssue("body", f"must be a JSON object ({model.shape}), not {_json_type(body)}")]
    try:
        model.model_validate(body if isinstance(body, dict) else dict(body))
    except ValidationError as err:
        return [ValidationIssue(_path(e["loc"]), _message(e)) for e in err.errors(include_url=False)]
    return []
