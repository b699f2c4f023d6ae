"""eventfn: the runtime of a CloudEvents function on Knative. This module is its public API.

    from eventfn import Catalogue, EventSpec, Registry

    ORDER = EventSpec(type="com.example.order.placed", model=Order, description="...",
                      consumes=True, reply=ACCEPTED)
    CATALOGUE = Catalogue((ORDER, ...))
    registry = Registry(CATALOGUE)

    @registry.handles(ORDER)
    async def place(order: Order) -> Accepted: ...

    app = create_app(Settings(), registry=registry)      # the ASGI app (or `python -m eventfn`)

`eventfn.testing` has what a function's tests need (an in-process client, isolated settings).
Everything else (`eventfn.binding`, `eventfn.ingress`, ...) is the runtime's inside: it may change
without notice, and `make lint` keeps `handler/` and `schemas/` from importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventfn.dispatch.catalogue import Catalogue, EventSpec
from eventfn.dispatch.registry import Handler, Progress, Registry

if TYPE_CHECKING:
    from eventfn.app import FunctionApp, create_app
    from eventfn.core.config import Settings
    from eventfn.core.errors import FunctionError

__all__ = [
    "Catalogue",
    "EventSpec",
    "FunctionApp",
    "FunctionError",
    "Handler",
    "Progress",
    "Registry",
    "Settings",
    "create_app",
]

# Imported when first asked for: `schemas/` imports this package for EventSpec, and must not pay
# for the app factory (the server, the stores, pydantic-settings) at import.
_LAZY = {
    "FunctionApp": "eventfn.app",
    "create_app": "eventfn.app",
    "Settings": "eventfn.core.config",
    "FunctionError": "eventfn.core.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventfn' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
