"""eventfn: the runtime of a CloudEvents function on Knative. This module is its public API.

    from eventfn import Catalogue, EventContext, EventSpec, Registry, Reject, Retry

    ORDER = EventSpec(type="com.example.order.placed", model=Order, description="...",
                      consumes=True, reply=ACCEPTED)
    CATALOGUE = Catalogue((ORDER, ...))
    registry = Registry(CATALOGUE)

    @registry.handles(ORDER)
    async def place(order: Order, ctx: EventContext) -> Accepted:
        if not order.items:
            raise Reject("an order needs items")             # 422: dead-lettered, not retried
        if not pricing.up:
            raise Retry("pricing is down", retry_after=5)    # 503 + Retry-After: redelivered
        await ctx.publish(INVENTORY_RESERVE, Reserve(...))   # leaves only if this succeeds
        return Accepted(order_id=ctx.idempotency_key)

    app = create_app(Settings(), registry=registry)      # the ASGI app (or `python -m eventfn`)

`eventfn.testing` has what a function's tests need (an in-process client, isolated settings).
Everything else (`eventfn.binding`, `eventfn.ingress`, ...) is the runtime's inside: it may change
without notice, and `make lint` keeps `handler/` and `schemas/` from importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventfn.core.policy import Delivery
from eventfn.dispatch.catalogue import Catalogue, EventSpec
from eventfn.dispatch.context import EventContext
from eventfn.dispatch.registry import Handler, Progress, Registry
from eventfn.routing.filters import CESQL, AllOf, AnyOf, Exact, Not, Prefix, Route, Suffix

if TYPE_CHECKING:
    from eventfn.app import FunctionApp, create_app
    from eventfn.core.config import Settings
    from eventfn.core.errors import FunctionError, Reject, Retry
    from eventfn.ingress.probes import readiness
    from eventfn.loading import RegistryNotFound, load_registry

__all__ = [
    "CESQL",
    "AllOf",
    "AnyOf",
    "Catalogue",
    "Delivery",
    "EventContext",
    "EventSpec",
    "Exact",
    "FunctionApp",
    "FunctionError",
    "Handler",
    "Not",
    "Prefix",
    "Progress",
    "Registry",
    "RegistryNotFound",
    "Reject",
    "Retry",
    "Route",
    "Settings",
    "Suffix",
    "create_app",
    "load_registry",
    "readiness",
]

# Imported when first asked for: `schemas/` imports this package for EventSpec, and must not pay
# for the app factory (the server, the stores, pydantic-settings) at import.
_LAZY = {
    "FunctionApp": "eventfn.app",
    "create_app": "eventfn.app",
    "Settings": "eventfn.core.config",
    "FunctionError": "eventfn.core.errors",
    "Reject": "eventfn.core.errors",
    "Retry": "eventfn.core.errors",
    # The entry points' resolver of `module:registry` strings, and the readiness answer, for
    # the hosts that serve the function themselves (func's `function/`).
    "load_registry": "eventfn.loading",
    "RegistryNotFound": "eventfn.loading",
    "readiness": "eventfn.ingress.probes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventfn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
