"""``python -m airflow_provider_confirma.sandbox``: the ``confirma-sandbox`` CLI."""

from __future__ import annotations

import sys

from airflow_provider_confirma.sandbox.cli import main

sys.exit(main())
