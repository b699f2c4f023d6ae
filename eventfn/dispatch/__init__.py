"""Dispatch: the catalogue and registry, routing by type, idempotency, time budget, replies."""
