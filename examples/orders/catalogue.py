"""The specs (in your project, beside the others in `schemas/catalogue.py`)."""

# --8<-- [start:specs]
from eventfn import Catalogue, EventSpec
from examples.orders.models import AuditRecorded, InventoryReserve, OrderAccepted, OrderPlaced

ORDER_ACCEPTED = EventSpec(
    type="com.example.order.accepted", model=OrderAccepted, description="An accepted order."
)
ORDER_PLACED = EventSpec(
    type="com.example.order.placed",
    model=OrderPlaced,
    description="An order to place.",
    consumes=True,
    reply=ORDER_ACCEPTED,  # a reply type comes along with the type it answers
    name="order",  # served at POST /api/v1/order
)
INVENTORY_RESERVE = EventSpec(
    type="com.example.inventory.reserve",
    model=InventoryReserve,
    description="Stock to hold for an accepted order.",  # produced: published to K_SINK
)
AUDIT_RECORDED = EventSpec(
    type="com.example.audit.recorded",
    model=AuditRecorded,
    description="An audit record.",
    consumes=True,  # no reply: answered 202
)

# In your project: Catalogue((QUERY_REQUEST, ORDER_PLACED, ...)), the first consumed the default.
CATALOGUE = Catalogue((ORDER_PLACED, INVENTORY_RESERVE, AUDIT_RECORDED))
# --8<-- [end:specs]
