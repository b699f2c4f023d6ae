"""`python -m eventfn`: the production server (the container runs exactly this)."""

from __future__ import annotations

import gc
import math
from typing import Any

import uvicorn

from eventfn.core.config import Settings
from eventfn.observability.logs import get_logger

log = get_logger("eventfn.server")


def http_protocol(head_timeout: float) -> Any:
    """`TurnWritesProtocol` (see eventfn.server.protocol), or uvicorn's own if it cannot load.

    It subclasses a private uvicorn class, tested with the uvicorn minor that pyproject pins; if
    another uvicorn moved it, the function still serves, without held writes or the head timeout
    (queue-proxy bounds slow heads in Knative), and says so once.
    """
    try:
        from eventfn.server.protocol import TurnWritesProtocol
    except ImportError as exc:
        log.warning(
            "held_writes_unavailable",
            detail="uvicorn's httptools protocol could not be extended; serving with it as is",
            error=str(exc),
        )
        return "httptools"
    return TurnWritesProtocol.with_head_timeout(head_timeout)


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the function is served: uvicorn, one worker, over `TurnWritesProtocol`.

    `overrides` are uvicorn options (the tests serve other apps on other ports this same way).
    """
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,  # structlog already routes uvicorn's loggers
        "access_log": False,  # the ingress logs one richer line per event
        "server_header": False,
        # Responses leave at the end of each event-loop turn (see eventfn.server.protocol).
        # ...and a request head must arrive within HEADER_TIMEOUT_SECONDS (408 after).
        "http": http_protocol(settings.header_timeout_seconds),
        # X-Forwarded-* are read where they matter, by the facade (its URLs and redirects):
        # FunctionApp puts uvicorn's ProxyHeadersMiddleware there, not before the ingress.
        "proxy_headers": False,
        "timeout_graceful_shutdown": math.ceil(settings.shutdown_grace_seconds),
        "lifespan": "on",
        # A WebSocket message a little too large gets a 413 error message from the app; one far
        # too large is cut off by the protocol (close 1009) before it is buffered whole.
        "ws_max_size": 4 * settings.ws_max_message_bytes,
    }
    return uvicorn.Config(app, **{**options, **overrides})


def serve(settings: Settings | None = None, *, app: Any = None) -> None:
    """Serve the function with uvicorn on `settings.host:settings.port`, one worker.

    `app` defaults to the function built on the Registry that `settings.function_registry` names
    (`eventfn.loading.RegistryNotFound` if it does not); passing one serves a custom-built
    function the same way (tests use it to serve a deliberately slow handler).
    """
    from eventfn.app import create_app
    from eventfn.loading import load_registry
    from eventfn.server.drain import DrainingServer

    settings = settings or Settings()
    if app is None:
        app = create_app(settings, load_registry(settings.function_registry))
    runtime = app.state.runtime
    config = server_config(app, settings)
    # Everything imported and built so far lives as long as the process: keep it out of the
    # cyclic GC's full collections: they get shorter, and so does the p99.
    gc.freeze()
    DrainingServer(config, runtime, delay=settings.shutdown_delay_seconds).run()
