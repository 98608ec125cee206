"""A ``confirma`` Airflow connection read into validated, secret-safe settings.

The API key is the ``password``; ``environment`` picks the documented base URL, ``host`` overrides
it; HTTPS for every host but loopback; TLS always verified (optionally against a CA bundle).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_confirma.endpoints import API_PREFIX, ENVIRONMENT_HOSTS
from airflow_provider_confirma.exceptions import ConfirmaConfigError, redact_text

CONN_TYPE = "confirma"
DEFAULT_TIMEOUT = 30.0
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def extra_field(extra: Mapping[str, Any], name: str) -> Any:
    """A custom field from the extra: plain key, or the older ``extra__confirma__<name>`` form."""
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(f"extra__{CONN_TYPE}__{name}")
    return None if value == "" else value


def is_loopback(hostname: str) -> bool:
    name = hostname.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def proxy_for(url: str) -> str | None:
    """The proxy of a request to ``url`` (both transports), or ``None``.

    ``https_proxy`` / ``http_proxy`` and ``no_proxy`` from the environment, never for loopback; only
    ``http://`` and ``https://`` proxies. Errors name the variable, never the proxy's credentials.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # public, not in the stubs
    if not proxy or bypass(host, proxies):
        return None
    proxy = proxy if "://" in proxy else f"http://{proxy}"
    scheme = urlsplit(proxy).scheme.lower()
    if scheme not in {"http", "https"}:
        raise ConfirmaConfigError(
            f"environment variable {parts.scheme}_proxy uses scheme {scheme!r}; only http:// and https:// "
            "proxies are supported"
        )
    return proxy


class SecretText(str):
    """A secret sent as itself but shown as ``'***'`` by ``repr`` (also its slices): tracebacks that
    render their frames' locals (Airflow 3.0's console log, rich) print through ``repr``, unmasked."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"

    def __getitem__(self, key: Any) -> str:
        return SecretText(super().__getitem__(key))


@dataclass(frozen=True)
class ConfirmaConnectionSettings:
    """Everything a request needs, from one connection. The secrets never show in its repr."""

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    provisioning_token: str | None = field(default=None, repr=False)
    environment: str | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets as they are sent: for the log masker and excerpts."""
        return tuple(s for s in (self.api_key, self.provisioning_token) if s)

    @classmethod
    def from_connection(cls, conn: Any, extra: Mapping[str, Any] | None = None) -> ConfirmaConnectionSettings:
        """Validate an Airflow ``Connection``; errors name the connection id and the field.

        :param extra: the already decoded extra (the async path reads it with ``aextra_dejson``).
        """
        conn_id = getattr(conn, "conn_id", None) or "<unnamed>"

        def fail(problem: str) -> ConfirmaConfigError:
            return ConfirmaConfigError(f"Confirma connection '{conn_id}': {problem}")

        if extra is None:
            extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
        if not isinstance(extra, Mapping):
            raise fail("extra must be a JSON object")

        api_key = SecretText((conn.password or "").strip())
        if not api_key:
            raise fail("field 'password' (API key) is empty; put the client API key there")

        environment = extra_field(extra, "environment")
        if environment is not None:
            environment = str(environment).strip().lower()
            if environment not in ENVIRONMENT_HOSTS:
                raise fail(f"extra 'environment' is {environment!r}; expected one of {sorted(ENVIRONMENT_HOSTS)}")
        host = (conn.host or "").strip()
        if host:
            base = _base_from_host(host, fail)
        elif environment:
            base = ENVIRONMENT_HOSTS[environment]
        else:
            raise fail("set extra 'environment' (staging or production) or field 'host' (base URL)")
        base = _with_port(base, getattr(conn, "port", None), fail)

        timeout = DEFAULT_TIMEOUT
        given = extra_field(extra, "timeout")
        if given is not None:
            try:
                timeout = float(given)
            except (TypeError, ValueError):
                raise fail(f"extra 'timeout' must be a number of seconds, got {given!r}") from None
            if not 0 < timeout < math.inf:
                raise fail(f"extra 'timeout' must be a positive number of seconds, got {given!r}")
        ca_bundle = extra_field(extra, "ca_bundle")
        if str(extra_field(extra, "verify")).lower() in {"false", "0", "no"}:
            raise fail("extra 'verify' cannot turn TLS verification off; use 'ca_bundle' for a private CA")
        token = SecretText(str(extra_field(extra, "partner_provisioning_token") or "").strip())
        return cls(
            conn_id=conn_id,
            base_url=base.rstrip("/") + ("" if base.rstrip("/").endswith(API_PREFIX) else API_PREFIX),
            api_key=api_key,
            timeout=timeout,
            verify=str(ca_bundle) if ca_bundle else True,
            provisioning_token=token or None,
            environment=environment,
        )


def _base_from_host(host: str, fail: Any) -> str:
    """``scheme://host[:port][/path]`` from the host field; a bare host means https (http on loopback).

    Messages quote the field with secret-looking values redacted, and never when it has user info.
    """
    if "@" in host:
        raise fail("field 'host' must not contain user info ('user:password@'); the API key goes in 'password'")
    raw = host if "://" in host else None
    if raw is None and ":" in host.strip("[]"):
        with contextlib.suppress(ValueError):  # a bare IPv6 literal such as ``::1`` needs brackets
            host = f"[{ipaddress.IPv6Address(host.strip('[]'))}]"
    parts = urlsplit(raw or f"//{host}")
    hostname = parts.hostname
    if not hostname:
        raise fail(f"field 'host' {redact_text(host)!r} is not a valid host or URL")
    scheme = (parts.scheme or ("http" if is_loopback(hostname) else "https")).lower()
    if scheme not in {"http", "https"}:
        raise fail(f"field 'host' uses scheme {scheme!r}; only https (or http on loopback) is allowed")
    if scheme == "http" and not is_loopback(hostname):
        raise fail(f"field 'host' {hostname!r} must use https; plain http is allowed only on loopback")
    try:
        url_port = parts.port
    except ValueError:
        raise fail(f"field 'host' {redact_text(host)!r} has an invalid port") from None
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    if url_port:
        netloc += f":{url_port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _with_port(base: str, port: Any, fail: Any) -> str:
    """``base`` with the port field; empty or 0 keeps the URL's own (Airflow 3.3.2's UI needs a port to
    test a connection, and 0 means "none" there too)."""
    if port is None or (isinstance(port, str) and not port.strip()):
        return base
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise fail(f"field 'port' must be a number, got {port!r}") from None
    if not 0 <= number <= 65535:
        raise fail(f"field 'port' must be between 0 and 65535 (0: the URL's own port), got {number}")
    parts = urlsplit(base)
    if number == 0 or number == parts.port:
        return base
    if parts.port is not None:
        raise fail(f"field 'port' is {number} but the Base URL names port {parts.port}; set one of them")
    return parts._replace(netloc=f"{parts.netloc}:{number}").geturl()
