"""`make lock`, Poetry's half: write poetry.lock with exactly the versions uv.lock holds.

uv.lock is the one resolution of the project; poetry.lock follows it, so that `poetry install`
and `make venv` give the same environment and `poetry export` gives requirements.txt. Poetry
has no constraints file, so the versions are handed to it in two passes:

1. in a scratch copy of pyproject.toml, every package of `uv export` (all groups, all extras)
   is pinned in an extra dependency group, and Poetry resolves from scratch: it can only pick
   uv's versions;
2. back in the project, `poetry lock` (which keeps what is locked where it still fits) rewrites
   the lock for the real pyproject.toml: the same versions, the real groups, markers and hash.

Usage: python scripts/poetry_lock.py UV POETRY
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN_GROUP = "uv-lock-pins"


def uv_pins(uv: str) -> list[str]:
    """`name==version ; markers` of every package in uv.lock, whatever its group or extra.

    The markers stay: uv.lock may hold two versions of one package for different Pythons.
    """
    argv = [uv, "export", "--frozen", "--all-groups", "--all-extras", "--no-hashes"]
    argv += ["--no-emit-project", "--no-header", "--no-annotate"]
    out = subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, text=True).stdout  # noqa: S603
    return sorted(line.strip() for line in out.splitlines() if "==" in line)


def poetry_env(**overrides: str) -> dict[str, str]:
    """Poetry's environment: never an activated virtualenv (uv's .venv is not Poetry's)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return {**env, "POETRY_VIRTUALENVS_IN_PROJECT": "false", **overrides}


def main(argv: list[str]) -> int:
    uv, poetry = argv
    pins = uv_pins(uv)
    pyproject = (ROOT / "pyproject.toml").read_text()
    if "[dependency-groups]\n" not in pyproject:
        raise SystemExit("pyproject.toml has no [dependency-groups] table to add the pins to")
    # A group of its own, so the pins never mix with what the project declares.
    group = f"[dependency-groups]\n{PIN_GROUP} = [\n" + "".join(f'    "{p}",\n' for p in pins)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "project"
        work.mkdir()
        (work / "pyproject.toml").write_text(
            pyproject.replace("[dependency-groups]\n", group + "]\n", 1)
        )
        for name in ("README.md", "poetry.toml"):
            shutil.copy(ROOT / name, work / name)
        # Poetry makes a virtualenv even to lock: it goes with the scratch folder.
        env = poetry_env(POETRY_VIRTUALENVS_PATH=str(Path(scratch) / "venvs"))
        first = [poetry, "lock", "--regenerate", "--no-interaction", "--directory", str(work)]
        subprocess.run(first, check=True, env=env)  # noqa: S603
        shutil.copy(work / "poetry.lock", ROOT / "poetry.lock")
        second = [poetry, "lock", "--no-interaction", "--directory", str(ROOT)]
        subprocess.run(second, check=True, env=env)  # noqa: S603
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
