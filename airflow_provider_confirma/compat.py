"""What differs between the supported Airflow versions (3.0 to 3.3), in one module.

Names that ``apache-airflow-providers-common-compat`` maps (``BaseHook``, the exceptions, ``conf``,
``Asset``, ...) are imported from ``airflow.providers.common.compat.sdk`` where they are used, as
the official providers do. This module holds the version flags and what common-compat does not
cover in every version we support (its releases for Python 3.10 lack some):

* ``TaskDeferralError`` / ``TaskDeferralTimeout`` (``airflow.sdk.exceptions`` from 3.2);
* ``mask_secret`` (``airflow.sdk.log`` from 3.1) and :func:`amask_secret` for async code
  (``airflow.sdk.log.amask_secret`` from 3.3);
* :func:`aconnection_and_extra`: a connection and its extra read without blocking an event loop.

Features that need a newer Airflow degrade where they are used, saying so: the task state store
(3.3) and the connection form read from provider metadata (``conn-fields``, 3.2; before,
``ConfirmaHook.get_connection_form_widgets`` builds the same fields).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, Connection

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "aconnection_and_extra",
    "amask_secret",
    "mask_secret",
]


def _async_secrets_api() -> bool:
    """Whether this Airflow reads extras and masks secrets asynchronously (3.3.2's ``aextra_dejson``).

    Before, ``aget_connection`` and ``extra_dejson`` tell the supervisor through a blocking call,
    which fails on an event loop with another call in flight: they run in a worker thread instead.
    """
    from airflow.providers.common.compat.sdk import Connection

    return hasattr(Connection, "aextra_dejson")


async def aconnection_and_extra(conn_id: str, hook: BaseHook) -> tuple[Connection, dict[str, Any]]:
    """The connection ``conn_id`` (looked up through ``hook``) and its decoded extra, off the loop."""
    if _async_secrets_api():
        conn = await hook.aget_connection(conn_id)
        return conn, await conn.aextra_dejson()
    from asgiref.sync import sync_to_async

    conn = await sync_to_async(hook.get_connection)(conn_id)
    return conn, await sync_to_async(lambda: conn.extra_dejson)()


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's log masker from async code (a triggerer's event loop)."""
    if _async_secrets_api():
        from airflow.sdk import log as sdk_log

        await sdk_log.amask_secret(secret)
        return
    from asgiref.sync import sync_to_async

    await sync_to_async(mask_secret)(secret)
