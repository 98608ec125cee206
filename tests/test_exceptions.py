"""The exception hierarchy and its messages."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_confirma.exceptions import (
    BODY_EXCERPT_CHARS,
    ConfirmaAPIError,
    ConfirmaAuthError,
    ConfirmaClientError,
    ConfirmaConfigError,
    ConfirmaError,
    ConfirmaRateLimitError,
    ConfirmaResponseError,
    ConfirmaServerError,
    ConfirmaTransportError,
    body_excerpt,
)


@pytest.mark.parametrize(
    ("error_type", "parents"),
    [
        (ConfirmaConfigError, (ConfirmaError, ValueError)),
        (ConfirmaTransportError, (ConfirmaError,)),
        (ConfirmaAuthError, (ConfirmaAPIError,)),
        (ConfirmaClientError, (ConfirmaAPIError,)),
        (ConfirmaRateLimitError, (ConfirmaClientError, ConfirmaAPIError)),
        (ConfirmaServerError, (ConfirmaAPIError,)),
        (ConfirmaResponseError, (ConfirmaAPIError,)),
        (ConfirmaAPIError, (ConfirmaError,)),
        (ConfirmaError, (AirflowException,)),
    ],
)
def test_hierarchy(error_type, parents):
    assert issubclass(error_type, parents)


def test_api_error_message_and_attributes():
    err = ConfirmaClientError("POST", "/invoice", 422, '{"field": "dueDate"}', "rejected")
    assert str(err) == 'Confirma API POST /invoice returned HTTP 422: rejected: body: {"field": "dueDate"}'
    assert (err.method, err.path, err.status, err.excerpt, err.reason) == (
        "POST",
        "/invoice",
        422,
        '{"field": "dueDate"}',
        "rejected",
    )
    assert err.retry_after is None
    assert str(ConfirmaServerError("GET", "/payments", 500)) == "Confirma API GET /payments returned HTTP 500"


def test_transport_error_message_and_kind():
    err = ConfirmaTransportError("GET", "/validate", "connect", "connection refused or unreachable")
    assert str(err) == "Confirma API GET /validate failed: connect (connection refused or unreachable)"
    assert err.kind == "connect"
    assert str(ConfirmaTransportError("POST", "/invoice", "reset")) == "Confirma API POST /invoice failed: reset"


def test_body_excerpt():
    assert body_excerpt(None) == ""
    assert body_excerpt(b"") == ""
    assert body_excerpt(b"  a\r\n\tb  ") == "a b"
    assert body_excerpt("é".encode() + b"\xff") == "é\ufffd"
    long = body_excerpt("x" * 1000)
    assert long == "x" * BODY_EXCERPT_CHARS + "…"
    assert body_excerpt("abc", limit=2) == "ab…"


def test_body_excerpt_redacts_before_truncating():
    key = "k" * 30
    text = "y" * (BODY_EXCERPT_CHARS - 10) + key
    excerpt = body_excerpt(text, redact=(key, ""))
    assert "k" not in excerpt  # not even a truncated prefix of the key
    assert excerpt.endswith("***")
