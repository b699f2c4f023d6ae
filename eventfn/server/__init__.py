"""Serving: uvicorn with held writes, and the drain between SIGTERM and exit."""
