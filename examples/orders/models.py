"""The payload models: one Pydantic model per event type (in your project, `schemas/order.py`)."""

# --8<-- [start:models]
from pydantic import BaseModel, ConfigDict, Field


class OrderPlaced(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class OrderAccepted(BaseModel):
    order_id: str
    total_cents: int


class InventoryReserve(BaseModel):
    sku: str
    quantity: int


class AuditRecorded(BaseModel):
    actor: str
    action: str


# --8<-- [end:models]
