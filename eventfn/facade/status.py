"""Read-only views for a person on call: the consumed types and where to send them, and status.

`GET /api/v1/types` lists what the function consumes with the names every door knows it by
(facade path, WebSocket message type) and its JSON Schema inline, so a client builds its forms
from one request. `GET /api/v1/status` says what the probes and `/metrics` only hint at:
readiness with its reason, the outbox, the dedupe window, the Redis mode, which authentication
is on. Both sit behind the facade's authentication like every other `/api/v1` route.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from eventfn.facade.openapi import problems
from eventfn.ingress import probes

if TYPE_CHECKING:
    from eventfn.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["status"])

_REASONS = {
    "ready": "start-up is done; the function takes deliveries and facade calls",
    "starting": "start-up has not finished (stores and components are opening)",
    "draining": "shutting down (SIGTERM): new work goes to other replicas",
    "redis-unavailable": "Redis cannot serve the stores now (unreachable, read-only after a "
    "failover, or not in REDIS_MODE's mode): out of the Service's endpoints until it is back",
    "data-dir-unavailable": "DATA_DIR cannot be created or written (a read-only or missing "
    "volume): the embedded stores answer 503 until it can",
}


class ConsumedType(BaseModel):
    type: str
    description: str
    name: str | None
    message_type: str  # the `type` of the WebSocket message asking for it
    facade_path: str
    reply: str | None
    json_schema: dict[str, Any]


class TypeList(BaseModel):
    types: list[ConsumedType]
    default: str | None


class Readiness(BaseModel):
    ready: bool
    status: str
    reason: str


class OutboxStatus(BaseModel):
    sink: str | None  # K_SINK; without one nothing is published and the outbox stays empty
    depth: int | None  # None: the store did not answer
    oldest: str | None  # the CloudEvents time of the longest-waiting event
    oldest_age_seconds: float | None
    error: str | None


class DedupeStatus(BaseModel):
    store: Literal["memory", "redis"]
    ttl_seconds: float
    window_seconds: float


class RedisStatus(BaseModel):
    configured: bool
    mode: str | None


class AuthStatus(BaseModel):
    deliveries: Literal["oidc", "open"]
    facade: list[Literal["api_keys", "oidc"]]


class Status(BaseModel):
    readiness: Readiness
    outbox: OutboxStatus
    dedupe: DedupeStatus
    redis: RedisStatus
    auth: AuthStatus
    deadletters: Literal["sqlite", "redis"]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/types", response_model=TypeList, summary="List the consumed types and their doors")
async def list_types(request: Request) -> TypeList:
    """Every consumed type: its facade path, WebSocket message type, reply and JSON Schema."""
    catalogue = _runtime(request).catalogue
    default = catalogue.default
    return TypeList(
        types=[
            ConsumedType(
                type=spec.type,
                description=spec.description,
                name=spec.name,
                message_type=spec.message_type,
                facade_path=spec.facade_path,
                reply=spec.reply.type if spec.reply is not None else None,
                json_schema=spec.json_schema(),
            )
            for spec in catalogue.consumed
        ],
        default=default.type if default is not None else None,
    )


async def _readiness(runtime: Runtime) -> Readiness:
    """What `GET /health/readiness` answers now, with the reason a person needs."""
    code, body = probes.readiness(runtime)
    status = body["status"]
    if code == 200 and not await probes.stores_usable(runtime):
        code, status = 503, probes.unusable(runtime)
    return Readiness(ready=code == 200, status=status, reason=_REASONS.get(status, status))


async def _outbox(runtime: Runtime) -> OutboxStatus:
    publisher = runtime.publisher
    if publisher is None:
        return OutboxStatus(sink=None, depth=0, oldest=None, oldest_age_seconds=None, error=None)
    sink = runtime.settings.k_sink
    try:
        depth = await publisher.outbox.depth()
        oldest = await publisher.outbox.oldest() if depth else None
    except Exception as exc:  # a store outage is what this page is for: say it, do not fail
        return OutboxStatus(
            sink=sink, depth=None, oldest=None, oldest_age_seconds=None, error=type(exc).__name__
        )
    age = None
    if oldest is not None:
        age = max(0.0, (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds())
    return OutboxStatus(sink=sink, depth=depth, oldest=oldest, oldest_age_seconds=age, error=None)


@router.get(
    "/status",
    response_model=Status,
    summary="Readiness, outbox, dedupe window, Redis mode and authentication",
    responses=problems(503),
)
async def get_status(request: Request) -> Status:
    """What a person on call checks first; read-only, cheap (no scan of any store)."""
    runtime = _runtime(request)
    settings = runtime.settings
    redis = bool(settings.redis_url)
    return Status(
        readiness=await _readiness(runtime),
        outbox=await _outbox(runtime),
        dedupe=DedupeStatus(
            store="redis" if redis else "memory",
            ttl_seconds=settings.dedupe_ttl_seconds,
            window_seconds=runtime.dedupe.window(),
        ),
        redis=RedisStatus(configured=redis, mode=settings.redis_mode if redis else None),
        auth=AuthStatus(
            deliveries="oidc" if settings.oidc_audience else "open",
            facade=[
                *(["api_keys"] if settings.api_keys else []),
                *(["oidc"] if settings.oidc_audience else []),
            ],
        ),
        deadletters="redis" if redis else "sqlite",
    )
