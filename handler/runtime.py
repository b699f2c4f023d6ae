"""The per-process runtime: stores, dispatcher and lifecycle state, built once by the app factory.

Building it does no I/O (so importing and creating the app stay cheap); `lifespan` opens what
needs opening, flips readiness, and closes everything on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from handler.config import Settings
from handler.dedupe import DedupeStore, MemoryDedupeStore
from handler.dispatch import Dispatcher
from handler.logs import get_logger
from handler.registry import Registry, Route
from schemas import Catalogue

log = get_logger("handler.runtime")


def build_dedupe(settings: Settings) -> DedupeStore:
    """The dedupe store the settings ask for."""
    return MemoryDedupeStore(
        ttl=settings.dedupe_ttl_seconds,
        lease=settings.dedupe_lease_seconds,
        max_entries=settings.dedupe_max_entries,
    )


@dataclass
class Runtime:
    """Everything a request needs that outlives the request."""

    settings: Settings
    catalogue: Catalogue
    routes: Mapping[str, Route]
    dedupe: DedupeStore
    dispatcher: Dispatcher
    ready: bool = False
    draining: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, registry: Registry, catalogue: Catalogue) -> Runtime:
        routes = registry.routes(catalogue)
        dedupe = build_dedupe(settings)
        return cls(
            settings=settings,
            catalogue=catalogue,
            routes=routes,
            dedupe=dedupe,
            dispatcher=Dispatcher(routes, dedupe, settings),
        )

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Start-up, readiness, and drain: the FastAPI lifespan of the function."""
        log.info(
            "starting",
            consumes=sorted(self.routes),
            source=self.settings.event_source,
            dedupe=type(self.dedupe).__name__,
        )
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            self.draining = True
            await self.dedupe.aclose()
            log.info("stopped")
