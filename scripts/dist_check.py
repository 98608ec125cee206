"""``make dist-check``: the built wheel, installed as a user installs it, works.

Run by the interpreter of the clean venv the wheel was installed into (not editable), from a
temporary folder so that nothing of the repository can be imported instead of the wheel:

1. the package and its license come from the wheel, at the version the metadata says, and the
   sdist carries the LICENSE and the CHANGELOG;
2. ``airflow providers list`` shows the provider;
3. the connection test (what the UI's Test button runs) passes against a sandbox started from the
   installed package;
4. an example DAG runs to success with ``dag.test()`` against that sandbox.

Usage: ``python scripts/dist_check.py DIST_DIR`` (the folder ``uv build`` wrote to).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib.metadata import distribution
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "example_confirma_ledger_sync.py"


def step(text: str) -> None:
    print(f"dist-check: {text}", flush=True)


def main(dist_dir: str) -> int:
    began = time.monotonic()
    wheel = next(Path(dist_dir).resolve().glob("*.whl"))
    sdist = next(Path(dist_dir).resolve().glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        shipped = {Path(name).name for name in archive.getnames() if name.count("/") == 1}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= shipped, sorted(shipped)
    step(f"{sdist.name}: LICENSE, CHANGELOG.md, README.md and pyproject.toml shipped")
    home = Path(tempfile.mkdtemp(prefix="confirma-dist-check-"))
    os.chdir(home)  # nothing of the repository on sys.path from here on
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO and p not in ("", ".")]
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
    )
    (home / "dags").mkdir()

    import airflow_provider_confirma

    installed = Path(airflow_provider_confirma.__file__).resolve()
    assert Path(sys.prefix).resolve() in installed.parents, f"not imported from the wheel: {installed}"
    dist = distribution("airflow-provider-confirma")
    assert dist.version == airflow_provider_confirma.__version__, (dist.version, airflow_provider_confirma.__version__)
    licenses = [f for f in dist.files or [] if f.name == "LICENSE"]
    assert licenses and "Apache License" in licenses[0].read_text(), "LICENSE is not in the wheel"
    step(f"{wheel.name}: version {dist.version}, imported from {installed.parent}, LICENSE shipped")

    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    providers = {p["package_name"]: p for p in json.loads(listed.stdout[listed.stdout.index("[") :])}
    assert "airflow-provider-confirma" in providers, sorted(providers)
    step(f"airflow providers list: airflow-provider-confirma {providers['airflow-provider-confirma']['version']}")

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, check=True)
    from airflow_provider_confirma.hooks.confirma import ConfirmaHook
    from airflow_provider_confirma.sandbox.config import SandboxConfig
    from airflow_provider_confirma.sandbox.server import ConfirmaSandbox

    with ConfirmaSandbox(SandboxConfig(sync_delay=0)) as sandbox:
        os.environ.update(sandbox.conn_env())
        ok, message = ConfirmaHook().test_connection()
        assert ok, message
        step(f"connection test against the sandbox: {message}")

        shutil.copy(REPO / "example_dags" / EXAMPLE, home / "dags" / EXAMPLE)
        helpers = importlib.util.spec_from_file_location("dag_helpers", REPO / "tests" / "dag_helpers.py")
        assert helpers is not None and helpers.loader is not None
        dag_helpers = importlib.util.module_from_spec(helpers)
        sys.modules["dag_helpers"] = dag_helpers  # its dataclasses look their module up
        helpers.loader.exec_module(dag_helpers)
        result = dag_helpers.run_dag(home / "dags" / EXAMPLE, "example_confirma_ledger_sync")
        assert result.state == "success", result.task_states
        assert sandbox.stats()["duplicates"]["total"] == 0
        step(f"dag.test() of example_confirma_ledger_sync: {result.task_states}")
    step(f"passed in {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dist"))
