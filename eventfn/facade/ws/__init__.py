"""The WebSocket `/api/v1/ws`: sessions, streamed queries and the live feed."""
