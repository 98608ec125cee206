"""Imports run one way: operators / sensors / triggers -> hook -> domain -> endpoints / exceptions.

The domain modules checked here import nothing from the layers above them (also not inside
functions), and the old home of the verdict keeps working with a deprecation warning.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_confirma"
ABOVE_THE_DOMAIN = ("hooks", "sensors", "triggers", "operators", "sandbox")
DOMAIN = ("arguments.py", "sync_wait.py", "models.py", "payloads.py", "endpoints.py", "exceptions.py", "json_codec.py")


def own_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow_provider_confirma"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("airflow_provider_confirma"))
    return found


@pytest.mark.parametrize("module", DOMAIN)
def test_domain_modules_know_nothing_above_them(module: str) -> None:
    above = {
        name
        for name in own_imports(PACKAGE / module)
        if name.split(".")[1:2] and name.split(".")[1] in ABOVE_THE_DOMAIN
    }
    assert above == set(), f"{module} imports from a layer above it: {sorted(above)}"


def test_the_verdict_moved_out_of_triggers_and_the_old_path_still_works() -> None:
    from airflow_provider_confirma import sync_wait
    from airflow_provider_confirma.triggers import sync_wait as old

    with pytest.warns(DeprecationWarning, match=r"moved to airflow_provider_confirma\.sync_wait"):
        assert old.SyncWait is sync_wait.SyncWait
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            old.no_such_name  # noqa: B018


#: The package's layers, top first (README "What's inside"); a module may import its own layer or below.
LAYERS: list[tuple[str, ...]] = [
    ("operators", "sensors", "triggers", "assets"),
    ("hooks",),
    ("sync_wait", "models", "arguments", "payloads", "validation"),
    ("endpoints", "exceptions", "json_codec", "text", "compat", "get_provider_info", "__init__", "__version__"),
]
#: The sandbox stands beside the hook: a fake API server, built on the domain and the base only.
SANDBOX_MAY_USE = LAYERS[2] + LAYERS[3]


def layer_of(name: str) -> int:
    part = name.split(".")[1] if "." in name else "__init__"
    for depth, members in enumerate(LAYERS):
        if part in members:
            return depth
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "sandbox" not in p.relative_to(PACKAGE).parts)


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_imports_only_its_layer_and_below(path: Path) -> None:
    dotted = ".".join(("airflow_provider_confirma", *path.relative_to(PACKAGE).with_suffix("").parts))
    own = layer_of(dotted)
    above = sorted(
        name
        for name in own_imports(path)
        if name.count(".") >= 1 and name.split(".")[1] != "sandbox" and layer_of(name) < own
    )
    assert above == [], f"{dotted} (layer {own + 1}) imports from a layer above it: {above}"


def test_the_sandbox_uses_only_the_domain_and_the_base() -> None:
    used = {
        name.split(".")[1]
        for path in (PACKAGE / "sandbox").rglob("*.py")
        for name in own_imports(path)
        if name.count(".") >= 1 and name.split(".")[1] != "sandbox"
    }
    assert used <= set(SANDBOX_MAY_USE), sorted(used - set(SANDBOX_MAY_USE))
