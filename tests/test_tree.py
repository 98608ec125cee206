"""The tests' tree mirrors the package's: every package module outside ``sandbox/`` (whose suite is
tests/sandbox/) has its test module, ``tests/<subpackage>/test_<name>.py`` unless listed below.

The cross-cutting suites (reliability/, test_bad_input.py, test_layers.py, test_public_api.py,
test_docs.py, test_packaging.py, test_airflow_versions.py, example_dags/, e2e/, benchmarks/, the DAG-run
suites) come on top; they are not the home of any module's own tests.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_provider_confirma"

#: Modules whose tests live elsewhere than the default place, and why (in a word).
EXCEPTIONS: dict[str, tuple[str, ...]] = {
    # the package root: the provider's metadata
    "__init__.py": ("tests/test_provider_info.py",),
    "get_provider_info.py": ("tests/test_provider_info.py",),
    # docstring-only subpackage markers: the import paths they make are the public API's
    "hooks/__init__.py": ("tests/test_public_api.py",),
    "operators/__init__.py": ("tests/test_public_api.py",),
    "sensors/__init__.py": ("tests/test_public_api.py",),
    "triggers/__init__.py": ("tests/test_public_api.py",),
    # thin per-endpoint subclasses and their base: one suite, parametrized by payment / ledger
    "sensors/base.py": ("tests/sensors/test_sync_sensors.py",),
    "sensors/payment_sync.py": ("tests/sensors/test_sync_sensors.py",),
    "sensors/ledger_sync.py": ("tests/sensors/test_sync_sensors.py",),
    "triggers/payment_sync.py": ("tests/triggers/test_sync_triggers.py",),
    "triggers/ledger_sync.py": ("tests/triggers/test_sync_triggers.py",),
    # deprecated shims: the old import keeps working and warns
    "validation.py": ("tests/test_payloads.py",),
    "triggers/sync_wait.py": ("tests/test_layers.py", "tests/test_public_api.py"),
    # leaf modules exercised through the modules that use them
    "text.py": ("tests/test_models.py", "tests/test_sync_wait.py", "tests/test_payloads.py"),
    "endpoints.py": ("tests/hooks/test_confirma.py",),
    "hooks/sync_transport.py": ("tests/hooks/test_confirma.py", "tests/reliability/test_transport_safety.py"),
    "assets.py": ("tests/operators/test_xcom_shapes.py", "tests/sensors/test_sync_sensors.py"),
    "compat.py": ("tests/test_airflow_versions.py",),
}


def package_modules() -> list[str]:
    return sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "sandbox"
    )


def default_test_module(module: str) -> str:
    folder, _, name = module.rpartition("/")
    return "/".join(part for part in ("tests", folder, f"test_{name}") if part)


def test_every_package_module_maps_to_existing_test_modules() -> None:
    modules = package_modules()
    assert set(EXCEPTIONS) <= set(modules), f"exceptions for no module: {sorted(set(EXCEPTIONS) - set(modules))}"
    missing = {
        module: [test for test in tests if not (ROOT / test).is_file()]
        for module in modules
        for tests in [EXCEPTIONS.get(module, (default_test_module(module),))]
    }
    assert {module: tests for module, tests in missing.items() if tests} == {}
    redundant = [m for m in EXCEPTIONS if (ROOT / default_test_module(m)).is_file()]
    assert redundant == [], f"these have a test module in the default place; drop their exception: {redundant}"
