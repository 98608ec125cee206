"""Docs that cannot drift: every Python snippet in README.md and docs/*.md runs against the code.

A snippet that builds tasks (it names one of the provider's operators, sensors or triggers, or
Airflow's ``task`` / ``dag``) is executed inside a DAG, with the provider's public names resolved to
the real classes (``tests/test_public_api.py`` lists them) and any other name it uses but does not
define (``submit``, ``my_dag``) replaced by a stand-in: the arguments it shows must be accepted by
today's constructors and their checks, without a deprecation warning. Any other snippet (sandbox
servers, hook calls) must compile and its imports of the provider must resolve; it is not run.
A snippet that is deliberately not Python (``...`` inside a dict) is fenced as ``text``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import pendulum
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from tests.test_public_api import NAMES

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Names whose use makes a snippet DAG code, to be run.
BUILDERS = {"task", "dag", "DAG"}


def snippets() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in re.finditer(r"```python[^\n]*\n(.*?)```", text, re.S):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def public_names() -> dict[str, Any]:
    return {name: getattr(importlib.import_module(module), name) for module, name, _ in NAMES}


def free_names(tree: ast.AST) -> set[str]:
    """Names the snippet reads but never binds (imports, assignments, definitions, arguments)."""
    bound, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound - set(dir(builtins))


def provider_imports(tree: ast.AST) -> list[tuple[str, str]]:
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_provider_confirma")
        for alias in node.names
    ]


SNIPPETS = snippets()


@pytest.mark.parametrize(("where", "code"), SNIPPETS, ids=[where for where, _ in SNIPPETS])
def test_doc_snippet_runs_against_the_code(where: str, code: str) -> None:
    tree = ast.parse(code, where)  # a SyntaxError names the snippet: fence it as text if it is not Python
    for module, name in provider_imports(tree):
        assert hasattr(importlib.import_module(module), name), f"{where}: {module} has no {name}"
    public = public_names()
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    if not (names | imported) & (BUILDERS | {n for n in public if n.startswith("Confirma")}):
        return  # not DAG code: compiled and its imports checked, not run
    scope: dict[str, Any] = {}
    with DAG(f"doc_snippet_{abs(hash(where))}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        for name in free_names(tree):
            scope[name] = public[name] if name in public else stand_in(tree, name)
    with warnings.catch_warnings(), dag:
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"airflow_provider_confirma(\..*)?$")
        exec(compile(tree, where, "exec"), scope)  # noqa: S102 - our own docs


def stand_in(tree: ast.AST, name: str) -> Any:
    """An upstream task for a name used only as ``name.output`` (``submit.output``), else a mock."""
    uses = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == name
    ]
    reads = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    if uses and len(uses) == len(reads) and all(u.attr == "output" for u in uses):
        return EmptyOperator(task_id=name)
    return mock.MagicMock(name=name)


def test_every_doc_snippet_is_found() -> None:
    """The collector sees the snippets the docs have (a changed fence would hide them silently)."""
    found = snippets()
    assert len(found) >= 15
    assert any(where.startswith("README.md") for where, _ in found)
