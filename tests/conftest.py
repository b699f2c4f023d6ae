"""Fixtures shared by every test module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support import function_client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the function with default test settings."""
    async with function_client() as c:
        yield c
