"""Deprecated: moved to :mod:`airflow_provider_confirma.sync_wait`; a name imported from here still works and warns."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    from airflow_provider_confirma import sync_wait

    value = getattr(sync_wait, name)  # AttributeError for a name that never existed
    warnings.warn(
        f"airflow_provider_confirma.triggers.sync_wait.{name} moved to airflow_provider_confirma.sync_wait",
        DeprecationWarning,
        stacklevel=2,
    )
    return value
