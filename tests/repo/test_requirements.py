"""requirements.txt is the export of uv.lock (for pip-based builders), never hand-edited."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.support import ROOT

UV = ROOT / ".tools" / "bin" / "uv"


def without_header(text: str) -> list[str]:
    """The requirement lines: uv's header names the command and output path, so it is skipped."""
    return [line for line in text.splitlines() if not line.startswith("#")]


@pytest.mark.skipif(not UV.exists(), reason=f"uv not bootstrapped at {UV} (run `make venv`)")
def test_requirements_txt_equals_the_export_of_the_lock() -> None:
    """`uv export --frozen --no-dev --no-hashes --no-emit-project` gives requirements.txt."""
    exported = subprocess.run(
        [str(UV), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    committed = (ROOT / "requirements.txt").read_text()
    assert without_header(committed) == without_header(exported), "run `make requirements`"
