"""Pydantic payload models and the event catalogue. Imports nothing from `handler`."""

from schemas.catalogue import CATALOGUE, QUERY_REQUEST, QUERY_RESPONSE, Catalogue, EventSpec
from schemas.query import QueryMetadata, QueryRequest, QueryResponse

__all__ = [
    "CATALOGUE",
    "QUERY_REQUEST",
    "QUERY_RESPONSE",
    "Catalogue",
    "EventSpec",
    "QueryMetadata",
    "QueryRequest",
    "QueryResponse",
]
