"""The suites test the runtime on a function of their own, never on the example a user edits.

`handler/` and `schemas/` ship an example (the query type) that a user moves, replaces or removes;
the suites serve `tests/functions` instead. These checks keep it so: only the tests of the example
name it, only the tests of the shipped function import it, and the seed-plan cases and the suites
that used to depend on it pass with a new type first in its catalogue and with it removed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.support import ROOT

TESTS = ROOT / "tests"
# The example's names: its types (and their slugs, the rendered files' names), its specs, its
# handler, its models and their module.
EXAMPLE = re.compile(
    r"com\.example\.query|com-example-query|QUERY_REQUEST|QUERY_RESPONSE|handle_query|"
    r"QueryRequest|QueryResponse|QueryMetadata|schemas\.query"
)
# The tests of the example itself, and the stand-in for a user who changed the example (for the
# last test here).
NAME_THE_EXAMPLE = {
    "test_example.py",
    "test_suite_function.py",
    "replaced_example.py",
}
# Tests of the function as it ships, whatever its catalogue holds: the manifests rendered from
# it, the FUNCTION_REGISTRY default, func's adapter around it.
IMPORT_THE_FUNCTION = {
    "test_entry_points.py",
    "test_example.py",
    "test_manifests.py",
    "test_rollout.py",
    "test_public_api.py",
    "test_function_package.py",
    "test_func_host_builder.py",
}
USER_PACKAGES = {"handler", "schemas"}


def sources() -> list[Path]:
    return sorted(TESTS.rglob("*.py"))


def imports_user_code(path: Path) -> bool:
    """Whether `path` imports `handler` or `schemas` (anywhere, in a function too) or names
    `handler.functions` as a FUNCTION_REGISTRY."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = ["handler"] if node.value.startswith("handler.functions:") else []
        else:
            continue
        if any(name.split(".")[0] in USER_PACKAGES for name in names):
            return True
    return False


def test_only_the_tests_of_the_example_name_it() -> None:
    """The query type's names appear in tests/repo/test_example.py (and the bench's tests) only."""
    naming = {
        str(path.relative_to(TESTS))
        for path in sources()
        if EXAMPLE.search(path.read_text()) and path.name not in NAME_THE_EXAMPLE
    }
    assert naming == set(), (
        "these tests name the example query type: serve tests/functions (tests.helpers.support's "
        "QUERY, RESPONSE, make_app, registry_with) instead, or move a test of the example "
        "itself to tests/repo/test_example.py"
    )


def test_only_the_tests_of_the_shipped_function_import_it() -> None:
    """`handler` and `schemas` are imported by the tests of the function as it ships only."""
    importing = {
        str(path.relative_to(TESTS))
        for path in sources()
        if path.name not in IMPORT_THE_FUNCTION | NAME_THE_EXAMPLE and imports_user_code(path)
    }
    assert importing == set(), (
        "these tests import the user's handler/ or schemas/: build on tests/functions, or, "
        "for a test of the function as it ships, say so in IMPORT_THE_FUNCTION"
    )


# The cases a changed default type or a missing example broke, and the seed plan's own.
CHANGED_EXAMPLE_CASES = [
    "tests/repo/test_example.py",
    "tests/unit/test_catalogue.py",
    "tests/unit/test_plain_json.py",
    "tests/unit/test_facade.py",
    "tests/repo/test_public_api.py",
    "tests/integration/test_cli.py",
    "tests/repo/test_install_and_run.py::test_plan_unit_test_posts_plain_json_to_the_root",
    "tests/repo/test_install_and_run.py::test_testclient_with_lifespan_answers_a_binary_event",
    "tests/repo/test_install_and_run.py::test_asgi_app_reads_its_settings_from_the_environment",
]


@pytest.mark.parametrize("variant", ["first", "removed"], ids=["new-type-first", "removed"])
def test_the_suites_pass_whatever_the_example_becomes(variant: str) -> None:
    """With a new type first in the example's catalogue, and with the example removed (the new
    type alone), the seed-plan cases and the suites that once depended on it pass."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-p", "tests.functions.replaced_example", "-m", "not server"),
            *CHANGED_EXAMPLE_CASES,
        ],
        cwd=ROOT,
        env={**os.environ, "REPLACED_EXAMPLE": variant},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.strip().splitlines()[-1]
    # The example's own tests run while it is there and skip (saying why) once it is gone.
    gone = variant == "removed" or importlib.util.find_spec("schemas.query") is None
    skipped = re.search(r"^SKIPPED \[\d+\] tests/repo/test_example\.py", done.stdout, re.MULTILINE)
    assert bool(skipped) is gone, done.stdout[-4000:]
