"""Run a DAG file with ``dag.test()`` in the test process and read back what happened.

Airflow 3.3's ``dag.test()`` needs a DAG that was parsed from a file of a DAG bundle: it re-syncs
the ``dags-folder`` bundle to the metadata DB and refuses DAG objects built in a test ("dag is not
serialized"). So: write the DAG source into ``[core] dags_folder`` (``tests/conftest.py`` points
it to ``$AIRFLOW_HOME/dags``), parse that file with a ``BundleDagBag``, and call ``dag.test()`` on
the parsed DAG. Tasks run in this process (deferred tasks run their trigger inline, then resume),
so connections given as ``AIRFLOW_CONN_*`` environment variables are seen by them.

Needs the migrated metadata DB: use the ``airflow_db`` fixture in tests that call these helpers.
Every ``dag.test()`` re-parses every file in the folder, so put related DAGs in one file.

    path = write_dag_file(SOURCE, "my_dags.py")
    result = run_dag(path, "my_dag", conn_env={"AIRFLOW_CONN_CONFIRMA_DEFAULT": conn_json})
    assert result.task_states == {"submit": "success", "wait": "success"}
    summary = result.xcom("wait")
"""

from __future__ import annotations

import contextlib
import os
import re
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_confirma.compat import AIRFLOW_V_3_3_PLUS
from airflow_provider_confirma.endpoints import Endpoint

DAGS_FOLDER_BUNDLE = "dags-folder"


def dags_folder() -> Path:
    """The configured ``[core] dags_folder`` (created when missing)."""
    from airflow.configuration import conf

    folder = Path(conf.get("core", "dags_folder")).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_dag_file(source: str, filename: str) -> Path:
    """Write ``source`` (dedented) as ``filename`` in the DAGs folder; returns the path."""
    if "/" in filename or not filename.endswith(".py"):
        raise ValueError(f"filename must be a plain *.py name, got {filename!r}")
    path = dags_folder() / filename
    path.write_text(textwrap.dedent(source))
    return path


def parse_bundle(folder: Path, bundle_path: Path, bundle_name: str) -> Any:
    """The DAG bag of ``folder`` parsed as part of the bundle ``bundle_name``, on every Airflow 3.x."""
    try:
        from airflow.dag_processing.dagbag import BundleDagBag  # Airflow 3.2+: knows its bundle's name
    except ImportError:  # Airflow 3.0 and 3.1: a DagBag knows its bundle's path only
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=folder, bundle_path=bundle_path, include_examples=False)
    return BundleDagBag(dag_folder=folder, bundle_path=bundle_path, bundle_name=bundle_name)


def load_dag(path: Path, dag_id: str) -> Any:
    """Parse ``path`` as part of the DAGs-folder bundle and return its DAG ``dag_id``.

    An import error of the file fails with the parser's message.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    manager = DagBundlesManager()
    bundle = manager.get_bundle(DAGS_FOLDER_BUNDLE)
    bag = parse_bundle(path, Path(bundle.path), bundle.name)
    dag = _the_dag(bag, path, dag_id)
    if not AIRFLOW_V_3_3_PLUS:  # 3.3's dag.test() syncs the bundle itself; before, the assets the
        manager.sync_bundles_to_db()  # DAG emits must be in the DB or the task refuses them (inactive)
        _sync_to_db(bag, bundle.name)
    return dag


def _sync_to_db(bag: Any, bundle_name: str) -> None:
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db  # Airflow 3.2
    except ImportError:
        try:
            from airflow.models.dagbag import sync_bag_to_db  # type: ignore[no-redef]  # Airflow 3.1
        except ImportError:  # Airflow 3.0
            bag.sync_to_db(bundle_name, None)
            return
    sync_bag_to_db(bag, bundle_name, None)


def _the_dag(bag: Any, path: Path, dag_id: str) -> Any:
    if bag.import_errors:
        raise AssertionError(f"{path.name} failed to parse: {bag.import_errors}")
    if dag_id not in bag.dags:
        raise AssertionError(f"{path.name} has no DAG {dag_id!r}; it has {sorted(bag.dags)}")
    return bag.dags[dag_id]


@contextlib.contextmanager
def environment(values: Mapping[str, str] | None) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values or {}}
    os.environ.update(values or {})
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RICH_BOX = re.compile(r"[\u2500-\u257f]")


def logged_text(capfd: Any) -> str:
    """What the run printed so far, as one line of plain text: without colours, box drawing and
    line wraps (before Airflow 3.3, ``dag.test()`` renders a task's exception with rich), so a
    message can be looked for whole on every version."""
    text = _RICH_BOX.sub(" ", _ANSI.sub("", capfd.readouterr().out))
    return " ".join(text.split())


@dataclass
class TaskResult:
    state: str | None
    try_number: int


@dataclass
class DagTestResult:
    """A finished ``dag.test()`` run: its state, each task's state and every XCom it pushed."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, TaskResult]
    #: task_id -> {key: value}
    xcoms: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: asset events the run emitted: {"task_id", "uri", "extra"}, in order
    asset_events: list[dict[str, Any]] = field(default_factory=list)
    dag_run: Any = None

    @property
    def task_states(self) -> dict[str, str | None]:
        return {task_id: t.state for task_id, t in self.tasks.items()}

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """The XCom value, or ``KeyError`` naming what was pushed."""
        try:
            return self.xcoms[task_id][key]
        except KeyError:
            raise KeyError(f"no XCom {key!r} from {task_id!r}; pushed: {self.xcoms}") from None


def read_run(dag_run: Any) -> DagTestResult:
    """Task states, try numbers, XComs and asset events of a DAG run, read from the metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        tasks = {
            ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": TaskResult(
                str(ti.state) if ti.state is not None else None, ti.try_number
            )
            for ti in tis
        }
        xcoms: dict[str, dict[str, Any]] = {}
        for row in session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id)):
            xcoms.setdefault(row.task_id, {})[row.key] = XComModel.deserialize_value(row)
        events = [
            {"task_id": task_id, "uri": uri, "extra": extra}
            for task_id, uri, extra in session.execute(
                select(AssetEvent.source_task_id, AssetModel.uri, AssetEvent.extra)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
                .order_by(AssetEvent.id)
            )
        ]
    return DagTestResult(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        state=str(dag_run.state),
        tasks=tasks,
        xcoms=xcoms,
        asset_events=events,
        dag_run=dag_run,
    )


def run_dag(
    path: Path,
    dag_id: str,
    *,
    conn_env: Mapping[str, str] | None = None,
    run_conf: dict[str, Any] | None = None,
    logical_date: datetime | None = None,
) -> DagTestResult:
    """Parse ``dag_id`` from ``path`` and run it once with ``dag.test()``, ``conn_env`` set meanwhile."""
    with environment(conn_env):
        dag = load_dag(path, dag_id)
        kwargs: dict[str, Any] = {"run_conf": run_conf}
        if logical_date is not None:
            kwargs["logical_date"] = logical_date
        dag_run = dag.test(**kwargs)
        return read_run(dag_run)


def run_dag_source(
    source: str,
    filename: str,
    dag_id: str,
    *,
    conn_env: Mapping[str, str] | None = None,
    run_conf: dict[str, Any] | None = None,
) -> DagTestResult:
    """:func:`write_dag_file` then :func:`run_dag`."""
    return run_dag(write_dag_file(source, filename), dag_id, conn_env=conn_env, run_conf=run_conf)


# -- acting on the sandbox while a run goes on -------------------------------------------------------
def request_key(endpoint: Endpoint) -> str:
    """How the sandbox's ``stats()["requests"]`` names an endpoint: ``"GET /api/v1/partner/..."``."""
    return f"{endpoint.method} {endpoint.full_path}"


def requests_served(sandbox: Any, endpoint: Endpoint) -> int:
    """The requests of ``endpoint`` the sandbox has served so far."""
    return sandbox.stats()["requests"].get(request_key(endpoint), 0)


@contextlib.contextmanager
def when_requests(sandbox: Any, key: str, count: int, action: Callable[[], Any]) -> Iterator[dict[str, Any]]:
    """Run ``action()`` once, as soon as the sandbox has served ``count`` requests of ``key`` (a
    :func:`request_key`), from a watcher thread: a test reacts to the run's progress, not to time,
    however slow the machine. Yields ``{"at": the count then, "result": what action returned}``,
    filled when it ran."""
    seen: dict[str, Any] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.01):
            now = sandbox.stats()["requests"].get(key, 0)
            if now >= count:
                seen["result"] = action()
                seen["at"] = now
                return

    watcher = threading.Thread(target=watch, name="when-requests", daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        stop.set()
        watcher.join(5)


def settle_after_gets(sandbox: Any, endpoint: Endpoint, gets: int) -> contextlib.AbstractContextManager[dict[str, Any]]:
    """Settle every pending record (``sandbox.sync_now()``, its count in ``"result"``) once the sandbox
    has served ``gets`` reads of ``endpoint``: :func:`when_requests`."""
    return when_requests(sandbox, request_key(endpoint), gets, sandbox.sync_now)
