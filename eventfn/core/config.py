"""Settings: read from the environment once, in the app factory, and passed in from there.

Nothing reads `os.environ` anywhere else; tests build their own `Settings(...)`.

Over 350 lines on purpose: it is one pydantic model, the function's whole environment with one
field per variable, and the settings reference (docs/reference/configuration.md, `make
docs-reference`) is generated from it, so a split would scatter one list over several files.
`following_deliveries` stays beside the model because it rebuilds one (what was set explicitly,
validated again), while `eventfn.core.policy`, which `Settings` imports, knows nothing of
settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from eventfn.core import policy
from eventfn.core.policy import BROKER_DELIVERY, BrokerDelivery

DEFAULT_HANDLER_TIMEOUT = 30.0


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# A list given as one comma-separated environment variable (`API_KEYS=a,b`).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_csv)]


class Settings(BaseSettings):
    """Everything the function can be told from its environment (names are the env variables)."""

    model_config = SettingsConfigDict(
        env_file=None,
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    # Serving
    host: str = Field(default="0.0.0.0", description="Interface to listen on.")  # noqa: S104
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port to listen on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Minimum level of log lines."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="json lines, a readable console, or auto (console on a terminal).",
    )
    function_registry: str = Field(
        default="handler.functions:registry",
        min_length=1,
        description=(
            "The function's handlers, as an import string `module.path:attribute` naming an "
            "eventfn.Registry (`python -m eventfn serve TARGET` overrides it)."
        ),
    )

    # CloudEvents
    event_source: str = Field(
        default="/knative-python-backend",
        min_length=1,
        description="The `source` of reply and published events.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    deadletter_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest request body the dead-letter sink accepts (413 above): larger than "
            "MAX_BODY_BYTES, so an event dead-lettered for being too large is still kept."
        ),
    )
    max_batch_events: int = Field(
        default=100, ge=1, description="Most events in one batched request (413 above)."
    )
    handler_timeout_seconds: float = Field(
        default=DEFAULT_HANDLER_TIMEOUT,
        gt=0,
        description="Time budget of one handler call (504 above, retried).",
    )

    # Duplicates
    dedupe_ttl_seconds: float = Field(
        default=policy.dedupe_window(DEFAULT_HANDLER_TIMEOUT),
        gt=0,
        description=(
            "How long a handled event's reply is replayed: the broker's longest redelivery span "
            "(retries, backoff, a handler timeout per attempt) twice over, in whole minutes."
        ),
    )
    dedupe_lease_seconds: float = Field(
        default=BROKER_DELIVERY.claim_lease(),
        gt=0,
        description=(
            "How long an in-progress claim holds unless its handler renews it (409 to "
            "redeliveries meanwhile); derived from the broker's retry policy: half its last "
            "retry interval, so an orphaned claim never outlives the retries."
        ),
    )
    dedupe_max_entries: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Replies the in-memory dedupe store keeps at most; unset, none: it keeps each for "
            "DEDUPE_TTL_SECONDS, within DEDUPE_MAX_BYTES."
        ),
    )
    dedupe_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=4096,
        description=(
            "Memory the in-memory dedupe store's replies may take; when full, the oldest go "
            "before their TTL (function_dedupe_window_seconds shows the window left)."
        ),
    )

    # Stores and sinks
    redis_url: str | None = Field(
        default=None,
        description=(
            "Redis for dedupe, outbox, dead letters and the live feed. Cluster: any one node. "
            "Sentinel: only the database, password and TLS options (host and port are ignored)."
        ),
    )
    redis_mode: Literal["standalone", "cluster", "sentinel"] = Field(
        default="standalone",
        description="One Redis server, a Redis Cluster, or a master found through Sentinel.",
    )
    redis_sentinels: CommaList = Field(
        default_factory=list,
        description="Sentinel mode: comma-separated host:port of the sentinels.",
    )
    redis_sentinel_master: str | None = Field(
        default=None, description="Sentinel mode: the name the sentinels monitor the master by."
    )
    redis_max_connections: int = Field(
        default=500,
        ge=1,
        description=(
            "Redis connections per server at most (shared by every store); when all are taken "
            "a command waits up to REDIS_TIMEOUT_SECONDS for one."
        ),
    )
    data_dir: Path = Field(default=Path("data"), description="Where embedded SQLite stores live.")
    k_sink: str | None = Field(default=None, description="SinkBinding: where to publish events.")
    k_ce_overrides: str | None = Field(
        default=None, description='SinkBinding: JSON `{"extensions": {...}}` for published events.'
    )
    k_ca_certs: str | None = Field(
        default=None,
        description="SinkBinding (transport-encryption): PEM of the CA to trust for K_SINK.",
    )
    knative_custom_certs_dir: Path = Field(
        default=Path("/knative-custom-certs"),
        description="Trust bundles to add to the system CAs when publishing (PEM files).",
    )
    oidc_sink_token_file: Path = Field(
        default=Path("/oidc/token"),
        description="SinkBinding (authentication-oidc): the token sent to K_SINK as a bearer.",
    )

    # Shutdown
    shutdown_grace_seconds: float = Field(
        default=20.0, ge=0, description="Time in-flight work gets to finish after SIGTERM."
    )

    # Delivery guarantees (issue 3): Redis stores, K_SINK publisher, outbox, drain
    redis_timeout_seconds: float = Field(
        default=2.0, gt=0, description="Connect/read timeout of Redis calls (503 above)."
    )
    publish_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Time budget of one HTTP attempt to K_SINK."
    )
    publish_attempts: int = Field(
        default=4, ge=1, description="HTTP attempts per event before it is parked in the outbox."
    )
    publish_backoff_seconds: float = Field(
        default=0.2, ge=0, description="Base of the exponential backoff (full jitter) of retries."
    )
    publish_backoff_max_seconds: float = Field(
        default=10.0, ge=0, description="Longest wait between two attempts (Retry-After too)."
    )
    publish_refused_hold_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long an event the sink refused with 401/403 waits in the outbox before "
        "the next try (a token or an EventPolicy is fixed outside the event).",
    )
    publish_max_connections: int = Field(
        default=100, ge=1, description="Connection pool size of the publisher's HTTP client."
    )
    outgoing_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Timeout of each phase of a request of the handlers' client (`ctx.http`).",
    )
    outgoing_max_connections: int = Field(
        default=100, ge=1, description="Connection pool size of the handlers' client (`ctx.http`)."
    )
    publish_flush_seconds: float = Field(
        default=5.0, ge=0, description="At shutdown, time pending publishes get before parking."
    )
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the outbox looks for events due for redelivery."
    )
    outbox_backoff_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait between two redeliveries of a parked event."
    )
    outbox_batch_size: int = Field(
        default=100, ge=1, description="Most parked events redelivered per poll."
    )
    shutdown_delay_seconds: float = Field(
        default=0.0,
        ge=0,
        description="After SIGTERM, keep listening (readiness 503, new work 503) this long first.",
    )

    # Security (issue-specific fields are added where their features live)
    api_keys: CommaList = Field(
        default_factory=list, description="Comma-separated API keys for the facade."
    )
    cors_origins: CommaList = Field(
        default_factory=lambda: ["http://localhost:8501"],
        description="Comma-separated origins allowed by CORS.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description=(
            "Peers whose X-Forwarded-For/-Proto the facade trusts (uvicorn's setting; Knative's "
            "queue-proxy connects from 127.0.0.1)."
        ),
    )

    # Security: OIDC (Knative Eventing `authentication-oidc`) and request limits (handler/auth.py,
    # handler/security.py). OIDC_AUDIENCE set = deliveries require a token; the facade then too.
    oidc_audience: str | None = Field(
        default=None, description="Expected `aud` of delivery tokens; setting it turns OIDC on."
    )
    oidc_issuer: str | None = Field(
        default=None, description="Expected `iss`; its discovery document locates the JWKS."
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL, used directly instead of issuer discovery."
    )
    oidc_allowed_subjects: CommaList = Field(
        default_factory=list,
        description="Comma-separated `sub` prefixes allowed (403 otherwise); empty allows any.",
    )
    oidc_leeway_seconds: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew tolerated on exp/nbf/iat."
    )
    oidc_jwks_min_refresh_seconds: float = Field(
        default=30.0, ge=0, description="Least time between two JWKS fetches (unknown `kid`)."
    )
    oidc_jwks_max_age_seconds: float = Field(
        default=3600.0, gt=0, description="Age after which cached keys are refetched."
    )
    oidc_http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of one discovery/JWKS request (503 above)."
    )
    oidc_ca_file: Path | None = Field(
        default=None, description="CA bundle for the issuer (in-cluster: the service CA)."
    )
    oidc_jwks_token_file: Path | None = Field(
        default=None,
        description="Bearer token file sent with JWKS requests (the pod's service-account token).",
    )
    max_header_count: int = Field(
        default=100, ge=10, description="Most request header fields accepted (431 above)."
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Time a request head may take to arrive (one to two of these; 408 and closed after): "
            "connections that trickle their headers are not kept open."
        ),
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=4096, description="Largest total of header names+values (431 above)."
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Time a request body may take to arrive once its read began (408 after, within a "
            "quarter more): on `POST /`, `POST /deadletter` and the facade."
        ),
    )

    # WebSocket and live feed (issue 5: handler/ws.py, handler/feed.py)
    ws_max_message_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest WebSocket message accepted (error above)."
    )
    ws_max_in_flight: int = Field(
        default=8, ge=1, description="Most queries in flight on one WebSocket (error above)."
    )
    ws_rate_per_second: float = Field(
        default=20.0, gt=0, description="Sustained messages per second one WebSocket may send."
    )
    ws_rate_burst: int = Field(
        default=40, ge=1, description="Messages a WebSocket may send at once above that rate."
    )
    feed_channel: str = Field(
        default="knative-fn:feed",
        min_length=1,
        description="Redis pub/sub channel of the live feed (the database number is appended).",
    )
    feed_queue_size: int = Field(
        default=1000, ge=1, description="Events waiting for the feed pump (dropped above)."
    )
    feed_subscriber_queue: int = Field(
        default=100, ge=1, description="Events waiting for one subscriber (dropped as slow above)."
    )
    feed_probe_seconds: float = Field(
        default=1.0, gt=0, description="How often a replica asks Redis whether others listen."
    )

    # Observability (issue 7: handler/metrics.py, handler/tracing.py)
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector: spans are exported there when set (the `otel` extra).",
    )

    @model_validator(mode="after")
    def _refused_events_wait_in_the_outbox(self) -> Self:
        # A refusal holds the event longer than the in-memory retries wait: it goes to the outbox.
        if self.publish_refused_hold_seconds <= self.publish_backoff_max_seconds:
            raise ValueError(
                "PUBLISH_REFUSED_HOLD_SECONDS must exceed PUBLISH_BACKOFF_MAX_SECONDS "
                f"({self.publish_refused_hold_seconds:g} <= {self.publish_backoff_max_seconds:g})"
            )
        return self

    @model_validator(mode="after")
    def _redis_mode_is_complete(self) -> Self:
        sentinel = self.redis_mode == "sentinel" and self.redis_url
        if sentinel and not (self.redis_sentinels and self.redis_sentinel_master):
            raise ValueError("REDIS_MODE=sentinel needs REDIS_SENTINELS and REDIS_SENTINEL_MASTER")
        return self

    @model_validator(mode="after")
    def _lease_survives_a_slow_renewal(self) -> Self:
        # A running handler renews its claim every third of the lease; a renewal that takes the
        # whole Redis timeout must still land before the lease ends, or a redelivery could run
        # the handler a second time.
        if self.redis_url and self.dedupe_lease_seconds <= 1.5 * self.redis_timeout_seconds:
            raise ValueError(
                "DEDUPE_LEASE_SECONDS must exceed 1.5 x REDIS_TIMEOUT_SECONDS "
                f"({self.dedupe_lease_seconds:g} <= 1.5 x {self.redis_timeout_seconds:g})",
            )
        return self


def following_deliveries(settings: Settings, deliveries: Iterable[BrokerDelivery]) -> Settings:
    """`settings` with the dedupe window and claim lease derived from the Triggers' delivery
    policies (`policy.window_for`, `policy.lease_for`), unless they were set explicitly.

    The one derivation of both numbers: the runtime applies it to the catalogue it serves, and
    `make manifests` to the ConfigMap it renders, so a type with a longer retry policy widens
    the window in both.
    """
    chosen = list(deliveries)
    if not chosen:
        return settings
    update: dict[str, float] = {}
    if "dedupe_ttl_seconds" not in settings.model_fields_set:
        update["dedupe_ttl_seconds"] = policy.window_for(chosen, settings.handler_timeout_seconds)
    if "dedupe_lease_seconds" not in settings.model_fields_set:
        update["dedupe_lease_seconds"] = policy.lease_for(chosen)
    # Nothing to rebuild when the derivation gives what the settings hold (the usual case).
    update = {k: v for k, v in update.items() if getattr(settings, k) != v}
    if not update:
        return settings
    # Validated again: the derived lease must still satisfy the Redis timeout rule above.
    return type(settings).model_validate({**settings.model_dump(), **update})
