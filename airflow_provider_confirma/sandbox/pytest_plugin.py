"""pytest fixtures for the Confirma sandbox (registered through the ``pytest11`` entry point).

* ``confirma_sandbox_config`` (session): the :class:`SandboxConfig` of the session server; override
  it in a ``conftest.py`` to change the defaults (here ``sync_delay=0``: records settle on the next
  status read).
* ``confirma_sandbox_server`` (session): one real uvicorn server on 127.0.0.1 (background thread).
* ``confirma_sandbox`` (function): that server, reset to its start state before each test.
* ``confirma_sandbox_conn`` (function): as ``confirma_sandbox``, with ``AIRFLOW_CONN_CONFIRMA_DEFAULT``
  pointing at it for the test.

Loaded in every pytest run, so this module imports only pytest; the server is imported when a
fixture is first used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_confirma.sandbox.config import SandboxConfig
    from airflow_provider_confirma.sandbox.server import ConfirmaSandbox


@pytest.fixture(scope="session")
def confirma_sandbox_config() -> SandboxConfig:
    from airflow_provider_confirma.sandbox.config import SandboxConfig

    return SandboxConfig(sync_delay=0.0)


@pytest.fixture(scope="session")
def confirma_sandbox_server(confirma_sandbox_config: SandboxConfig) -> Iterator[ConfirmaSandbox]:
    from airflow_provider_confirma.sandbox.server import ConfirmaSandbox

    with ConfirmaSandbox(confirma_sandbox_config) as sandbox:
        yield sandbox


@pytest.fixture
def confirma_sandbox(confirma_sandbox_server: ConfirmaSandbox) -> ConfirmaSandbox:
    """The session sandbox with no submissions, zeroed counters and its start configuration."""
    confirma_sandbox_server.state.reset()
    return confirma_sandbox_server


@pytest.fixture
def confirma_sandbox_conn(confirma_sandbox: ConfirmaSandbox, monkeypatch: pytest.MonkeyPatch) -> ConfirmaSandbox:
    """``confirma_sandbox`` with ``AIRFLOW_CONN_CONFIRMA_DEFAULT`` set to it for this test."""
    for name, value in confirma_sandbox.conn_env().items():
        monkeypatch.setenv(name, value)
    return confirma_sandbox
