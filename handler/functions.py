"""Business logic: the handlers. ─────────────────────────────────────────────────────────────────

This is the place to edit. A handler is an async function of the validated payload that returns
the reply payload, or None when there is nothing to say (the broker then gets 202; a type declared
without a reply always answers 202). It never sees HTTP, headers or CloudEvent envelopes: the same
handler serves the broker's events, the synchronous facade and the WebSocket.

To handle a new event type: add its model and `EventSpec` in `schemas/` (and to `CATALOGUE`), then
a handler here with `@registry.handles(YOUR_SPEC)`, then `make manifests`.
"""

from __future__ import annotations

from eventfn import Registry
from schemas import CATALOGUE, QUERY_REQUEST, QueryRequest, QueryResponse

registry = Registry(CATALOGUE)


@registry.handles(QUERY_REQUEST)
async def handle_query(request: QueryRequest) -> QueryResponse:
    """Answer a query. Replace the body with the real work (it may await I/O)."""
    return QueryResponse(result={"message": f"Processed query: {request.query}"})
