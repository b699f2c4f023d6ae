"""The facade is built on its first request: the paths Knative calls never import FastAPI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from eventfn.testing import app_client
from tests.helpers.support import (
    binary_headers,
    dumps,
    make_app,
    query,
    suite_client,
    suite_settings,
)

# Runs in a fresh interpreter: this test process has imported FastAPI long ago.
_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import httpx
    from tests.helpers.support import make_app
    from tests.helpers.support import binary_headers, dumps, query, suite_settings

    async def main():
        app = make_app(suite_settings())
        transport = httpx.ASGITransport(app=app)
        async with app.lifespan_context():
            async with httpx.AsyncClient(transport=transport, base_url="http://f") as client:
                reply = await client.post("/", headers=binary_headers(), content=dumps(query()))
                assert reply.status_code == 200, reply.text
                for path in ("/health/liveness", "/health/readiness", "/metrics"):
                    assert (await client.get(path)).status_code == 200, path
                before = "fastapi" in sys.modules
                assert (await client.get("/openapi.json")).status_code == 200
                print("FASTAPI", before, "fastapi" in sys.modules, file=sys.stderr)

    asyncio.run(main())
    """
)


def test_deliveries_probes_and_metrics_never_import_fastapi() -> None:
    """An event, both probes and a scrape leave FastAPI unimported; a facade call loads it."""
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "FASTAPI False True" in done.stderr


async def test_probes_answer_from_the_entry_like_the_documented_routes() -> None:
    """The probes' JSON, status and nosniff header are those the OpenAPI document describes."""
    async with suite_client() as client:
        live = await client.get("/health/liveness")
        ready = await client.get("/health/readiness")
        head = await client.head("/health/readiness")
        document = (await client.get("/openapi.json")).json()
    assert (live.status_code, live.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert (head.status_code, head.content) == (200, b"")
    assert live.headers["x-content-type-options"] == "nosniff"
    assert {"/health/liveness", "/health/readiness"} <= set(document["paths"])


async def test_probes_refuse_other_methods_with_405() -> None:
    """POST on a probe is a 405 problem naming GET, like any route would answer."""
    async with suite_client() as client:
        response = await client.post("/health/liveness", content=b"{}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_first_facade_requests_build_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Concurrent first requests share one facade, and events keep flowing meanwhile."""
    from eventfn.facade import factory as facade_app

    built = []
    real = facade_app.build_facade

    def counting(runtime: Any) -> Any:
        built.append(runtime)
        return real(runtime)

    monkeypatch.setattr(facade_app, "build_facade", counting)
    async with app_client(make_app(suite_settings())) as client:
        answers = await asyncio.gather(
            *(client.get("/openapi.json") for _ in range(3)),
            client.post("/", headers=binary_headers(), content=dumps(query())),
        )
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert len(built) == 1
