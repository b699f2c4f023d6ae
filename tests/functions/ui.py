"""The function the UI suites drive: a catalogue of three types of their own, served for real.

    order   com.example.order.placed    name "order", answered by com.example.order.accepted
    audit   com.example.audit.recorded  no name (served at /api/v1/events/<type>), answers 202
    ticket  com.example.ticket.opened   name "ticket": nested object, enum, array, optional
                                        fields and defaults; reports progress on the WebSocket

The first two are the README's example types; the third gives the form generator every JSON
Schema shape it must handle. Served as any function is: `python -m eventfn serve
tests.functions.ui:registry`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from eventfn import Catalogue, EventSpec, Registry
from tests.helpers.support import ServerProcess

ORDER_TYPE = "com.example.order.placed"
AUDIT_TYPE = "com.example.audit.recorded"
TICKET_TYPE = "com.example.ticket.opened"


class OrderPlaced(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"sku": "book", "quantity": 2}]}
    )
    sku: str = Field(min_length=1, description="The article's stock-keeping unit.")
    quantity: int = Field(gt=0, description="How many.")


class OrderAccepted(BaseModel):
    order_id: str


class AuditRecorded(BaseModel):
    actor: str
    action: str


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Customer(BaseModel):
    name: str = Field(min_length=1)
    email: str | None = None


class TicketOpened(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, examples=["Printer on fire"])
    priority: Priority = Priority.NORMAL
    customer: Customer
    tags: list[str] = Field(default_factory=list)
    estimate_hours: float | None = Field(default=None, ge=0)
    urgent: bool = False


class TicketAssigned(BaseModel):
    ticket: str
    queue: str


ORDER_ACCEPTED = EventSpec(
    type="com.example.order.accepted", model=OrderAccepted, description="An accepted order."
)
ORDER_PLACED = EventSpec(
    type=ORDER_TYPE,
    model=OrderPlaced,
    description="An order to place.",
    consumes=True,
    reply=ORDER_ACCEPTED,
    name="order",
)
AUDIT_RECORDED = EventSpec(
    type=AUDIT_TYPE, model=AuditRecorded, description="An audit record.", consumes=True
)
TICKET_ASSIGNED = EventSpec(
    type="com.example.ticket.assigned", model=TicketAssigned, description="A ticket's queue."
)
TICKET_OPENED = EventSpec(
    type=TICKET_TYPE,
    model=TicketOpened,
    description="A support ticket to route.",
    consumes=True,
    reply=TICKET_ASSIGNED,
    name="ticket",
)
CATALOGUE = Catalogue((ORDER_PLACED, AUDIT_RECORDED, TICKET_OPENED))
registry = Registry(CATALOGUE)


@registry.handles(ORDER_PLACED)
async def place_order(order: OrderPlaced) -> OrderAccepted:
    return OrderAccepted(order_id=f"{order.sku}-{order.quantity}")


@registry.handles(AUDIT_RECORDED)
async def record_audit(audit: AuditRecorded) -> None:
    return None


@registry.handles(TICKET_OPENED)
async def route_ticket(ticket: TicketOpened) -> AsyncIterator[object]:
    yield {"step": "read", "title": ticket.title}
    yield {"step": "routed", "priority": ticket.priority.value}
    queue = "urgent" if ticket.urgent or ticket.priority is Priority.HIGH else "support"
    yield TicketAssigned(ticket=ticket.title, queue=queue)


def function_process(env: Mapping[str, str] | None = None) -> ServerProcess:
    """This module's function in a process of its own (not started yet)."""
    return ServerProcess(env, argv=("-m", "eventfn", "serve", "tests.functions.ui:registry"))


@contextlib.contextmanager
def running_function(env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """This module's function serving on a free port, its stores in a fresh DATA_DIR, and
    K_SINK pointing at itself: a replayed dead letter reaches the function again."""
    with tempfile.TemporaryDirectory(prefix="ui-function-") as data:
        server = function_process({"DATA_DIR": data, "LOG_LEVEL": "warning", **(env or {})})
        server.env.setdefault("K_SINK", server.url)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def dead_letter(
    url: str, event_id: str, data: object, *, event_type: str = ORDER_TYPE, code: int = 500
) -> None:
    """Post an event to the function's `/deadletter` as the broker's dead-letter sink would:
    binary mode, with the knativeerror* extensions the broker adds."""
    import base64

    import httpx
    import orjson

    reason = base64.b64encode(f"the subscriber answered {code}".encode()).decode()
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/ui",
        "ce-type": event_type,
        "ce-knativeerrordest": "http://function.default.svc/",
        "ce-knativeerrorcode": str(code),
        "ce-knativeerrordata": reason,
        "content-type": "application/json",
    }
    response = httpx.post(f"{url}/deadletter", headers=headers, content=orjson.dumps(data))
    response.raise_for_status()
