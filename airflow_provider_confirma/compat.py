"""What differs between the supported Airflow versions (3.0 to 3.3), in one module.

Names that ``apache-airflow-providers-common-compat`` maps (``BaseHook``, the exceptions, ``conf``,
``Asset``, ...) are imported from ``airflow.providers.common.compat.sdk`` where they are used, as
the official providers do. This module holds the version flags and what common-compat does not
cover in every version we support (its releases for Python 3.10 lack some):

* ``TaskDeferralError`` / ``TaskDeferralTimeout`` (``airflow.sdk.exceptions`` from 3.2);
* ``mask_secret`` (``airflow.sdk.log`` from 3.1) and :func:`amask_secret` for async code
  (``airflow.sdk.log.amask_secret`` from 3.3.2);
* :func:`has_async_secrets_api`: whether a connection's extra can be read without blocking an event
  loop (3.3.2); before, async code reads it in a worker thread.

Features that need a newer Airflow degrade where they are used, saying so: the task state store
(3.3) and the connection form read from provider metadata (``conn-fields``, 3.2; before,
``ConfirmaHook.get_connection_form_widgets`` builds the same fields).
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
    """Whether this Airflow reads extras and masks secrets asynchronously (3.3.2's ``aextra_dejson``).

    Before, ``get_connection``, ``extra_dejson`` and ``mask_secret`` tell the supervisor through
    blocking calls, which fail on an event loop with another call in flight: async code runs them
    in a worker thread instead (:func:`asgiref.sync.sync_to_async`, one thread for all, in order).
    """
    from airflow.providers.common.compat.sdk import Connection

    return hasattr(Connection, "aextra_dejson")


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker from async code (Airflow 3.3.2+)."""
    from airflow.sdk import log as sdk_log

    await sdk_log.amask_secret(secret)
