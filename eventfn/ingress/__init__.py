"""Ingress: the `POST /` CloudEvents endpoint, the dead-letter sink, the probes, the limits."""
