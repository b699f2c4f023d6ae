"""The handlers (in your project, in `handler/functions.py`, on its `registry`)."""

from dataclasses import dataclass, field

# --8<-- [start:handlers]
from eventfn import EventContext, Registry, Reject, Retry
from examples.orders.catalogue import AUDIT_RECORDED, CATALOGUE, INVENTORY_RESERVE, ORDER_PLACED
from examples.orders.models import AuditRecorded, InventoryReserve, OrderAccepted, OrderPlaced

registry = Registry(CATALOGUE)


@registry.handles(ORDER_PLACED)
async def place_order(order: OrderPlaced, ctx: EventContext) -> OrderAccepted:
    price = PRICING.prices.get(order.sku)
    if price is None:
        raise Reject(f"unknown SKU {order.sku!r}")  # 422: dead-lettered at once, never retried
    if not PRICING.up:
        raise Retry("the pricing service is down", retry_after=5)  # 503 + Retry-After: redelivered
    # Leaves for K_SINK only if this handler succeeds (written ahead to the outbox with the reply).
    await ctx.publish(INVENTORY_RESERVE, InventoryReserve(sku=order.sku, quantity=order.quantity))
    # The same key for every delivery of this event: an order placed twice is one order.
    return OrderAccepted(order_id=ctx.idempotency_key, total_cents=price * order.quantity)


@registry.handles(AUDIT_RECORDED)
async def record_audit(audit: AuditRecorded) -> None:
    AUDIT_TRAIL.append(f"{audit.actor} did {audit.action}")  # None answers 202


# --8<-- [end:handlers]


@dataclass
class Pricing:
    """Stands in for the pricing service a real function would call (with `ctx.http`)."""

    prices: dict[str, int] = field(default_factory=lambda: {"book": 1200, "pen": 150})
    up: bool = True


PRICING = Pricing()
AUDIT_TRAIL: list[str] = []  # stands in for wherever you keep audit records
