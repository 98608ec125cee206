"""The key scanner of the end-to-end run finds a planted key in every form it claims, and nothing else."""

from __future__ import annotations

import base64
import json
import sqlite3
import urllib.parse
import zlib
from pathlib import Path

import keyscan
import pytest
from cryptography.fernet import Fernet

CORE = "Qm7xZr2LkP9vTa4NcW8yHs3J"
KEY = f"cfk-e2e+{CORE}/Zq"
OTHER = "cfk-e2e+Qm7xZr2LkP9vTa4NcW8yHs3K/Zq"  # differs in one character of the core


@pytest.fixture
def forms() -> dict[str, bytes]:
    return keyscan.key_variants(KEY, [CORE])


def found_forms(data: bytes, forms: dict[str, bytes]) -> set[str]:
    return {finding.form for finding in keyscan.scan_bytes(data, forms, "test")}


@pytest.mark.parametrize(
    ("rendering", "form"),
    [
        (KEY, "raw"),
        (urllib.parse.quote(KEY, safe=""), "url"),
        (urllib.parse.quote_plus(KEY), "url"),
        (urllib.parse.quote(KEY, safe="").replace("%2B", "%2b").replace("%2F", "%2f"), "url-lower"),
        (json.dumps({"k": KEY}), "raw"),
        (json.dumps({"k": KEY}).replace("/", "\\/"), "json-slash"),
        (KEY.encode().hex(), "hex"),
        (KEY.encode().hex().upper(), "HEX"),
        (f"key=...{CORE}...", "fragment/0"),  # a truncated or partly masked key
    ],
)
def test_renderings_of_the_key_are_found(rendering: str, form: str, forms: dict[str, bytes]) -> None:
    assert form in found_forms(rendering.encode(), forms)


def test_a_piece_shorter_than_the_fragment_is_no_finding(forms: dict[str, bytes]) -> None:
    assert found_forms(f"cfk-e2e+ {CORE[:-1]} /Zq".encode(), forms) == set()


def test_url_forms_differ_from_the_raw_key(forms: dict[str, bytes]) -> None:
    # The key holds '+' and '/', so the escaped forms are distinct strings that the scan must know.
    assert b"%2B" in forms["url"] and b"%2F" in forms["url"]
    assert forms["url-lower"] != forms["url"]


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "Basic header xyz:"])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_is_found_at_every_alignment(prefix: str, urlsafe: bool, forms: dict[str, bytes]) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    data = encode(f"{prefix}{KEY}trailer".encode())
    found = found_forms(data, forms)
    assert any(form.startswith("base64") for form in found), found


def test_utf16_and_repr(forms: dict[str, bytes]) -> None:
    assert "utf-16-le" in found_forms(f"<{KEY}>".encode("utf-16-le"), forms)
    assert found_forms(repr({"password": KEY}).encode(), forms)


def test_a_similar_key_is_not_a_finding(forms: dict[str, bytes], tmp_path: Path) -> None:
    near = [OTHER, urllib.parse.quote(OTHER, safe=""), base64.b64encode(OTHER.encode()).decode(), OTHER.encode().hex()]
    (tmp_path / "near.log").write_text("\n".join(near))
    assert keyscan.scan_tree(tmp_path, forms) == ([], 1)


def test_variants_refuse_weak_input() -> None:
    with pytest.raises(ValueError, match="at least"):
        keyscan.key_variants("short")
    with pytest.raises(ValueError, match="fragment 0"):
        keyscan.key_variants(KEY, ["not-a-part-of-the-key"])
    with pytest.raises(ValueError, match="fragment 0"):
        keyscan.key_variants(KEY, [CORE[:5]])


def test_tree_scan_finds_a_planted_key_and_redacts_it(forms: dict[str, bytes], tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "dag_id=x" / "run_id=y" / "task_id=z"
    logs.mkdir(parents=True)
    (logs / "attempt=1.log").write_text('{"event": "all good"}\n')
    (logs / "attempt=1.log.trigger.4.log").write_text(
        '{"event": "poll"}\n{"event": "error", "error_detail": "X-Api-Key: ' + KEY + ' rejected"}\n'
    )
    (tmp_path / "compressed.bin").write_bytes(zlib.compress(f"deep inside {KEY}".encode()))
    (tmp_path / "link.log").symlink_to(logs / "attempt=1.log.trigger.4.log")

    findings, files = keyscan.scan_tree(tmp_path, forms)

    assert files == 3  # the symlink is not followed: its target is scanned once
    where = {(Path(f.where).name, f.form) for f in findings}
    assert ("attempt=1.log.trigger.4.log", "raw") in where
    assert ("attempt=1.log.trigger.4.log", "fragment/0") in where
    assert any(f.where.endswith("compressed.bin (zlib)") and f.form == "raw" for f in findings)
    assert not any(Path(f.where).name == "attempt=1.log" for f in findings)
    for finding in findings:
        assert KEY not in str(finding) and CORE not in str(finding)
        assert "<KEY>" in finding.context


def test_sqlite_scan_reads_every_cell_and_decodes_encrypted_ones(forms: dict[str, bytes], tmp_path: Path) -> None:
    fernet = Fernet(Fernet.generate_key())
    db_path = tmp_path / "airflow.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE xcom (id INTEGER PRIMARY KEY, value TEXT)")
        db.execute("CREATE TABLE trigger (id INTEGER PRIMARY KEY, kwargs TEXT)")
        db.execute("CREATE TABLE blobs (data BLOB)")
        db.execute("INSERT INTO xcom (value) VALUES (?)", (json.dumps({"counts": {"synced": 3}}),))
        db.execute("INSERT INTO xcom (value) VALUES (?)", (json.dumps({"oops": KEY}).replace("/", "\\/"),))
        clean = fernet.encrypt(json.dumps({"confirma_conn_id": "c"}).encode()).decode()
        leaky = fernet.encrypt(json.dumps({"confirma_conn_id": "c", "password": KEY}).encode()).decode()
        db.execute("INSERT INTO trigger (kwargs) VALUES (?), (?), (?)", (clean, leaky, "not a fernet token"))
        db.execute("INSERT INTO blobs VALUES (?)", (zlib.compress(KEY.encode()),))

    decoders = {"trigger.kwargs": lambda text: fernet.decrypt(text.encode()).decode()}
    findings, rows = keyscan.scan_sqlite(db_path, forms, decoders)

    assert rows == {"blobs": 1, "trigger": 3, "xcom": 2}
    where = {(f.where, f.form) for f in findings}
    assert ("xcom.value row 1", "json-slash") in where
    assert ("trigger.kwargs row 1 (decoded)", "raw") in where
    assert ("trigger.kwargs row 2", "undecodable") in where  # an unreadable cell is never skipped silently
    assert ("blobs.data row 0 (zlib)", "raw") in where
    assert not any(f.where.startswith(("xcom.value row 0", "trigger.kwargs row 0")) for f in findings)
    # Without the decoder, the encrypted leak is invisible: why the e2e run decrypts trigger kwargs.
    plain, _ = keyscan.scan_sqlite(db_path, forms)
    assert not any(f.where.startswith("trigger.") for f in plain)
