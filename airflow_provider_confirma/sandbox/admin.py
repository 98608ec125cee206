"""Client of the sandbox's admin endpoints (``/_sandbox``), plus what every running sandbox offers.

Standard library only (``urllib``), so scripts and fixtures can drive a sandbox without extra
imports. :class:`SandboxEndpoint` is the common face of the in-process server and the subprocess.

The admin endpoints take the sandbox's API key (its start ``api_key``) as ``X-Api-Key`` and JSON
bodies only; :class:`SandboxAdmin` sends both.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

from airflow_provider_confirma.endpoints import API_PREFIX

ADMIN_PREFIX = "/_sandbox"
DEFAULT_CONN_ID = "confirma_default"


class SandboxAdminError(RuntimeError):
    """An admin call was refused (bad setting) or the sandbox did not answer."""


class SandboxAdmin:
    """``stats()``, ``configure(...)``, ``set_chaos(...)``, ``reset()``... against one sandbox URL,
    authenticated with the sandbox's ``api_key``."""

    def __init__(self, url: str, api_key: str, timeout: float = 10.0) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise TypeError("SandboxAdmin needs the sandbox's api_key (a non-empty string)")
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SandboxAdmin({self.url!r})"

    def _call(self, method: str, path: str, body: Any = None, exact: bool = False) -> Any:
        headers = {"Accept": "application/json", "X-Api-Key": self._api_key}
        data = None
        if method in ("POST", "PUT", "PATCH"):
            data = json.dumps({} if body is None else body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - the URL is the sandbox's own http URL
            f"{self.url}{ADMIN_PREFIX}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read(), parse_float=Decimal if exact else float)
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise SandboxAdminError(f"sandbox {method} {ADMIN_PREFIX}{path}: HTTP {err.code}: {detail}") from None
        except OSError as err:
            raise SandboxAdminError(f"sandbox at {self.url} did not answer {method} {path}: {err}") from None

    def health(self) -> bool:
        try:
            return self._call("GET", "/health").get("status") == "ok"
        except SandboxAdminError:
            return False

    def stats(self) -> dict[str, Any]:
        """Request counts per ``METHOD path``, response statuses, duplicates, stored and pending counts, chaos."""
        return self._call("GET", "/stats")

    def records(self) -> dict[str, Any]:
        """Every stored submission as received (amounts as ``Decimal``) with its current status."""
        return self._call("GET", "/records", exact=True)

    def config(self) -> dict[str, Any]:
        """The current settings, without ``api_key`` and ``provisioning_token``."""
        return self._call("GET", "/config")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at runtime, e.g. ``configure(sync_delay=0, failure_pattern="^bad-")``."""
        return self._call("PUT", "/config", changes)

    def chaos(self) -> dict[str, Any]:
        return self._call("GET", "/chaos")

    def set_chaos(self, **chaos: Any) -> dict[str, Any]:
        """Replace the chaos settings, e.g. ``set_chaos(error_503=0.3, seed=7, methods=["GET"])``."""
        return self._call("PUT", "/chaos", chaos)

    def clear_chaos(self) -> dict[str, Any]:
        return self._call("DELETE", "/chaos")

    def sync_now(self) -> int:
        """Settle every pending record now; returns how many changed."""
        return int(self._call("POST", "/sync")["settled"])

    def reset(self, keep_config: bool = False) -> None:
        """Forget submissions and counters; restore the start configuration unless ``keep_config``."""
        self._call("POST", "/reset", {"keep_config": keep_config})


class SandboxEndpoint:
    """What a running sandbox offers its users: URLs, key, connection value and admin client."""

    host: str
    port: int
    api_key: str

    @property
    def url(self) -> str:
        """``http://host:port`` (the connection's ``host``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The API base URL, ``http://host:port/api/v1/partner``."""
        return self.url + API_PREFIX

    @property
    def conn_value(self) -> str:
        """The ``AIRFLOW_CONN_<ID>`` value (JSON) of a ``confirma`` connection to this sandbox."""
        return json.dumps({"conn_type": "confirma", "host": self.url, "password": self.api_key})

    def conn_env(self, conn_id: str = DEFAULT_CONN_ID) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": conn_value}`` for an environment."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.conn_value}

    @property
    def admin(self) -> SandboxAdmin:
        return SandboxAdmin(self.url, self.api_key)

    # shortcuts
    def stats(self) -> dict[str, Any]:
        return self.admin.stats()

    def records(self) -> dict[str, Any]:
        return self.admin.records()

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.admin.configure(**changes)

    def set_chaos(self, **chaos: Any) -> dict[str, Any]:
        return self.admin.set_chaos(**chaos)

    def clear_chaos(self) -> dict[str, Any]:
        return self.admin.clear_chaos()

    def sync_now(self) -> int:
        return self.admin.sync_now()

    def reset(self, keep_config: bool = False) -> None:
        self.admin.reset(keep_config=keep_config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"
