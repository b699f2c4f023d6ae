"""Fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.oidc import Issuer
from tests.support import Counting, handler_client, suite_client


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
