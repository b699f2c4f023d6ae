"""The module-level ASGI app under FastAPI's TestClient, as the Getting started page shows it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventfn.core.config import Settings


@pytest.fixture(autouse=True)
def fresh_environment(tmp_path: Path) -> Iterator[None]:
    """A shell that sets none of the function's settings but where its files go."""
    with pytest.MonkeyPatch.context() as patch:
        for name in Settings.model_fields:
            patch.delenv(name.upper(), raising=False)
        patch.setenv("DATA_DIR", str(tmp_path))
        patch.setenv("LOG_LEVEL", "warning")
        patch.delitem(sys.modules, "eventfn.asgi", raising=False)
        yield
    sys.modules.pop("eventfn.asgi", None)


def test_the_asgi_app_is_ready_under_testclient() -> None:
    """`with TestClient(eventfn.asgi.app)` runs the lifespan: readiness answers 200."""
    importlib.import_module("eventfn.asgi")
    # --8<-- [start:testclient]
    from fastapi.testclient import TestClient

    from eventfn.asgi import app

    with TestClient(app) as client:  # `with` runs the lifespan: stores, publisher, redeliverer
        response = client.get("/health/readiness")
    # --8<-- [end:testclient]
    assert response.status_code == 200
