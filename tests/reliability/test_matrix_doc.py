"""docs/reliability.md stays true to the tests: every key in the fault matrix is defined, and every
test the Fault matrix and No duplicates sections name exists in the named file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
HERE = Path(__file__).resolve().parent


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def defined_tests(filename: str) -> set[str]:
    tree = ast.parse((HERE / filename).read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def key_rows() -> dict[str, str]:
    """``{key: row text}`` of the table that maps keys (HG1, T9, S3, ...) to tests."""
    rows: dict[str, str] = {}
    for line in section("Fault matrix").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"[A-Z]+\d+(, [A-Z]+\d+)*", cells[0]):
            for key in cells[0].split(", "):
                rows[key] = cells[1]
    return rows


def test_every_key_of_the_matrix_is_defined():
    matrix = section("Fault matrix").split("The tests, by key")[0]
    used = set(re.findall(r"\b((?:HG|HP|T|S)\d+)\b", " ".join(re.findall(r"\[([^\]]+)\]", matrix))))
    assert used, "no test keys found in the matrix"
    assert used <= set(key_rows()), f"keys without a test: {sorted(used - set(key_rows()))}"


@pytest.mark.parametrize("key", sorted(key_rows()))
def test_the_tests_a_key_names_exist(key: str):
    row = key_rows()[key]
    filename = re.search(r"`(test_\w+\.py)::", row).group(1)
    names = re.findall(r"`(?:test_\w+\.py::)?(test_\w+)", row)
    assert names
    missing = [name for name in names if name not in defined_tests(filename)]
    assert not missing, f"{key}: {missing} not in {filename}"


def test_the_no_duplicate_runs_exist():
    names = re.findall(r"^\| `(test_\w+)", section("No duplicates"), flags=re.M)
    assert len(names) >= 6
    assert set(names) <= defined_tests("test_no_duplicates.py")


def safety_rows() -> dict[int, str]:
    """``{item: tests cell}`` of the Safety matrix (one row per item of the safety issue)."""
    rows: dict[int, str] = {}
    for line in section("Safety matrix").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            rows[int(cells[0])] = cells[3]
    return rows


def test_the_safety_matrix_has_one_row_per_item_of_the_issue():
    assert sorted(safety_rows()) == list(range(1, 19))


@pytest.mark.parametrize("item", sorted(safety_rows()))
def test_the_tests_a_safety_row_names_exist(item: int):
    cell = safety_rows()[item]
    found = re.findall(r"`(test_\w+\.py)::((?:test_\w+)(?:`, `test_\w+)*)", cell)
    assert found, f"item {item}: no `test_file.py::test_name` in {cell!r}"
    for filename, names in found:
        tree = ast.parse(next(ROOT.joinpath("tests").rglob(filename)).read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        missing = [name for name in re.findall(r"test_\w+", names) if name not in defined]
        assert not missing, f"item {item}: {missing} not in {filename}"
