"""Observability: structured logs, Prometheus metrics, tracing and the live event feed."""
