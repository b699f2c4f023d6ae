"""What the UI reads that only it needs: `GET /api/v1/types`, `GET /api/v1/status`, and the
outbox's oldest event behind the status."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventfn.app import FunctionApp, create_app
from eventfn.binding import Event
from eventfn.stores.outbox import Outbox, RedisOutbox, SQLiteOutbox
from eventfn.stores.redis import redis_client
from eventfn.testing import app_client, isolated_settings
from tests.functions.ui import AUDIT_TYPE, ORDER_TYPE, TICKET_TYPE, registry
from tests.helpers import support


@contextlib.asynccontextmanager
async def function(
    tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[FunctionApp, httpx.AsyncClient]]:
    app = create_app(isolated_settings(data_dir=tmp_path, **settings), registry=registry)
    async with app_client(app) as client:
        yield app, client


def event(time: str | None, ident: str = "1") -> Event:
    attributes = {"specversion": "1.0", "id": ident, "source": "/tests/ui", "type": ORDER_TYPE}
    if time is not None:
        attributes["time"] = time
    return Event(attributes, b"{}")


async def test_types_lists_every_consumed_type_with_its_doors(tmp_path: Path) -> None:
    """Each consumed type comes with its facade path, WebSocket message type, reply and schema."""
    async with function(tmp_path) as (_, client):
        body = (await client.get("/api/v1/types")).json()
    listed = {t["type"]: t for t in body["types"]}
    assert list(listed) == [ORDER_TYPE, AUDIT_TYPE, TICKET_TYPE]
    assert body["default"] == ORDER_TYPE
    order, audit = listed[ORDER_TYPE], listed[AUDIT_TYPE]
    assert (order["name"], order["message_type"], order["facade_path"]) == (
        "order",
        "order",
        "/api/v1/order",
    )
    assert order["reply"] == "com.example.order.accepted"
    assert (audit["name"], audit["facade_path"], audit["reply"]) == (
        None,
        f"/api/v1/events/{AUDIT_TYPE}",
        None,
    )
    assert order["json_schema"]["required"] == ["sku", "quantity"]


async def test_status_of_a_function_on_its_embedded_stores(tmp_path: Path) -> None:
    """Ready with its reason, no sink, a dedupe window as long as the TTL, no Redis, open."""
    async with function(tmp_path, dedupe_ttl_seconds=300) as (_, client):
        status = (await client.get("/api/v1/status")).json()
    assert status["readiness"]["ready"] is True
    assert status["readiness"]["reason"].startswith("start-up is done")
    assert status["outbox"] == {
        "sink": None,
        "depth": 0,
        "oldest": None,
        "oldest_age_seconds": None,
        "error": None,
    }
    assert status["dedupe"] == {"store": "memory", "ttl_seconds": 300.0, "window_seconds": 300.0}
    assert status["redis"] == {"configured": False, "mode": None}
    assert status["auth"] == {"deliveries": "open", "facade": []}
    assert status["deadletters"] == "sqlite"


async def test_status_says_how_long_the_oldest_event_has_waited(tmp_path: Path) -> None:
    """With events parked for K_SINK, the depth and the age of the oldest are shown."""
    sink = f"http://127.0.0.1:{support.free_port()}"
    async with function(tmp_path, k_sink=sink) as (app, client):
        outbox = app.state.runtime.publisher.outbox
        await outbox.park(event("2026-01-01T00:00:00Z", "a"), attempts=1, delay=3600, error="x")
        await outbox.park(event("2026-01-02T00:00:00Z", "b"), attempts=1, delay=3600, error="x")
        status = (await client.get("/api/v1/status")).json()
    assert status["outbox"]["sink"] == sink
    assert status["outbox"]["depth"] == 2
    assert status["outbox"]["oldest"] == "2026-01-01T00:00:00Z"
    assert status["outbox"]["oldest_age_seconds"] > 86400


async def test_status_with_redis_names_its_mode_and_the_shared_stores(tmp_path: Path) -> None:
    """With REDIS_URL the dedupe store and the inbox are Redis, in REDIS_MODE's mode."""
    async with function(tmp_path, redis_url=support.redis_url(15)) as (_, client):
        status = (await client.get("/api/v1/status")).json()
    assert status["redis"] == {"configured": True, "mode": "standalone"}
    assert status["dedupe"]["store"] == "redis"
    assert status["deadletters"] == "redis"
    assert status["readiness"]["ready"] is True


async def test_status_names_the_authentication_that_is_on(tmp_path: Path) -> None:
    """Behind API keys the status is refused without one and says `api_keys` with one."""
    async with function(tmp_path, api_keys="k1") as (_, client):
        refused = await client.get("/api/v1/status")
        types = await client.get("/api/v1/types")
        allowed = await client.get("/api/v1/status", headers={"X-API-Key": "k1"})
    assert (refused.status_code, types.status_code) == (401, 401)
    assert refused.headers["content-type"] == "application/problem+json"
    assert allowed.json()["auth"] == {"deliveries": "open", "facade": ["api_keys"]}


@pytest.fixture(params=["sqlite", "redis"])
def open_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Outbox]:
    if request.param == "redis":
        url = support.redis_url(15)
        return lambda: RedisOutbox(redis_client(url, 1.0))
    return lambda: SQLiteOutbox(tmp_path / "outbox.sqlite3")


async def test_oldest_is_the_earliest_event_time_in_the_outbox(
    open_outbox: Callable[[], Outbox],
) -> None:
    """Whatever order they were parked and are due in, the earliest `time` is the oldest."""
    outbox = open_outbox()
    try:
        assert await outbox.oldest() is None
        await outbox.park(event("2026-03-01T10:00:00+02:00", "a"), attempts=1, delay=1, error="")
        await outbox.park(event("2026-03-01T07:59:00Z", "b"), attempts=1, delay=50, error="")
        await outbox.park(event(None, "c"), attempts=1, delay=0, error="")
        assert await outbox.oldest() == "2026-03-01T07:59:00Z"
    finally:
        await outbox.stop()


async def test_oldest_is_none_when_no_event_says_its_time(
    open_outbox: Callable[[], Outbox],
) -> None:
    """Events without a `time` attribute give no age rather than a wrong one."""
    outbox = open_outbox()
    try:
        await outbox.park(event(None, "a"), attempts=1, delay=0, error="")
        await outbox.park(event("yesterday", "b"), attempts=1, delay=0, error="")
        assert await outbox.oldest() is None
    finally:
        await outbox.stop()
