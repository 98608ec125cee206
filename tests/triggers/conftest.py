"""Fixtures of the trigger tests (defined in :mod:`tests.triggers.fake_status_api`)."""

from __future__ import annotations

from tests.triggers.fake_status_api import fake_api, trigger_conns

__all__ = ["fake_api", "trigger_conns"]
