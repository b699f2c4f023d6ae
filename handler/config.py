"""Settings: read from the environment once, in the app factory, and passed in from there.

Nothing reads `os.environ` anywhere else; tests build their own `Settings(...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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

    # CloudEvents
    event_source: str = Field(
        default="/knative-python-backend",
        min_length=1,
        description="The `source` of reply and published events.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_batch_events: int = Field(
        default=100, ge=1, description="Most events in one batched request (413 above)."
    )
    handler_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time budget of one handler call (504 above, retried)."
    )

    # Duplicates
    dedupe_ttl_seconds: float = Field(
        default=24 * 3600, gt=0, description="How long a handled event's reply is replayed."
    )
    dedupe_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long an in-progress claim holds (409 to redeliveries meanwhile).",
    )
    dedupe_max_entries: int = Field(
        default=100_000, ge=1, description="Size bound of the in-memory dedupe store."
    )

    # Stores and sinks
    redis_url: str | None = Field(
        default=None, description="Redis for dedupe, outbox, dead letters and the live feed."
    )
    data_dir: Path = Field(default=Path("data"), description="Where embedded SQLite stores live.")
    k_sink: str | None = Field(default=None, description="SinkBinding: where to publish events.")
    k_ce_overrides: str | None = Field(
        default=None, description='SinkBinding: JSON `{"extensions": {...}}` for published events.'
    )

    # Shutdown
    shutdown_grace_seconds: float = Field(
        default=20.0, ge=0, description="Time in-flight work gets to finish after SIGTERM."
    )

    # Security (issue-specific fields are added where their features live)
    api_keys: CommaList = Field(
        default_factory=list, description="Comma-separated API keys for the facade."
    )
    cors_origins: CommaList = Field(
        default_factory=lambda: ["http://localhost:8501"],
        description="Comma-separated origins allowed by CORS.",
    )
