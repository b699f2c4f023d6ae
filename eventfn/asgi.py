"""`eventfn.asgi:app`: the function as a module-level ASGI app, for any ASGI server or client.

    uvicorn eventfn.asgi:app --host 0.0.0.0 --port 8080
    hypercorn eventfn.asgi:app
    granian --interface asgi eventfn.asgi:app

    from fastapi.testclient import TestClient
    from eventfn.asgi import app

    with TestClient(app) as client:  # `with` runs the lifespan (stores, publisher, redeliverer)
        client.get("/health/readiness")

`app` is the function built from `Settings()`: the settings are read from the environment (the
variables of the rendered ConfigMap, see docs/reference/configuration.md) once, when this
module is first imported, and its handlers are the Registry that `FUNCTION_REGISTRY` names (default
`handler.functions:registry`, resolved by `eventfn.loading`). This is the only module of the
project that builds anything at import time; `import eventfn` and every other module stay cheap,
and tests build their own apps with their own settings.

`python -m eventfn` (what the image runs) is still the production server: the same app, served by
uvicorn over `TurnWritesProtocol` (responses leave once per event-loop turn), with the drain on
SIGTERM and `gc.freeze()` after start-up. Under the stock `uvicorn` CLI or another server the
function answers the same, without those: pass `--lifespan on` where a server makes the lifespan
optional, since the outbox, the redeliverer and the WebSocket feed start there.
"""

from __future__ import annotations

from eventfn.app import create_app
from eventfn.core.config import Settings
from eventfn.loading import load_registry

_settings = Settings()
app = create_app(_settings, load_registry(_settings.function_registry))

__all__ = ["app"]
