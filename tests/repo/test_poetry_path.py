"""The Poetry path stays green: the bytecode check tells uv's .venv from Poetry's, CI runs it.

`poetry install && poetry run pytest` once failed on a fresh clone: with Poetry's virtualenv in
the project, `.venv` was Poetry's, which compiles no bytecode unless asked, and the check meant
for the `.venv` of `make venv` ran on it. CI now runs that path once (`.ci/run`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.support import ROOT
from tests.repo.test_install_and_run import made_by_make_venv

UV_CFG = "home = /usr/bin\nimplementation = CPython\nuv = 0.13.9\nversion_info = 3.11.7\n"
VIRTUALENV_CFG = (
    "home = /usr/bin\nimplementation = CPython\nversion_info = 3.11.7.final.0\n"
    "virtualenv = 21.15.13\nprompt = knative-python-backend-py3.11\n"
)


def venv(root: Path, config: str) -> Path:
    (root / ".venv").mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text(config)
    return root / ".venv"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root of the test's own, as ROOT for the check."""
    monkeypatch.setattr("tests.repo.test_install_and_run.ROOT", tmp_path)
    return tmp_path


def test_the_venv_uv_made_in_the_project_is_checked(project: Path) -> None:
    """A .venv whose pyvenv.cfg uv wrote is the one `make venv` syncs with bytecode."""
    assert made_by_make_venv(venv(project, UV_CFG))


def test_poetrys_in_project_venv_is_not(project: Path) -> None:
    """Poetry's .venv (virtualenv wrote its pyvenv.cfg) is not held to `make venv`'s promise."""
    assert not made_by_make_venv(venv(project, VIRTUALENV_CFG))


def test_a_venv_elsewhere_is_not(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Poetry's default, a virtualenv outside the project, is not checked either."""
    assert not made_by_make_venv(venv(tmp_path_factory.mktemp("elsewhere"), UV_CFG))


def test_ci_runs_poetry_install_and_the_whole_suite_on_a_fresh_clone() -> None:
    """.ci/run clones the commit, `poetry install`s it and runs `poetry run pytest` there."""
    script = (ROOT / ".ci" / "run").read_text()
    clone, install, suite = (
        script.index("git clone --quiet . "),
        script.index(".tools/poetry/bin/poetry install\n"),
        script.index(".tools/poetry/bin/poetry run pytest"),
    )
    assert clone < install < suite
    assert "POETRY_VIRTUALENVS_IN_PROJECT=true" in script
