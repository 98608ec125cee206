"""``confirma-sandbox``: run the Confirma partner API sandbox from a shell.

Prints the ``AIRFLOW_CONN_CONFIRMA_DEFAULT`` value that points Airflow at it, and with
``--ready-file`` writes ``{"url", "port", "api_key", "conn"}`` (mode 0600) once it accepts
connections. The keys come from ``CONFIRMA_SANDBOX_API_KEY`` / ``CONFIRMA_SANDBOX_PROVISIONING_TOKEN``
or ``--api-key-file`` / ``--provisioning-token-file``, never from the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_confirma.sandbox.config import (
    API_KEY_ENV,
    DUPLICATE_POLICIES,
    PROVISIONING_TOKEN_ENV,
    SECRET_SETTINGS,
    ChaosConfig,
    SandboxConfig,
)

DEFAULT_PORT = 8765

_CHAOS_FLAGS = {
    "chaos_500": "error_500",
    "chaos_502": "error_502",
    "chaos_503": "error_503",
    "chaos_429": "rate_limit",
    "chaos_reset": "reset",
    "chaos_reset_after_body": "reset_after_body",
    "chaos_malformed_json": "malformed_json",
    "chaos_wrong_content_type": "wrong_content_type",
    "chaos_latency_ms": "latency_ms",
    "chaos_latency_rate": "latency_rate",
    "retry_after": "retry_after",
    "chaos_seed": "seed",
    "chaos_methods": "methods",
    "chaos_paths": "paths",
    "chaos_script": "script",
}
_CONFIG_FLAGS = (
    "sync_delay",
    "failure_rate",
    "failure_pattern",
    "failure_status",
    "failure_description",
    "duplicate_policy",
    "seed",
    "seed_invoices",
    "anchor_date",
)
#: secret setting -> (file flag, environment variable)
_SECRET_SOURCES = {
    "api_key": ("api_key_file", API_KEY_ENV),
    "provisioning_token": ("provisioning_token_file", PROVISIONING_TOKEN_ENV),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="confirma-sandbox",
        description="A local fake of the Confirma partner API (/api/v1/partner) for demos and tests.",
    )
    net = parser.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    net.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0 = any free)")
    net.add_argument("--http", choices=("auto", "httptools", "h11"), default="auto", help="HTTP parser")
    net.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop")
    net.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    net.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="another Host header value to answer (repeatable); default: the bound address and, "
        "for a loopback or wildcard bind, localhost, 127.0.0.1 and [::1], with the port",
    )
    net.add_argument("--ready-file", help="write {url, port, api_key, conn} as JSON (mode 0600) here once serving")
    net.add_argument("--conn-id", default="confirma_default", help="connection id for the printed variable")

    keys = parser.add_argument_group(
        "keys (never on the command line: any local user can read it)",
        f"The API key (also the admin key) comes from --api-key-file, else ${API_KEY_ENV}, else "
        f"the public default confirma-sandbox-key; the provisioning token from "
        f"--provisioning-token-file, else ${PROVISIONING_TOKEN_ENV}.",
    )
    keys.add_argument("--api-key-file", metavar="PATH", help="file holding the accepted X-Api-Key")
    keys.add_argument("--provisioning-token-file", metavar="PATH", help="file holding the key of POST /client")
    for flag in ("--api-key", "--provisioning-token"):  # removed: refused with a pointer to the safe ways
        keys.add_argument(flag, dest=f"refused_{flag[2:].replace('-', '_')}", help=argparse.SUPPRESS)

    api = parser.add_argument_group("behaviour")
    api.add_argument("--config-json", help="a SandboxConfig as JSON, without the keys; the flags below override it")
    api.add_argument("--sync-delay", type=float, help="seconds until a submitted record leaves pending (default 1)")
    api.add_argument("--failure-rate", type=float, help="fraction of records that fail (seeded, per identifier)")
    api.add_argument("--failure-pattern", help="regex: identifiers matching it fail")
    api.add_argument("--failure-status", type=int, help="status code of failed records (default 2)")
    api.add_argument("--failure-description", help="description of failed records")
    api.add_argument("--duplicate-policy", choices=DUPLICATE_POLICIES, help="accept (200, counted) or reject (409)")
    api.add_argument("--seed", type=int, help="seed of the generated data and failure draws (default 0)")
    api.add_argument("--seed-invoices", type=int, help="number of seeded invoices (default 8)")
    api.add_argument("--anchor-date", help="'today' of the seeded data, YYYY-MM-DD (default: today UTC)")

    chaos = parser.add_argument_group("chaos (fractions 0..1 of matching requests)")
    for flag, help_text in (
        ("--chaos-500", "HTTP 500"),
        ("--chaos-502", "HTTP 502"),
        ("--chaos-503", "HTTP 503 with Retry-After"),
        ("--chaos-429", "HTTP 429 with Retry-After"),
        ("--chaos-reset", "connection reset before the request is handled"),
        ("--chaos-reset-after-body", "request handled (POST stored), then connection reset"),
        ("--chaos-malformed-json", "200 with a truncated JSON body"),
        ("--chaos-wrong-content-type", "200 with an HTML body"),
        ("--chaos-latency-rate", "fraction of requests delayed by --chaos-latency-ms (default 1)"),
    ):
        chaos.add_argument(flag, type=float, help=help_text)
    chaos.add_argument("--chaos-latency-ms", type=float, help="added latency in milliseconds")
    chaos.add_argument("--retry-after", type=int, help="Retry-After seconds of 429/503 (default 1)")
    chaos.add_argument("--chaos-seed", type=int, help="seed of the chaos draws (default 0)")
    chaos.add_argument("--chaos-methods", help="comma-separated methods chaos applies to (default all)")
    chaos.add_argument("--chaos-paths", help="comma-separated API paths chaos applies to (default all)")
    chaos.add_argument("--chaos-script", help="comma-separated outcomes for the first requests, e.g. 503,503,ok")
    return parser


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> SandboxConfig:
    """The :class:`SandboxConfig` of parsed arguments and the key variables of ``environ`` (default
    ``os.environ``); ``ValueError`` names a bad setting, never a key."""
    environ = os.environ if environ is None else environ
    for name, (file_flag, variable) in _SECRET_SOURCES.items():
        if getattr(args, f"refused_{name}") is not None:
            flag = "--" + name.replace("_", "-")
            raise ValueError(
                f"{flag} is not accepted: a key on the command line is readable by any local user (ps); "
                f"set ${variable} or pass --{file_flag.replace('_', '-')} PATH"
            )
    base: dict[str, Any] = json.loads(args.config_json) if args.config_json else {}
    if not isinstance(base, dict):
        raise ValueError("--config-json must be a JSON object")
    secrets = sorted(set(SECRET_SETTINGS) & set(base))
    if secrets:
        raise ValueError(
            f"--config-json must not carry {', '.join(secrets)}: the command line is readable by any local "
            f"user; set ${API_KEY_ENV} / ${PROVISIONING_TOKEN_ENV} or use --api-key-file / --provisioning-token-file"
        )
    for name, (file_flag, variable) in _SECRET_SOURCES.items():
        path = getattr(args, file_flag)
        if path is not None:
            base[name] = _read_secret(path, "--" + file_flag.replace("_", "-"))
        elif environ.get(variable):
            base[name] = environ[variable]
    for name in _CONFIG_FLAGS:
        value = getattr(args, name)
        if value is not None:
            base[name] = value
    chaos = dict(base.get("chaos") or {})
    for flag, name in _CHAOS_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            chaos[name] = value
    base["chaos"] = ChaosConfig.from_dict(chaos)
    return SandboxConfig.from_dict(base)


def _read_secret(path: str, flag: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except (OSError, UnicodeError) as err:
        raise ValueError(f"cannot read {flag} {path}: {getattr(err, 'strerror', None) or type(err).__name__}") from None
    if not value:
        raise ValueError(f"{flag} {path} is empty")
    return value


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by this user only (0600)."""
    tmp = f"{path}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(str(err))

    from airflow_provider_confirma.sandbox.admin import SandboxEndpoint
    from airflow_provider_confirma.sandbox.server import bind_socket, build_server

    try:
        sock = bind_socket(args.host, args.port)
    except OSError as err:
        print(f"confirma-sandbox: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    endpoint = SandboxEndpoint()
    endpoint.host, endpoint.port, endpoint.api_key = args.host, sock.getsockname()[1], config.api_key
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print("confirma-sandbox: warning: plain HTTP on a non-loopback interface", file=sys.stderr)

    def on_ready() -> None:
        variable = f"AIRFLOW_CONN_{args.conn_id.upper()}"
        print(f"Confirma sandbox serving {endpoint.api_url} (admin: {endpoint.url}/_sandbox/stats)")
        if config.chaos.active:
            print(f"chaos: {json.dumps({k: v for k, v in config.chaos.to_dict().items() if v})}")
        print(f"{variable}={endpoint.conn_value}", flush=True)
        if args.ready_file:
            info = {"url": endpoint.url, "port": endpoint.port, "api_key": config.api_key, "conn": endpoint.conn_value}
            _write_private(args.ready_file, json.dumps(info))

    server = build_server(
        config,
        host=args.host,
        port=endpoint.port,
        allowed_hosts=args.allowed_host,
        http=args.http,
        loop=args.loop,
        log_level=args.log_level,
        on_ready=on_ready,
    )
    # uvicorn shuts down gracefully, then re-raises the signal it caught: make that a clean exit
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
