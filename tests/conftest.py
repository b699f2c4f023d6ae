"""Fixtures shared by every test module, and each test marked with its kind.

The tests are grouped by kind, one folder each, and marked after it (`-m unit` runs the unit
tests alone): `unit/` in-process, `integration/` with real peers (a served function, Redis,
sinks, an issuer), `system/` the fault suite and whole-system checks, `repo/` the repository's
own checks. The `server`, `redis` and `chaos` markers still say what a test needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.loop_time import virtual_clock
from tests.helpers.oidc import Issuer
from tests.helpers.support import Counting, handler_client, suite_client

KINDS = ("unit", "integration", "system", "repo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the kind its folder says."""
    for item in items:
        folder = Path(str(item.path)).parent.name
        if folder in KINDS:
            item.add_marker(folder)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> object:
    """A test marked looptime runs on a virtual loop clock (tests/helpers/loop_time.py)."""
    with virtual_clock(pyfuncitem):
        return (yield)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the function with default test settings."""
    async with suite_client() as c:
        yield c


@pytest.fixture(scope="module")
def served_issuer() -> Iterator[Issuer]:
    """One OIDC issuer (keys + HTTP server) per module; keys are slow to generate."""
    with Issuer().serving() as issuer:
        yield issuer


@pytest.fixture
def issuer(served_issuer: Issuer) -> Issuer:
    """The module's issuer with its published keys and counters reset."""
    served_issuer.reset()
    return served_issuer


@pytest.fixture
def counting() -> Counting:
    """A counting handler."""
    return Counting()


@pytest.fixture
async def counted_client(counting: Counting) -> AsyncIterator[httpx.AsyncClient]:
    """A function whose query handler is `counting`."""
    async with handler_client(counting) as client:
        yield client
