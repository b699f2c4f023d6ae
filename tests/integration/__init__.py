"""Tests with real peers: a served function (uvicorn on a loopback port or `python -m eventfn`),
real Redis, HTTP sinks, an OIDC issuer.
"""
