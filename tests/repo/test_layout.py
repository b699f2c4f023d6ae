"""The runtime's layout: modules of one job, and a suite that says why it waits.

The import contracts themselves are `lint-imports` (pyproject.toml, run by `make lint`); these
are the rules a contract cannot say.
"""

from __future__ import annotations

import ast
import re

from tests.helpers.support import ROOT

RUNTIME = ROOT / "eventfn"
MAX_LINES = 350
# A module over MAX_LINES says why in its docstring, in a sentence beginning like this.
REASON = re.compile(r"Over 350 lines on purpose: \S")


def test_no_runtime_module_is_over_350_lines_without_saying_why() -> None:
    """A long module is a second job waiting to be split, unless its docstring says otherwise."""
    unexplained = []
    for path in sorted(RUNTIME.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if not REASON.search(docstring):
            unexplained.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert unexplained == []


def test_the_suite_sleeps_only_where_it_says_why() -> None:
    """Every real-time wait left in tests/ is on another process and says so on its line or
    the lines above it; the loop's own timers run on virtual time (tests/helpers/loop_time.py)."""
    silent = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            if not re.search(r"\b(time|asyncio)\.sleep\(", line) or line.lstrip().startswith("#"):
                continue
            context = [line, *lines[max(0, n - 3) : n]]
            if not any("#" in text for text in context):
                silent.append(f"{path.relative_to(ROOT)}:{n + 1}: {line.strip()}")
    assert silent == []
