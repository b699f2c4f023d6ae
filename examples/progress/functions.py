"""A report type whose handler says how far it got: the WebSocket shows each stage as it comes."""

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from eventfn import Catalogue, EventSpec, Registry


class ReportRequested(BaseModel):
    topic: str


class ReportReady(BaseModel):
    summary: str


REPORT_READY = EventSpec(
    type="com.example.report.ready", model=ReportReady, description="A report."
)
REPORT_REQUESTED = EventSpec(
    type="com.example.report.requested",
    model=ReportRequested,
    description="A report to write.",
    consumes=True,
    reply=REPORT_READY,
    name="report",
)
registry = Registry(Catalogue((REPORT_REQUESTED,)))


# --8<-- [start:progress]
@registry.handles(REPORT_REQUESTED)
async def write_report(request: ReportRequested) -> AsyncIterator[Any]:
    yield {"stage": "retrieving"}  # progress: only the WebSocket shows it
    yield {"stage": "summarising"}
    yield ReportReady(summary=f"All about {request.topic}")  # the reply, which ends it


# --8<-- [end:progress]
