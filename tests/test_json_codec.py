"""The JSON codec: money is exact ``Decimal`` both ways, non-finite and non-JSON values are refused,
and the decoder reads what ``json.loads`` reads.

(JSON nested too deep in a response is tested where it arrives: tests/reliability/test_secret_safety.py.)
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from airflow_provider_confirma.json_codec import decode_json, encode_json


# -- encoding request bodies -----------------------------------------------------------------------
def test_encode_json_writes_decimals_exactly():
    body = {
        "payments": [
            {"paymentIdentifier": "p1", "amount": Decimal("12.30"), "paymentDate": date(2026, 2, 1)},
            {"paymentIdentifier": "p2", "amount": Decimal("-0.10"), "note": "12.30 as text stays text"},
            {"paymentIdentifier": "p3", "amount": Decimal("1E+2"), "vat": Decimal("25.50"), "tiny": Decimal("1e-7")},
        ],
        "name": "Esimerkki Oy, Åbo",
    }
    raw = encode_json(body)
    text = raw.decode("utf-8")
    assert '"amount":12.30,' in text
    assert '"amount":-0.10,' in text
    assert '"amount":100,' in text
    assert '"vat":25.50,' in text
    assert '"tiny":0.0000001' in text
    assert '"note":"12.30 as text stays text"' in text
    assert '"paymentDate":"2026-02-01"' in text
    assert "Åbo" in text
    decoded = json.loads(raw, parse_float=Decimal)
    assert decoded["payments"][0]["amount"] == Decimal("12.30")
    assert str(decoded["payments"][0]["amount"]) == "12.30"


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_encode_json_refuses_non_finite_amounts(value):
    with pytest.raises(ValueError, match="non-finite"):
        encode_json({"amount": value})


def test_encode_json_refuses_unknown_types():
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        encode_json({"ids": {"a"}})


# -- decoding responses --------------------------------------------------------------------------
def test_decode_json_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        decode_json(b'{"amount": NaN}')


def test_decode_json_reads_what_json_loads_reads_and_keeps_money_exact():
    text = '{"amount": 10.10, "n": 3, "name": "Åke"}'
    for data in (text, text.encode("utf-8"), text.encode("utf-16"), text.encode("utf-32-le")):
        body = decode_json(data)
        assert body == {"amount": Decimal("10.10"), "n": 3, "name": "Åke"}
        assert isinstance(body["amount"], Decimal) and str(body["amount"]) == "10.10"
    with pytest.raises(ValueError, match="BOM"):
        decode_json("\ufeff" + text)
    with pytest.raises(ValueError, match="Extra data"):
        decode_json(b'{"a": 1} {"b": 2}')
