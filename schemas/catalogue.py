"""The function's event catalogue: every CloudEvents type it consumes or produces.

Adding an event type (docs/guide/event-types.md): a Pydantic model in a module of its own
beside `query.py`, its `EventSpec` here and in `CATALOGUE`, a handler in `handler/functions.py`,
then `make manifests`.
"""

from __future__ import annotations

from eventfn import Catalogue, EventSpec
from schemas.query import QueryRequest, QueryResponse

QUERY_RESPONSE = EventSpec(
    type="com.example.query.response",
    model=QueryResponse,
    description="The answer to a query, emitted as the reply to com.example.query.request "
    "and published to K_SINK for queries asked through the synchronous facade.",
)

QUERY_REQUEST = EventSpec(
    type="com.example.query.request",
    model=QueryRequest,
    description="A query for the query handler.",
    consumes=True,
    reply=QUERY_RESPONSE,
    name="query",
)

CATALOGUE = Catalogue((QUERY_REQUEST,))
