"""Pydantic payload models and the event catalogue; they use only the runtime's public API."""

from schemas.catalogue import CATALOGUE, QUERY_REQUEST, QUERY_RESPONSE
from schemas.query import QueryMetadata, QueryRequest, QueryResponse

__all__ = [
    "CATALOGUE",
    "QUERY_REQUEST",
    "QUERY_RESPONSE",
    "QueryMetadata",
    "QueryRequest",
    "QueryResponse",
]
