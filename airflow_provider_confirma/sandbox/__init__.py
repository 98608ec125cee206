"""A local fake of the Confirma partner API for demos, tests and benchmarks (see docs/sandbox.md).

Imports are lazy so that loading the pytest plugin costs almost nothing:

* :class:`ConfirmaSandbox` - the server in a background thread (context manager);
* :class:`SandboxProcess` - the server as a ``confirma-sandbox`` subprocess (context manager);
* :class:`SandboxAdmin` - client of the ``/_sandbox`` admin endpoints;
* :class:`SandboxConfig`, :class:`ChaosConfig` - behaviour settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_confirma.sandbox.admin import SandboxAdmin, SandboxAdminError, SandboxEndpoint
    from airflow_provider_confirma.sandbox.config import ChaosConfig, SandboxConfig
    from airflow_provider_confirma.sandbox.server import ConfirmaSandbox, SandboxProcess

__all__ = [
    "ChaosConfig",
    "ConfirmaSandbox",
    "SandboxAdmin",
    "SandboxAdminError",
    "SandboxConfig",
    "SandboxEndpoint",
    "SandboxProcess",
]

_WHERE = {
    "ChaosConfig": "config",
    "SandboxConfig": "config",
    "SandboxAdmin": "admin",
    "SandboxAdminError": "admin",
    "SandboxEndpoint": "admin",
    "ConfirmaSandbox": "server",
    "SandboxProcess": "server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
