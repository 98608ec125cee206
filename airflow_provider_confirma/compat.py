"""What differs between the supported Airflow versions (3.0 to 3.3) that common-compat does not cover.

Names common-compat maps (``BaseHook``, the exceptions, ``conf``, ...) are imported from
``airflow.providers.common.compat.sdk`` where used; its releases for Python 3.10 lack the ones here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
)

if TYPE_CHECKING or AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout
else:  # Airflow 3.0, 3.1
    from airflow.exceptions import TaskDeferralError, TaskDeferralTimeout

if TYPE_CHECKING or AIRFLOW_V_3_1_PLUS:
    from airflow.sdk.log import mask_secret
else:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "amask_secret",
    "has_async_secrets_api",
    "mask_secret",
]


def has_async_secrets_api() -> bool:
    """Whether connections read their extra and mask secrets asynchronously (Airflow 3.3.2's ``aextra_dejson``)."""
    from airflow.providers.common.compat.sdk import Connection

    return hasattr(Connection, "aextra_dejson")


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker from async code (Airflow 3.3.2+)."""
    from airflow.sdk import log as sdk_log

    await sdk_log.amask_secret(secret)
