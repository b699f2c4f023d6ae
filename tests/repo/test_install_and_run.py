"""Installing and running the function every way a new user does, step by step, on a fresh clone
(the steps of the project's original test plan).

Poetry for the dependencies (beside uv, from the same pyproject.toml and the same versions), the
unit test with FastAPI's TestClient, the stock `uvicorn eventfn.asgi:app`, compiled bytecode for
`make run`, the Locust load test and the cold-start command. Poetry and Locust are tools in
venvs of their own under .tools/ (`make poetry`, `make locust`): a test that needs one installs
it first and skips, saying why, where it cannot be had.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from eventfn.core.config import Settings
from tests.helpers.support import (
    RESPONSE,
    ROOT,
    SUITE_REGISTRY,
    ServerProcess,
    binary_headers,
    dumps,
    query,
    shipped_function,
)

UV = ROOT / ".tools" / "bin" / "uv"
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
POETRY = ROOT / ".tools" / "poetry" / "bin" / "poetry"
LOCUST = ROOT / ".tools" / "locust" / "bin" / "locust"


def tool(target: str, binary: Path) -> Path:
    """`binary`, installed by `make <target>` when missing; skips if that cannot be done."""
    if not binary.exists():
        made = subprocess.run(
            ["make", "--no-print-directory", target],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if made.returncode != 0:
            pytest.skip(f"`make {target}` could not install {binary.name}:\n{made.stderr[-2000:]}")
    return binary


def pins(text: str) -> set[str]:
    """The `name==version` of each requirement line, names normalized (PEP 503)."""
    found = set()
    for line in text.splitlines():
        requirement = line.split(";")[0].strip()
        if "==" in requirement and not requirement.startswith("#"):
            name, version = requirement.split("==")
            found.add(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}")
    return found


@pytest.fixture(scope="module")
def poetry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Poetry's command line, with its virtualenvs in a scratch folder, never uv's .venv."""
    binary = tool("poetry", POETRY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POETRY_VIRTUALENVS_PATH", str(tmp_path_factory.mktemp("poetry-venvs")))
        patch.setenv("POETRY_VIRTUALENVS_IN_PROJECT", "false")
        patch.setenv("POETRY_NO_INTERACTION", "1")
        patch.delenv("VIRTUAL_ENV", raising=False)
        yield [str(binary)]


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `argv` in the project root; fails the test with its output on a non-zero exit."""
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done


# Step 1: dependencies with Poetry, beside uv


def test_poetry_packages_are_the_wheels_packages() -> None:
    """[tool.poetry] names the same packages as the wheel hatchling builds."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    poetry = [entry["include"] for entry in config["tool"]["poetry"]["packages"]]
    assert sorted(poetry) == sorted(wheel)


def test_poetry_lock_is_fresh(poetry: list[str]) -> None:
    """`poetry check --lock` accepts poetry.lock for the pyproject.toml (else: `make lock`)."""
    run([*poetry, "check", "--lock"])


def test_poetry_export_equals_requirements_txt(poetry: list[str]) -> None:
    """`poetry export -f requirements.txt` pins what requirements.txt (uv's export) pins."""
    exported = run([*poetry, "export", "-f", "requirements.txt", "--without-hashes"]).stdout
    committed = (ROOT / "requirements.txt").read_text()
    assert pins(exported) == pins(committed), "poetry.lock left uv.lock: run `make lock`"


@pytest.mark.skipif(not UV.exists(), reason=f"uv not bootstrapped at {UV} (run `make venv`)")
def test_poetry_locks_every_group_and_extra_as_uv_does(poetry: list[str]) -> None:
    """With the dev group and every extra, Poetry's and uv's locks hold the same versions."""
    exported = run([*poetry, "export", "--without-hashes", "--all-groups", "--all-extras"]).stdout
    argv = [str(UV), "export", "--frozen", "--all-groups", "--all-extras", "--no-hashes"]
    from_uv = run([*argv, "--no-emit-project"]).stdout
    assert pins(exported) == pins(from_uv), "poetry.lock left uv.lock: run `make lock`"


@pytest.mark.timeout(600)
def test_poetry_install_then_poetry_run_pytest(poetry: list[str]) -> None:
    """`poetry install` installs the project and its dev group; `poetry run pytest` then passes."""
    run([*poetry, "install"], timeout=600)
    run([*poetry, "run", "python", "-c", "import eventfn, function, handler, schemas"])
    # A slice of the suite: the whole of it runs under uv already, on the same versions.
    smoke = [
        "tests/unit/test_smoke.py",
        "tests/unit/test_function_package.py",
        "-p",
        "no:cacheprovider",
    ]
    assert " passed" in run([*poetry, "run", "pytest", "-q", *smoke], timeout=600).stdout


# Step 2: the unit test with FastAPI's TestClient, on a module-level ASGI app


@pytest.fixture
def asgi(tmp_path: Path) -> Iterator[ModuleType]:
    """`eventfn.asgi`, imported afresh in an environment that sets none of the function's
    settings but where its files go and which function it serves (the suite's own, whatever
    `handler/` holds): what a new user's shell has."""
    with pytest.MonkeyPatch.context() as patch:
        for name in Settings.model_fields:
            patch.delenv(name.upper(), raising=False)
        patch.setenv("DATA_DIR", str(tmp_path))
        patch.setenv("FUNCTION_REGISTRY", SUITE_REGISTRY)
        patch.setenv("LOG_LEVEL", "warning")
        patch.delitem(sys.modules, "eventfn.asgi", raising=False)
        yield importlib.import_module("eventfn.asgi")


@pytest.mark.usefixtures("asgi")
def test_plan_unit_test_posts_plain_json_to_the_root() -> None:
    """The plan's unit test, verbatim but for the import line: plain JSON to / gets the answer."""
    from fastapi.testclient import TestClient

    from eventfn.asgi import app

    client = TestClient(app)
    response = client.post("/", json={"query": "test query", "parameters": {"param1": "value1"}})
    assert response.status_code == 200
    assert "result" in response.json()
    assert "metadata" in response.json()


def test_testclient_with_lifespan_answers_a_binary_event(asgi: ModuleType) -> None:
    """`with TestClient(eventfn.asgi.app)` is ready and answers a binary event with its reply."""
    from fastapi.testclient import TestClient

    with TestClient(asgi.app) as client:
        assert client.get("/health/readiness").status_code == 200
        response = client.post("/", headers=binary_headers(), content=dumps(query("plan")))
    assert response.status_code == 200
    assert response.headers["ce-type"] == RESPONSE
    assert response.json()["result"] == {"message": "Processed query: plan"}


def test_asgi_app_reads_its_settings_from_the_environment(
    asgi: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eventfn.asgi:app` is built from the environment of the process that imports it."""
    monkeypatch.setenv("EVENT_SOURCE", "/from-the-environment")
    monkeypatch.delitem(sys.modules, "eventfn.asgi")
    app = importlib.import_module("eventfn.asgi").app
    assert app.state.runtime.settings.event_source == "/from-the-environment"


# Step 3: the stock uvicorn CLI


@pytest.mark.server
def test_stock_uvicorn_serves_eventfn_asgi_app(tmp_path: Path) -> None:
    """`python -m uvicorn eventfn.asgi:app --port N` is ready and answers a binary event."""
    server = ServerProcess(env={"DATA_DIR": str(tmp_path)})
    server.argv = ["-m", "uvicorn", "eventfn.asgi:app", "--host", "127.0.0.1"]
    server.argv += ["--port", str(server.port)]
    server.start()
    try:
        assert httpx.get(f"{server.url}/health/readiness").status_code == 200
        body = dumps(query("uvicorn"))
        response = httpx.post(server.url, headers=binary_headers(), content=body)
    finally:
        out = server.stop()
    assert response.status_code == 200, out
    assert response.headers["ce-type"] == RESPONSE
    assert response.json()["result"] == {"message": "Processed query: uvicorn"}


# Step 4: `make run` serves compiled bytecode


def made_by_make_venv(prefix: Path) -> bool:
    """Whether `prefix` is the project's .venv as `make venv` made it: uv wrote its pyvenv.cfg.

    `make venv` promises compiled bytecode (`uv sync --compile-bytecode`); Poetry compiles only
    when asked (`poetry install --compile`), and with `virtualenvs.in-project` its venv is a
    `.venv` in the project root too, so the path alone does not tell them apart.
    """
    config = prefix / "pyvenv.cfg"
    if prefix != ROOT / ".venv" or not config.is_file():
        return False
    keys = {line.partition("=")[0].strip() for line in config.read_text().splitlines()}
    return "uv" in keys


@pytest.mark.skipif(
    not made_by_make_venv(Path(sys.prefix)),
    reason="checks the .venv `make venv` syncs (uv, bytecode compiled), not this environment",
)
@pytest.mark.parametrize("package", ["uvicorn", "starlette", "pydantic", "httpx"])
def test_synced_venv_has_bytecode_for_every_module(package: str) -> None:
    """Every module of the runtime's libraries has its .pyc, imported or not (uv compiled it)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None
    assert spec.origin is not None
    sources = Path(spec.origin).parent.rglob("*.py")
    missing = [s for s in sources if not Path(importlib.util.cache_from_source(str(s))).exists()]
    assert missing == [], f"{len(missing)} modules without bytecode, e.g. {missing[:3]}"


# Step 5: the load test and the cold-start figure: both measure the function as it ships, with
# its default type and that type's example (bench/target.py)


@pytest.mark.server
@pytest.mark.timeout(300)
def test_locustfile_runs_headless_against_a_real_server(tmp_path: Path) -> None:
    """`make loadtest`'s runner: Locust headless, few users, a few seconds, no failed request."""
    shipped = shipped_function("the load test")
    locust = tool("locust", LOCUST)
    argv = [sys.executable, "-m", "loadtest.run", "--locust", str(locust)]
    argv += ["--run-time", "3s", "--users", "4", "--spawn-rate", "4"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATA_DIR", str(tmp_path))
        patch.setenv("FUNCTION_REGISTRY", shipped)
        out = run(argv).stdout
    assert re.search(r"total: [1-9]\d* requests, 0 failed", out), out


@pytest.mark.server
def test_cold_start_command_prints_the_functions_cold_start() -> None:
    """`python -m bench.run --cold-start-only` (here on this interpreter) prints the table."""
    shipped = shipped_function("the bench")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUNCTION_REGISTRY", shipped)
        out = run(
            [sys.executable, "-m", "bench.run", "--cold-start-only", "--as-is", "--cold-runs", "1"]
        )
    assert re.search(r"^\| this function \| \d+ \|", out.stdout, re.MULTILINE), out.stdout
    assert "cold start vs FastAPI hello:" in out.stdout
