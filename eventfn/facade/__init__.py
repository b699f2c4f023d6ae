"""The facade: the FastAPI app of the UI (query routes, dead letters, AsyncAPI, WebSocket).

Built on the first request that needs it; the only part of the runtime that imports FastAPI.
"""
