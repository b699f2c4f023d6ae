"""The README and the manual stay true to the code: generated pages fresh, every alarm explained.

The manual builds with `mkdocs build --strict` in `make lint` (a broken link, a missing snippet
or a page out of the nav fails it); these tests hold what a build cannot see.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    """scripts/gen_reference.py, loaded as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "scripts/gen_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["docs/reference/configuration.md", "docs/reference/metrics.md"])
def test_generated_reference_page_is_what_the_code_gives(page: str) -> None:
    """Each generated reference page equals what `make docs-reference` writes from the code."""
    gen = generator()
    expected = gen.PAGES[page]()
    actual = (ROOT / page).read_text() if (ROOT / page).exists() else ""
    assert actual == expected, f"{page} is stale: run `{gen.COMMAND}` and commit the page"


def test_every_setting_is_on_the_configuration_page() -> None:
    """Every `Settings` field appears as its environment variable on the configuration page."""
    from eventfn.core.config import Settings

    page = (ROOT / "docs/reference/configuration.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in page]
    assert not missing, f"not on the configuration page: {missing}; run `make docs-reference`"


def alarm_events() -> set[str]:
    """The event names of every warning, error and exception the runtime logs."""
    pattern = re.compile(r"log\w*\.(?:warning|error|exception|critical)\(\s*\"([a-z_]+)\"")
    return {
        name
        for path in (ROOT / "eventfn").rglob("*.py")
        for name in pattern.findall(path.read_text())
    }


def test_every_warning_and_error_log_event_is_in_the_runbook() -> None:
    """Each warning/error log event of `eventfn/` has its entry in the runbook."""
    runbook = (ROOT / "docs/operations/runbook.md").read_text()
    missing = sorted(name for name in alarm_events() if f"`{name}`" not in runbook)
    assert not missing, (
        f"log events without a runbook entry (docs/operations/runbook.md): {missing}"
    )


def test_the_readme_is_short_and_names_the_two_commands() -> None:
    """README.md fits in 150 lines and names `make run` and `make test`."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme
    assert "make test" in readme


def code_lines(text: str) -> list[str]:
    """Non-blank lines without their trailing comments, stripped."""
    return [line.split("  #")[0].strip() for line in text.splitlines() if line.strip()]


def test_the_readmes_example_is_the_runnable_examples_code() -> None:
    """Every line of the README's Python example is a line of examples/orders/ (which tests run)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    example = {
        line
        for path in (ROOT / "examples/orders").glob("*.py")
        for line in code_lines(path.read_text())
    }
    missing = [line for line in code_lines(block) if line not in example]
    assert not missing, f"README lines not in examples/orders/: {missing}"


def test_every_python_example_in_the_manual_is_an_included_file_of_examples() -> None:
    """Each ```python block of docs/ is a snippet of a file of examples/ or tests/ (both run)."""
    fence = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
    inline = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for match in fence.finditer(page.read_text()):
            body = [line.strip() for line in match.group(2).splitlines() if line.strip()]
            snippet = r'--8<-- "(examples|tests)/[^"]+"'  # files that `make test` runs
            if not body or not all(re.fullmatch(snippet, line) for line in body):
                inline.append(str(page.relative_to(ROOT)))
    assert not inline, (
        f"Python written inline (make it a file of examples/ and include it): {inline}"
    )


def test_every_link_of_the_readme_reaches_a_file() -> None:
    """The README's relative links (into docs/ and examples/) name files that exist."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?://|#)[^)#]+)", readme)
    assert targets
    broken = [target for target in targets if not (ROOT / target).exists()]
    assert not broken, f"README links to nothing: {broken}"


def test_every_stage_of_the_layers_contract_is_on_the_architecture_page() -> None:
    """Each layer of pyproject's import contract has its row on docs/internals/architecture.md."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [
        contract["layers"]
        for contract in config["tool"]["importlinter"]["contracts"]
        if contract.get("containers") == ["eventfn"]
    ]
    page = (ROOT / "docs/internals/architecture.md").read_text()
    stages = [name.strip() for layer in layers for name in layer.split("|")]
    missing = [
        name for name in stages if not any(f"`{name}{end}`" in page for end in ("", "/", ".py"))
    ]
    assert not missing, f"stages without a row on docs/internals/architecture.md: {missing}"
