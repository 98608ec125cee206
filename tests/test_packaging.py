"""The release metadata tells the truth: declared dependencies are the imported ones, the version is
defined once, the license ships, and the README's links work on the package index page."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from airflow_provider_confirma import __version__
from airflow_provider_confirma.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_provider_confirma"
#: Imported only where the host provides them: the pytest plugin module runs inside pytest.
HOSTED = {"pytest": {"sandbox/pytest_plugin.py"}}


def project() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the test extra installs tomli on Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def imported_top_levels() -> dict[str, set[str]]:
    """``{top-level module: files}`` of every third-party import in the package (also inside functions)."""
    found: dict[str, set[str]] = {}
    stdlib = set(sys.stdlib_module_names)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ("airflow_provider_confirma", "__future__"):
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def declared() -> set[str]:
    return {Requirement(r).name.lower() for r in project()["project"]["dependencies"]}


def not_for_this_python() -> set[str]:
    """Declared dependencies whose marker excludes this interpreter (not installed here)."""
    requirements = [Requirement(r) for r in project()["project"]["dependencies"]]
    return {r.name.lower() for r in requirements if r.marker is not None and not r.marker.evaluate()}


def test_every_imported_distribution_is_declared_and_every_declared_one_imported():
    distributions = packages_distributions()
    needed: set[str] = set()
    for module, files in imported_top_levels().items():
        if files <= HOSTED.get(module, set()):
            continue
        if module == "airflow":  # one namespace, several distributions: checked by module below
            continue
        if (name := module.replace("_", "-")) in not_for_this_python():
            needed.add(name)
            continue
        # A distribution whose record lists no modules (pendulum 3.0.0's wheel) is found by its name.
        owners = {d.lower() for d in distributions.get(module, [])} or ({module} & declared())
        assert owners, f"{module} (imported in {sorted(files)}) belongs to no installed distribution"
        assert owners & declared(), f"{module} is imported in {sorted(files)} but not declared (one of {owners})"
        needed |= owners & declared()
    airflow_modules = {
        "apache-airflow-providers-common-compat": "airflow.providers.common.compat",
        "apache-airflow-providers-standard": "airflow.providers.standard",
    }
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    for distribution, module in airflow_modules.items():
        assert (module in source) == (distribution in declared()), distribution
        needed.add(distribution)
    needed.add("apache-airflow")
    assert declared() == needed, f"declared but never imported: {sorted(declared() - needed)}"


def test_the_version_is_defined_once():
    assert "version" in project()["project"]["dynamic"]
    assert "version" not in project()["project"]
    assert get_provider_info()["versions"] == [__version__]
    assert version("airflow-provider-confirma") == __version__


def test_the_python_versions_are_declared_as_classifiers():
    classifiers = project()["project"]["classifiers"]
    assert [c for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)] == [
        f"Programming Language :: Python :: 3.{minor}" for minor in (10, 11, 12, 13)
    ]
    assert project()["project"]["requires-python"] == ">=3.10,<3.14"


def test_the_license_and_changelog_ship_and_the_urls_are_set():
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    assert {"LICENSE", "CHANGELOG.md"} <= set(project()["tool"]["hatch"]["build"]["targets"]["sdist"]["include"])
    urls = project()["project"]["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)


def test_readme_links_are_absolute_and_point_at_files_that_exist():
    """The README is the package index page: a relative link there is broken."""
    base = project()["project"]["urls"]["Source"] + "/blob/main/"
    for target in re.findall(r"\]\(([^)\s]+)\)", (ROOT / "README.md").read_text()):
        if target.startswith("#"):
            continue
        assert target.startswith(("https://", "http://")), f"relative link in README: {target}"
        if target.startswith(base):
            assert (ROOT / target.removeprefix(base).split("#")[0]).exists(), target


def test_every_lower_bound_is_what_the_compatibility_run_installs():
    """``ci/pins/airflow-3.0.txt`` is a lowest-direct resolution (``make pins``) and ``make compat``
    runs on it: a bound there above the one declared means the declared bound is never tested."""
    pins = {}
    for line in (ROOT / "ci" / "pins" / "airflow-3.0.txt").read_text().splitlines():
        name, _, pinned = line.partition("==")
        if pinned:
            pins[name.strip().lower()] = Version(pinned.split(";")[0].strip())
    python_310 = {"python_version": "3.10", "python_full_version": "3.10.13", "extra": "test"}
    requirements = project()["project"]["dependencies"] + project()["project"]["optional-dependencies"]["test"]
    untested = {}
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(python_310):
            continue
        bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        assert bounds, f"{text}: no lower bound"
        if pins.get(requirement.name.lower()) != bounds[0]:
            untested[requirement.name] = (str(bounds[0]), str(pins.get(requirement.name.lower())))
    assert not untested, f"declared lower bound vs the compatibility run's version: {untested}"
