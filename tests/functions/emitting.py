"""A function whose handler emits: `order.placed` emits two `inventory.reserve` events and
replies `order.accepted`. Served by real processes (`FUNCTION_REGISTRY=tests.functions.emitting:
registry`) in the crash tests of emitted events."""

from __future__ import annotations

from pydantic import BaseModel

from eventfn import Catalogue, EventContext, EventSpec, Registry


class Order(BaseModel):
    sku: str
    quantity: int = 1


class Accepted(BaseModel):
    order: str


class Reserve(BaseModel):
    sku: str
    quantity: int


ACCEPTED = EventSpec("dev.eventfn.tests.order.accepted", Accepted, "An order was accepted.")
ORDER = EventSpec(
    "dev.eventfn.tests.order.placed", Order, "An order.", consumes=True, reply=ACCEPTED
)
RESERVE = EventSpec("dev.eventfn.tests.inventory.reserve", Reserve, "Reserve stock.")
registry = Registry(Catalogue((ORDER, RESERVE)))


@registry.handles(ORDER)
async def place(order: Order, ctx: EventContext) -> Accepted:
    """Emit a reservation per unit of work, then accept."""
    await ctx.publish(RESERVE, Reserve(sku=order.sku, quantity=order.quantity))
    await ctx.publish(RESERVE, Reserve(sku=order.sku, quantity=0), subject="hold")
    return Accepted(order=ctx.idempotency_key)
