"""Liveness and readiness, at the paths Knative func probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/liveness", summary="Liveness probe")
async def liveness() -> JSONResponse:
    """200 while the process serves requests at all."""
    return JSONResponse({"status": "alive"})


@router.get(
    "/readiness",
    summary="Readiness probe",
    responses={503: {"description": "Starting up or shutting down"}},
)
async def readiness(request: Request) -> JSONResponse:
    """200 once start-up is done; 503 before that and again while shutting down."""
    runtime = request.app.state.runtime
    if runtime.ready and not runtime.draining:
        return JSONResponse({"status": "ready"})
    state = "draining" if runtime.draining else "starting"
    return JSONResponse({"status": state}, status_code=503)
