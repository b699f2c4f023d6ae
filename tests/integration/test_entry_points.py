"""The entry points are handed the user's code by reference: an import string naming a Registry.

`FUNCTION_REGISTRY` (default `handler.functions:registry`) or `python -m eventfn serve TARGET`;
`eventfn.asgi:app` and func's `function.new()` read the setting. A string that does not resolve
fails at start-up with a message naming it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import eventfn
from eventfn import RegistryNotFound, load_registry
from eventfn.__main__ import main
from tests.helpers.support import ServerProcess

# A user's function of the test's own, written as a file: what a target names.
USER_MODULE = """
from pydantic import BaseModel

from eventfn import Catalogue, EventSpec, Registry


class Ping(BaseModel):
    text: str


class Pong(BaseModel):
    text: str


PONG = EventSpec("dev.eventfn.tests.pong", Pong, "The answer to a ping.")
PING = EventSpec(
    "dev.eventfn.tests.ping", Ping, "A ping.", consumes=True, reply=PONG, name="ping"
)
registry = Registry(Catalogue((PING,)))
not_a_registry = 42


@registry.handles(PING)
async def pong(ping: Ping) -> Pong:
    return Pong(text=ping.text)
"""
TARGET = "entry_points_user_fn:registry"
PING_PATH = "/api/v1/ping"


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path holding the user module, and one whose import fails inside."""
    (tmp_path / "entry_points_user_fn.py").write_text(USER_MODULE)
    (tmp_path / "entry_points_broken_fn.py").write_text("import entry_points_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("entry_points_user_fn", "entry_points_broken_fn"):
        sys.modules.pop(name, None)


def test_a_target_resolves_to_the_registry_it_names(user_code: Path) -> None:
    """`module:attribute` imports the module and returns its Registry."""
    registry = load_registry(TARGET)
    assert registry is sys.modules["entry_points_user_fn"].registry


def test_the_default_setting_names_the_functions_own_registry() -> None:
    """FUNCTION_REGISTRY defaults to `handler.functions:registry`."""
    assert eventfn.Settings.model_fields["function_registry"].default == (
        "handler.functions:registry"
    )


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("entry_points_user_fn", "is not an import string"),
        (":registry", "is not an import string"),
        ("entry_points_user_fn:", "is not an import string"),
        ("entry_points_nowhere:registry", "module 'entry_points_nowhere' cannot be imported"),
        ("entry_points_user_fn:nothing", "has no attribute 'nothing'"),
        ("entry_points_user_fn:not_a_registry", "is a int, not an eventfn.Registry"),
        ("entry_points_user_fn:Ping", "is a ModelMetaclass, not an eventfn.Registry"),
    ],
)
def test_a_target_that_does_not_resolve_fails_naming_it(
    user_code: Path, target: str, says: str
) -> None:
    """Each way a target can fail is a RegistryNotFound naming the string and the reason."""
    with pytest.raises(RegistryNotFound) as raised:
        load_registry(target)
    assert repr(target) in str(raised.value)
    assert says in str(raised.value)


def test_a_module_failing_on_its_own_import_is_told_apart(user_code: Path) -> None:
    """A target module that exists but imports a missing one names that one, not the target."""
    with pytest.raises(RegistryNotFound, match="it imports 'entry_points_not_installed'"):
        load_registry("entry_points_broken_fn:registry")


def test_serve_with_a_target_that_does_not_resolve_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m eventfn serve BAD` prints the reason on stderr and exits 2, serving nothing."""
    assert main(["serve", "entry_points_nowhere:registry"]) == 2
    assert "'entry_points_nowhere:registry'" in capsys.readouterr().err


def test_serve_takes_one_target_at_most(capsys: pytest.CaptureFixture[str]) -> None:
    """Two targets, or an option, is a usage error (exit 2)."""
    assert main(["serve", "a:b", "c:d"]) == 2
    assert main(["serve", "--port"]) == 2
    assert "usage" in capsys.readouterr().err


def test_module_help_names_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m eventfn --help` says how to name the handlers."""
    assert main(["--help"]) == 0
    assert "FUNCTION_REGISTRY" in capsys.readouterr().out


def test_eventfn_asgi_app_is_built_on_function_registry(
    user_code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eventfn.asgi:app` serves the Registry that FUNCTION_REGISTRY names."""
    monkeypatch.setenv("FUNCTION_REGISTRY", TARGET)
    monkeypatch.delitem(sys.modules, "eventfn.asgi", raising=False)
    app = importlib.import_module("eventfn.asgi").app
    monkeypatch.delitem(sys.modules, "eventfn.asgi")
    assert app.state.runtime.catalogue is load_registry(TARGET).catalogue


@pytest.mark.server
def test_python_m_eventfn_serve_target_serves_that_registry(user_code: Path) -> None:
    """`python -m eventfn serve module:registry` serves the handlers the target names."""
    server = ServerProcess(
        {"PYTHONPATH": str(user_code)}, argv=("-m", "eventfn", "serve", TARGET)
    ).start()
    try:
        response = httpx.post(f"{server.url}{PING_PATH}", json={"text": "hi"}, timeout=10)
    finally:
        server.stop()
    assert response.status_code == httpx.codes.OK
    assert response.json() == {"text": "hi"}


@pytest.mark.server
def test_python_m_eventfn_serves_the_registry_function_registry_names(user_code: Path) -> None:
    """The bare `python -m eventfn` reads its target from FUNCTION_REGISTRY."""
    server = ServerProcess({"PYTHONPATH": str(user_code), "FUNCTION_REGISTRY": TARGET}).start()
    try:
        response = httpx.post(f"{server.url}{PING_PATH}", json={"text": "hi"}, timeout=10)
    finally:
        server.stop()
    assert response.status_code == httpx.codes.OK


@pytest.mark.server
def test_python_m_eventfn_serves_the_functions_own_handlers_by_default() -> None:
    """With no target anywhere, `python -m eventfn` serves `handler.functions:registry`."""
    from handler.functions import registry

    spec = registry.catalogue.default
    assert spec is not None
    server = ServerProcess()
    server.env.pop("FUNCTION_REGISTRY", None)
    server.start()
    try:
        example = spec.json_schema()["examples"][0]
        response = httpx.post(f"{server.url}{spec.facade_path}", json=example, timeout=10)
    finally:
        server.stop()
    assert response.status_code == httpx.codes.OK
