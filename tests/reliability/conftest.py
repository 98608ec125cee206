"""Fixtures of the reliability tests: the session sandbox (from the package's pytest plugin) with
its connection, and a loopback :class:`~tests.reliability.helpers.ShapeServer`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.helpers import ShapeServer


@pytest.fixture(scope="session")
def shape_server() -> Iterator[ShapeServer]:
    with ShapeServer() as server:
        yield server
