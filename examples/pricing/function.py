"""A quote function: its own settings, a client opened at start-up, calls with `ctx.http`."""

from __future__ import annotations

# --8<-- [start:settings]
from collections.abc import AsyncIterator

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventfn import Catalogue, Delivery, EventContext, EventSpec, Registry, Retry


class QuoteSettings(BaseSettings):
    """Read from QUOTES_* when the app is built; `make manifests` puts the defaults into the
    ConfigMap and QUOTES_PRICING_TOKEN among the Secret's keys."""

    model_config = SettingsConfigDict(env_prefix="QUOTES_")
    pricing_url: str = "http://pricing.shop.svc"
    pricing_token: SecretStr = SecretStr("")
    currency: str = "EUR"


# --8<-- [end:settings]


class QuoteRequest(BaseModel):
    sku: str


class Quote(BaseModel):
    sku: str
    price: float
    currency: str


# --8<-- [start:delivery]
QUOTE = EventSpec("com.example.quote.given", Quote, "A price quote.")
QUOTE_REQUEST = EventSpec(
    "com.example.quote.requested",
    QuoteRequest,
    "A request for a price quote.",
    consumes=True,
    reply=QUOTE,
    name="quote",
    # Its Triggers retry 8 times, 2 s apart and doubling, each attempt cut at 10 s.
    delivery=Delivery(retry=8, backoff_delay=2.0, timeout=10.0),
)
# --8<-- [end:delivery]
registry = Registry(Catalogue((QUOTE_REQUEST,)), settings=QuoteSettings)


# --8<-- [start:lifespan]
class Prices:
    """What the lifespan opens: here a cache of prices, closed at shutdown."""

    def __init__(self) -> None:
        self.cached: dict[str, float] = {}
        self.closed = False


@registry.lifespan
async def prices(settings: QuoteSettings) -> AsyncIterator[Prices]:
    cache = Prices()  # opened before readiness turns true
    yield cache  # handlers see it as ctx.state
    cache.closed = True  # after the drain, once the last request was answered


@registry.handles(QUOTE_REQUEST)
async def quote(request: QuoteRequest, ctx: EventContext) -> Quote:
    settings: QuoteSettings = ctx.settings
    cache: Prices = ctx.state
    if request.sku not in cache.cached:
        # The runtime's client: the event's trace context, OUTGOING_TIMEOUT_SECONDS, a metric
        # per host (function_outgoing_requests_total), closed when the function stops.
        response = await ctx.http.get(
            f"{settings.pricing_url}/prices/{request.sku}",
            headers={"authorization": f"Bearer {settings.pricing_token.get_secret_value()}"},
        )
        if response.status_code >= 500:
            raise Retry("the pricing service is down", retry_after=5)
        cache.cached[request.sku] = response.json()["price"]
    return Quote(sku=request.sku, price=cache.cached[request.sku], currency=settings.currency)


# --8<-- [end:lifespan]
