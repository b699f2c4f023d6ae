"""What the function says at start-up about who it lets in."""

from __future__ import annotations

from eventfn.core.config import Settings
from eventfn.observability.logs import get_logger

log = get_logger("eventfn.auth")


def log_posture(settings: Settings) -> None:
    """Say at start-up who is let in; loudly when nobody is asked for credentials."""
    if not settings.api_keys and not settings.oidc_audience:
        log.warning(
            "running_open",
            detail="neither API_KEYS nor OIDC_AUDIENCE is set: deliveries, /api/v1 and the "
            "WebSocket accept anyone. Fine on a laptop; never in a cluster.",
        )
        return
    log.info(
        "auth_enabled",
        deliveries="oidc" if settings.oidc_audience else "open",
        facade=[
            *(["api_keys"] if settings.api_keys else []),
            *(["oidc"] if settings.oidc_audience else []),
        ],
        api_key_count=len(settings.api_keys),
    )
    if not settings.oidc_audience:
        log.warning("deliveries_open", detail="OIDC_AUDIENCE is not set: POST / accepts anyone")
