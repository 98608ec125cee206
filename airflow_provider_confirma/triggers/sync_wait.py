"""Deprecated: the wait's verdict and event vocabulary are domain code, now in
:mod:`airflow_provider_confirma.sync_wait` (the sensors, triggers and operators all import it there).
Importing a name from here still works and warns."""

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
