"""The WebSocket `/api/v1/ws`: streamed queries and the live event feed for the Streamlit UI.

JSON text messages both ways (the protocol table is in docs/guide/websocket.md, the schemas
are served at `/api/v1/asyncapi.json`); one connection is a `eventfn.facade.ws.session.Session`.

Heartbeats: uvicorn pings every connection at the protocol level (`ws_ping_interval`, 20 s) and
drops peers that do not answer; clients that cannot see protocol pings (browsers) may send
`{"type": "ping"}` and get `{"type": "pong"}`. When the runtime starts draining, a socket takes
no new queries, answers those in flight, and closes with 1001 (going away).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, FastAPI, WebSocket

from eventfn.facade.ws.session import Session
from eventfn.observability.metrics import Metrics
from eventfn.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["websocket"])


class Sessions:
    """The open sockets of this process; a Component that closes them when draining starts."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.active: set[Session] = set()
        # Progress messages dropped on any socket of this process (full outbox), for /metrics.
        self.progress_dropped = 0

    async def sample(self, metrics: Metrics) -> None:
        """The WebSocket numbers of GET /metrics."""
        metrics.websocket_connections = len(self.active)
        metrics.websocket_progress_dropped = self.progress_dropped

    async def start(self) -> None:
        """Nothing to open: sockets come and go with their connections."""

    async def stop(self) -> None:
        await self.drain()

    async def drain(self) -> None:
        """Answer what is in flight on every socket, then close them all with 1001.

        One deadline for all of them, SHUTDOWN_GRACE_SECONDS from now: a socket that has not
        closed by then is dropped.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.runtime.settings.shutdown_grace_seconds
        sessions = list(self.active)
        await asyncio.gather(*(s.drain(deadline) for s in sessions), return_exceptions=True)


@router.websocket("/ws", name="websocket")
async def websocket_endpoint(websocket: WebSocket) -> None:
    """Streamed queries and the live event feed (protocol: docs/guide/websocket.md, AsyncAPI)."""
    sessions: Sessions = websocket.app.state.ws_sessions
    await Session(websocket, sessions.runtime, sessions).run()


def install(app: FastAPI, runtime: Runtime) -> Sessions:
    """Serve the WebSocket; the returned sessions are to be attached to `runtime`.

    Not behind the facade's auth dependency (an HTTP dependency): the socket authenticates its
    own handshake, in `Session._authenticate`.
    """
    sessions = Sessions(runtime)
    app.state.ws_sessions = sessions
    app.include_router(router)
    return sessions
