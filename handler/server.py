"""`python -m handler`: the production server (the container runs exactly this)."""

from __future__ import annotations

import uvicorn

from handler.config import Settings


def serve(settings: Settings | None = None) -> None:
    """Serve the function with uvicorn on `settings.host:settings.port`, one worker."""
    from handler.app import create_app

    settings = settings or Settings()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # structlog already routes uvicorn's loggers
        access_log=False,  # the ingress logs one richer line per event
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        lifespan="on",
    )
    uvicorn.Server(config).run()
