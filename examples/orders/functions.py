"""The handlers (in your project, in `handler/functions.py`, on its `registry`)."""

# --8<-- [start:handlers]
from eventfn import Registry
from examples.orders.catalogue import AUDIT_RECORDED, CATALOGUE, ORDER_PLACED
from examples.orders.models import AuditRecorded, OrderAccepted, OrderPlaced

registry = Registry(CATALOGUE)
AUDIT_TRAIL: list[str] = []  # stands in for wherever you keep audit records


@registry.handles(ORDER_PLACED)
async def place_order(order: OrderPlaced) -> OrderAccepted:
    return OrderAccepted(order_id=f"{order.sku}-{order.quantity}")


@registry.handles(AUDIT_RECORDED)
async def record_audit(audit: AuditRecorded) -> None:
    AUDIT_TRAIL.append(f"{audit.actor} did {audit.action}")  # None answers 202


# --8<-- [end:handlers]
