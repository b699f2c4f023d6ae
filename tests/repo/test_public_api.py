"""The runtime's public API: one import for function authors, cheap to import, complete."""

from __future__ import annotations

import subprocess
import sys

import pytest

import eventfn
from eventfn import Catalogue, EventSpec, Registry
from eventfn.testing import function_client, isolated_settings
from tests.functions import Answer, Question
from tests.helpers.support import ROOT


def test_every_public_name_resolves() -> None:
    """Each name of `eventfn.__all__` is importable from `eventfn` itself."""
    for name in eventfn.__all__:
        assert getattr(eventfn, name) is not None, name


def test_importing_the_api_builds_nothing_and_loads_no_server() -> None:
    """`import eventfn` (what schemas/ does) loads neither the server, the facade nor settings."""
    probe = (
        "import sys, eventfn; "
        "print(sorted(m for m in ('uvicorn', 'fastapi', 'pydantic_settings', 'httpx', 'redis') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_settings_for_tests_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`isolated_settings` reads its arguments and the defaults, never the shell's variables."""
    monkeypatch.setenv("PORT", "9999")
    assert isolated_settings().port == 8080
    assert isolated_settings(port=9000).port == 9000


async def test_a_function_is_tested_in_process_with_its_own_registry() -> None:
    """`eventfn.testing.function_client(registry)` serves a function built on that registry."""
    answer = EventSpec("com.example.t.answer", Answer, "An answer.")
    ask = EventSpec("com.example.t.ask", Question, "Ask.", consumes=True, reply=answer)
    registry = Registry(Catalogue((ask,)))

    @registry.handles(ask)
    async def reply(request: Question) -> Answer:
        return Answer(result={"echo": request.query})

    async with function_client(registry) as client:
        response = await client.post(ask.facade_path, json={"query": "hi"})
    assert response.json()["result"] == {"echo": "hi"}


def test_the_function_registry_setting_names_the_functions_own_by_default() -> None:
    """`FUNCTION_REGISTRY` defaults to the function's own registry (handler/functions.py)."""
    from handler.functions import registry

    assert eventfn.load_registry(isolated_settings().function_registry) is registry
