"""The quote function's tests: its settings from the environment, its calls, its retries."""

from __future__ import annotations

import httpx
import pytest
import respx

from eventfn import create_app
from eventfn.testing import app_client, isolated_settings
from examples.pricing.function import registry


async def test_a_quote_calls_pricing_once_then_answers_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first quote of a SKU calls the pricing service with the token; the next one not."""
    monkeypatch.setenv("QUOTES_PRICING_URL", "http://pricing.test")
    monkeypatch.setenv("QUOTES_PRICING_TOKEN", "s3cret")
    app = create_app(isolated_settings(), registry=registry)
    with respx.mock() as mock:
        route = mock.get("http://pricing.test/prices/book").mock(
            return_value=httpx.Response(200, json={"price": 12.5})
        )
        async with app_client(app) as client:
            first = await client.post("/api/v1/quote", json={"sku": "book"})
            second = await client.post("/api/v1/quote", json={"sku": "book"})
    assert first.json() == second.json() == {"sku": "book", "price": 12.5, "currency": "EUR"}
    assert route.call_count == 1
    assert route.calls[0].request.headers["authorization"] == "Bearer s3cret"


async def test_a_pricing_outage_is_a_retry() -> None:
    """A 5xx from pricing answers 503 with Retry-After: the broker redelivers later."""
    app = create_app(isolated_settings(), registry=registry)
    with respx.mock() as mock:
        mock.get("http://pricing.shop.svc/prices/pen").mock(return_value=httpx.Response(502))
        async with app_client(app) as client:
            response = await client.post("/api/v1/quote", json={"sku": "pen"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
