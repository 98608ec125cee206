"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Declares the ``confirma`` connection type with its form (``conn-fields``, ``ui-field-behaviour``),
so the UI renders it without importing the hook, and the ``[confirma]`` configuration section.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_confirma import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-confirma",
        "name": "Confirma Finance",
        "description": "Confirma Finance Integrations API (CFIS partner API): invoices, payments, "
        "settlements and accounting sync to Netvisor, Procountor and NetBaron. "
        "API reference: https://developer-partnerapi.confirmafinance.com/",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Confirma Finance",
                "external-doc-url": "https://developer-partnerapi.confirmafinance.com/",
                "tags": ["service"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "confirma",
                "hook-class-name": "airflow_provider_confirma.hooks.confirma.ConfirmaHook",
                "hook-name": "Confirma Finance",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"password": "API key", "host": "Base URL (optional)", "port": "Port"},
                    "placeholders": {
                        "host": "empty: the environment's URL; sandbox: http://127.0.0.1:8765",
                        "password": "required: client API key (sent as X-Api-Key)",
                        "port": "0: the URL's own port (Test on Airflow 3.3 needs a value)",
                    },
                },
                "conn-fields": {
                    "environment": {
                        "label": "Environment",
                        "description": "Selects the documented base URL (a Base URL, if set, overrides it); "
                        "the API key must belong to it.",
                        "schema": {"type": "string", "enum": ["staging", "production"], "default": "staging"},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "description": "Timeout of every request made with this connection.",
                        "schema": {"type": "number", "minimum": 1, "default": 30},
                    },
                    "partner_provisioning_token": {
                        "label": "Partner provisioning token",
                        "description": "Only for creating clients (POST /client).",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "ca_bundle": {
                        "label": "CA bundle path",
                        "description": "Optional path to a CA bundle for TLS verification (a proxy's private CA).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
        "hooks": [
            {
                "integration-name": "Confirma Finance",
                "python-modules": ["airflow_provider_confirma.hooks.confirma"],
            }
        ],
        "operators": [
            {
                "integration-name": "Confirma Finance",
                "python-modules": [
                    "airflow_provider_confirma.operators.accounting",
                    "airflow_provider_confirma.operators.payments",
                    "airflow_provider_confirma.operators.invoices",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Confirma Finance",
                "python-modules": [
                    "airflow_provider_confirma.sensors.payment_sync",
                    "airflow_provider_confirma.sensors.ledger_sync",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Confirma Finance",
                "python-modules": [
                    "airflow_provider_confirma.triggers.payment_sync",
                    "airflow_provider_confirma.triggers.ledger_sync",
                ],
            }
        ],
        "config": {
            "confirma": {
                "description": "Settings of the Confirma provider for a whole process (a triggerer, a worker).",
                "options": {
                    "max_concurrent_requests": {
                        "description": "Requests to the Confirma API in flight at once on one event loop "
                        "(a triggerer's), on as many pooled connections. Further requests wait for a slot, "
                        "so a loop that stalls does not start every poll that fell due at once. Raise it when "
                        "many uncoalesced waits poll a slow API: the polls per second of one triggerer are "
                        "bounded by this number divided by the API's response time.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "32",
                        "default": "16",
                    },
                    "max_response_bytes": {
                        "description": "The most bytes of one JSON response the provider reads (sync and "
                        "async); a larger answer fails with an error naming this option, checked from its "
                        "Content-Length and while reading. Error statuses and non-JSON answers are read only "
                        "as far as the error message quotes them. At least 1024.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "134217728",
                        "default": "67108864",
                    },
                },
            },
        },
    }
