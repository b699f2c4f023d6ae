"""Graceful shutdown: what happens between SIGTERM and the process exiting 0.

    SIGTERM ─▶ readiness 503 and new requests 503 (Retry-After), at once, from the signal handler
          ─▶ (optional SHUTDOWN_DELAY_SECONDS: keep listening while endpoints are updated)
          ─▶ uvicorn stops listening; requests in flight finish and get their answers
             (up to SHUTDOWN_GRACE_SECONDS)
          ─▶ lifespan shutdown: the redeliverer's last pass, the publisher's flush (pending
             publishes get PUBLISH_FLUSH_SECONDS, the rest is parked in the outbox), stores close
          ─▶ exit 0

Why a `uvicorn.Server` subclass: uvicorn runs the lifespan shutdown only after every connection
closed, far too late to turn readiness false, and it re-raises the captured SIGTERM once done
(exit status 143 instead of 0). Overriding `handle_exit` fixes both at the source. The 503 to
new requests is the app's (`FunctionApp` reads `runtime.draining` on every request);
`Runtime.drain` is the one signal.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

import uvicorn

from eventfn.observability.logs import get_logger
from eventfn.runtime import Runtime

log = get_logger("eventfn.server.drain")


class DrainingServer(uvicorn.Server):
    """uvicorn, with readiness turned false by the signal itself and a clean exit status."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, *, delay: float = 0.0) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.delay = delay
        self._exit_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.runtime.begin_drain():
            log.info("draining", signal=signal.Signals(sig).name, delay=self.delay)
            if sig == signal.SIGTERM and self.delay > 0:
                self._exit_at = time.monotonic() + self.delay
                return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting (uvicorn's behaviour)
        self.should_exit = True
        # Deliberately not recorded in `_captured_signals`: uvicorn would re-raise it at the
        # end and the process would die of SIGTERM after a perfectly clean shutdown.

    async def on_tick(self, counter: int) -> bool:
        if self._exit_at is not None and time.monotonic() >= self._exit_at:
            self.should_exit = True
        if self.should_exit:
            # Before uvicorn closes connections: let WebSockets answer and close with 1001
            # (the first tick runs the drain; the others find it done).
            await self.runtime.drain(self.config.timeout_graceful_shutdown or None)
        return await super().on_tick(counter)
