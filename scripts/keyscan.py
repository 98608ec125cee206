"""Find a secret (an API key) in files and SQLite databases, in the forms it could take when leaked.

Owns the leak check of the end-to-end run (``scripts/e2e.py``) and its tests: which renderings of a
key count as the key (:func:`key_variants`), and the scans of a folder tree (:func:`scan_tree`), of
a SQLite database's text and blob cells (:func:`scan_sqlite`) and of single values
(:func:`scan_value`). A finding never carries the key itself: its context shows ``<KEY>`` instead,
so a report can be printed and stored safely.

Standard library only; importable as ``keyscan`` when ``scripts/`` is on ``sys.path``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A fragment this long or longer is distinctive enough to count as the key when found on its own.
MIN_FRAGMENT = 12
_CONTEXT = 40


@dataclass(frozen=True)
class Finding:
    """One place where a form of the key was found; ``context`` has the key replaced by ``<KEY>``."""

    where: str
    form: str
    offset: int
    context: str

    def __str__(self) -> str:
        return f"{self.where} @{self.offset} [{self.form}]: ...{self.context}..."


def _b64_forms(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """The base64 text of ``raw`` at each of the three byte alignments it can have in a longer value.

    Only the characters that depend on ``raw`` alone are kept, so the form matches wherever the key
    sits inside the encoded data (for example ``user:key`` in a Basic auth header).
    """
    n = len(raw)
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw + b"\0\0")
        start = -(-8 * shift // 6)  # first character made of key bits only
        end = (8 * (shift + n)) // 6  # characters before this one hold key bits only
        core = encoded[start:end]
        yield f"base64/{shift}", core
        urlsafe = core.translate(bytes.maketrans(b"+/", b"-_"))
        if urlsafe != core:
            yield f"base64url/{shift}", urlsafe


def key_variants(secret: str, fragments: Iterable[str] = ()) -> dict[str, bytes]:
    """Every rendering of ``secret`` that counts as a leak, by name.

    The raw key (UTF-8), URL-encoded (``quote``/``quote_plus``, upper- and lower-case escapes),
    JSON-escaped (also with ``\\/``), ``repr``, hexadecimal, UTF-16, base64 and base64url (each
    alignment), plus each of ``fragments`` (distinctive parts such as the key's random core, so a
    truncated key is found too; at least :data:`MIN_FRAGMENT` characters).
    """
    if not isinstance(secret, str) or len(secret) < MIN_FRAGMENT:
        raise ValueError(f"the secret must be a string of at least {MIN_FRAGMENT} characters")
    raw = secret.encode()
    forms: dict[str, bytes] = {"raw": raw}
    for name, quoted in (
        ("url", urllib.parse.quote(secret, safe="")),
        ("url-plus", urllib.parse.quote_plus(secret, safe="")),
    ):
        forms[name] = quoted.encode()
        forms[f"{name}-lower"] = _lower_escapes(quoted).encode()
    json_text = json.dumps(secret)[1:-1]
    forms["json"] = json_text.encode()
    forms["json-slash"] = json_text.replace("/", "\\/").encode()
    forms["repr"] = repr(secret)[1:-1].encode()
    forms["hex"] = raw.hex().encode()
    forms["HEX"] = raw.hex().upper().encode()
    forms["utf-16-le"] = secret.encode("utf-16-le")
    for name, value in _b64_forms(raw):
        forms[name] = value
    for n, fragment in enumerate(fragments):
        if len(fragment) < MIN_FRAGMENT or fragment not in secret:
            raise ValueError(f"fragment {n} must be a part of the secret of at least {MIN_FRAGMENT} characters")
        forms[f"fragment/{n}"] = fragment.encode()
    # Keep each distinct byte string once (under its first name).
    unique: dict[str, bytes] = {}
    for name, value in forms.items():
        if value not in unique.values():
            unique[name] = value
    return unique


def _lower_escapes(quoted: str) -> str:
    parts = quoted.split("%")
    return parts[0] + "".join("%" + part[:2].lower() + part[2:] for part in parts[1:])


def _redacted_context(data: bytes, offset: int, length: int, variants: Mapping[str, bytes]) -> str:
    window = data[max(0, offset - _CONTEXT) : offset + length + _CONTEXT]
    for value in sorted(variants.values(), key=len, reverse=True):
        window = window.replace(value, b"<KEY>")
    return window.decode("utf-8", "replace").replace("\n", "\\n")


def scan_bytes(data: bytes, variants: Mapping[str, bytes], where: str) -> list[Finding]:
    """Every occurrence of every variant in ``data``."""
    found = []
    for form, value in variants.items():
        start = data.find(value)
        while start != -1:
            found.append(Finding(where, form, start, _redacted_context(data, start, len(value), variants)))
            start = data.find(value, start + 1)
    return found


def scan_value(value: Any, variants: Mapping[str, bytes], where: str) -> list[Finding]:
    """Scan one value: text, bytes (and their zlib-decompressed content), or a JSON-safe structure."""
    if value is None or isinstance(value, (bool, int, float)):
        return []
    if isinstance(value, str):
        return scan_bytes(value.encode("utf-8", "surrogatepass"), variants, where)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        found = scan_bytes(data, variants, where)
        with contextlib.suppress(zlib.error):
            found += scan_bytes(zlib.decompress(data), variants, f"{where} (zlib)")
        return found
    return scan_bytes(json.dumps(value, default=str).encode(), variants, where)


def scan_tree(root: Path | str, variants: Mapping[str, bytes]) -> tuple[list[Finding], int]:
    """Scan every regular file under ``root`` (symlinks are not followed); returns findings and file count."""
    found: list[Finding] = []
    files = 0
    for path in sorted(Path(root).rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:  # removed while scanning (a journal file)
            continue
        files += 1
        found += scan_value(data, variants, str(path))
    return found, files


#: Decodes one cell before it is scanned again, e.g. Fernet-encrypted trigger kwargs.
CellDecoder = Callable[[Any], Any]


def scan_sqlite(
    db_path: Path | str,
    variants: Mapping[str, bytes],
    decoders: Mapping[str, CellDecoder] | None = None,
) -> tuple[list[Finding], dict[str, int]]:
    """Scan every text and blob cell of every table, read-only; returns findings and rows per table.

    ``decoders`` maps ``"table.column"`` to a function whose result is scanned as well (its
    failure is reported as a finding, so an undecodable cell is never silently skipped).
    """
    decoders = dict(decoders or {})
    found: list[Finding] = []
    rows_per_table: dict[str, int] = {}
    uri = f"{Path(db_path).resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
        db.text_factory = bytes  # keep undecodable text as it is stored
        tables = [
            row[0].decode() for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from sqlite_master
            columns = [d[0] for d in cursor.description]
            count = 0
            for row_number, row in enumerate(cursor):
                count += 1
                for column, cell in zip(columns, row, strict=True):
                    where = f"{table}.{column} row {row_number}"
                    found += scan_value(cell, variants, where)
                    decoder = decoders.get(f"{table}.{column}")
                    if decoder is not None and cell is not None:
                        text = cell.decode() if isinstance(cell, bytes) else cell
                        try:
                            decoded = decoder(text)
                        except Exception as exc:
                            found.append(Finding(where, "undecodable", 0, f"{type(exc).__name__}: {exc}"))
                        else:
                            found += scan_value(decoded, variants, f"{where} (decoded)")
            rows_per_table[table] = count
    return found, rows_per_table
