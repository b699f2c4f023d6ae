"""The CloudEvents CESQL TCK (../shared/cesql/tck), every case: value and error kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eventfn.routing import cesql

TCK = Path(__file__).resolve().parents[3] / "shared" / "cesql" / "tck"

# Any valid event serves where a case gives none (the TCK's "any valid event can be passed").
BASE_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "tck-event",
    "source": "http://localhost/tck",
    "type": "io.cloudevents.tck",
}


class _NoTimestamps(yaml.SafeLoader):
    """YAML as JSON would read it: a timestamp is the string it is written as."""


_NoTimestamps.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _cases() -> list[Any]:
    if not TCK.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no CESQL TCK at {TCK}"))]
    params: list[Any] = []
    for path in sorted(TCK.glob("*.yaml")):
        suite = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoTimestamps)  # noqa: S506
        params.extend(pytest.param(c, id=f"{path.stem}: {c['name']}") for c in suite["tests"])
    return params


def _event(case: dict[str, Any]) -> dict[str, Any]:
    event = dict(case["event"]) if "event" in case else dict(BASE_EVENT)
    event.update(case.get("eventOverrides") or {})
    return event


@pytest.mark.parametrize("case", _cases())
def test_tck_case(case: dict[str, Any]) -> None:
    """The expression evaluates to the TCK's result, with the TCK's error kind (or none)."""
    expected_error = case.get("error")
    source = str(case["expression"])  # YAML reads `TRUE` as a bool
    if expected_error == "parse":
        with pytest.raises(cesql.ParseError):
            cesql.compile(source)
        return
    expression = cesql.compile(source)
    result = expression.evaluate(cesql.attributes_of(_event(case)))
    assert (result.error.kind if result.error else None) == expected_error, result.error
    if "result" in case:
        assert result.value == case["result"]
        assert type(result.value) is type(case["result"])


def test_the_tck_is_whole() -> None:
    """All 275 cases of the TCK are collected (none lost to a file that stopped loading)."""
    if not TCK.is_dir():
        pytest.skip(f"no CESQL TCK at {TCK}")
    assert len(_cases()) == 275
