"""What a function's own tests need: settings that ignore the environment, an in-process client.

    from eventfn.testing import function_client
    from shop.functions import registry  # the function under test: its Registry

    async def test_an_order_is_accepted() -> None:
        async with function_client(registry) as client:
            response = await client.post("/api/v1/order", json={"sku": "book", "quantity": 2})
        assert response.status_code == 200

The client talks to the ASGI app in the test's own event loop (httpx's ASGITransport), with the
app's lifespan running, so start-up and shutdown happen as they do in production.

`local_broker` puts a Knative Broker in front of it (`LocalBroker`, from `eventing/` or the
catalogue): Trigger filters, the delivery policy's retries, replies routed back, dead letters:

    async def test_an_urgent_order_is_routed() -> None:
        async with local_broker(registry, eventing="eventing") as broker:
            [dispatch] = await broker.send({"specversion": "1.0", "id": "1", "source": "/shop",
                                            "type": "com.acme.order.placed", "region": "eu",
                                            "data": {"sku": "book"}})
        assert dispatch.trigger.endswith("-eu-urgent") and dispatch.reply is not None
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from eventfn._broker import Attempt, Dispatch, LocalBroker
from eventfn.core.config import Settings

if TYPE_CHECKING:
    import httpx

    from eventfn.app import FunctionApp
    from eventfn.dispatch.registry import Registry


__all__ = [
    "Attempt",
    "Dispatch",
    "LocalBroker",
    "app_client",
    "function_client",
    "isolated_settings",
    "local_broker",
]


class _IsolatedSettings(Settings):
    """`Settings` whose only source is its keyword arguments (no environment, no files)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def isolated_settings(**values: Any) -> Settings:
    """Settings from `values` and the defaults only, never from the shell's environment."""
    return _IsolatedSettings(**{"log_format": "json", "log_level": "warning", **values})


@contextlib.asynccontextmanager
async def app_client(app: FunctionApp) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of `app`, with its lifespan running."""
    import httpx

    async with app.lifespan_context():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as client:
            yield client


@contextlib.asynccontextmanager
async def function_client(registry: Registry, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the function built on `registry` with settings `settings`."""
    from eventfn.app import create_app

    async with app_client(create_app(isolated_settings(**settings), registry=registry)) as client:
        yield client


@contextlib.asynccontextmanager
async def local_broker(
    registry: Registry,
    *,
    eventing: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[LocalBroker]:
    """A `LocalBroker` delivering to the function built on `registry` (its lifespan running).

    Its Triggers are those rendered under `eventing` (what the cluster gets), or without it the
    catalogue's own (one per route or consumed type, no retries unless `delivery=` says so).
    `options` go to the broker (`sleep=`, `ttl=`, `subscribers=`, `delivery=`...).
    """
    from eventfn.app import create_app

    app = create_app(isolated_settings(**(settings or {})), registry=registry)
    async with app.lifespan_context():
        if eventing is not None:
            broker = LocalBroker.from_eventing(eventing, app=app, **options)
        else:
            broker = LocalBroker.from_catalogue(registry.catalogue, app=app, **options)
        async with broker:
            yield broker
