"""Replay of the public CloudEvents conformance cases (github.com/cloudevents/conformance).

Each case is retargeted at the suite's default type: where its data is JSON, the data becomes a
valid payload of it (`tests.functions.Question`) and the event must be answered 200 in both
binary and structured mode; where its datacontenttype is not JSON, the contract of a JSON type
is 415. The cases live outside the
project (../shared); without them these tests skip, and the rest of the suite is unaffected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from eventfn.binding import is_json
from tests.helpers.support import QUERY, RESPONSE, SHARED, STRUCTURED, query

CASES_DIR = SHARED / "ce-conformance" / "yaml"
# Printable ASCII except space, double quote and percent needs no escaping (HTTP binding 3.1.3.2).
_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')


def load_cases() -> list[Any]:
    """Every (file, index, case) of the conformance YAML, or one skip marker without them."""
    if not CASES_DIR.is_dir():
        reason = f"the CloudEvents conformance cases are not at {CASES_DIR} (../shared is optional)"
        return [
            pytest.param(None, id="no-conformance-cases", marks=pytest.mark.skip(reason=reason))
        ]
    import yaml

    cases = []
    for path in sorted(CASES_DIR.rglob("*.yaml")):
        # BaseLoader keeps every scalar a string: `specversion: 1.0` must stay "1.0", not 1.0.
        docs = [d for d in yaml.load_all(path.read_text(), Loader=yaml.BaseLoader) if d]
        for index, doc in enumerate(docs):
            rel = path.relative_to(CASES_DIR)
            cases.append(pytest.param(doc, id=f"{rel}#{index}"))
    return cases


CASES = load_cases()


def modes_of(case: dict[str, Any]) -> list[str]:
    """The content modes a case is meant for (both when it does not say)."""
    mode = case.get("Mode")
    return [mode] if mode else ["binary", "structured"]


def retarget(case: dict[str, Any]) -> tuple[dict[str, str], bool, Any]:
    """The case's attributes aimed at the query type, whether its data is JSON, and its data."""
    context = dict(case["ContextAttributes"])
    extensions = context.pop("Extensions", None) or {}
    attributes = {**context, **extensions, "type": QUERY}
    json_data = is_json(attributes.get("datacontenttype"))
    data = query("conformance") if json_data else case.get("Data", "")
    return attributes, json_data, data


def request_for(case: dict[str, Any], mode: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of the retargeted case in `mode`."""
    attributes, json_data, data = retarget(case)
    transport = dict(case.get("TransportExtensions") or {})
    body_data = orjson.dumps(data) if json_data else str(data).encode()
    if mode == "binary":
        headers = {**transport}
        for name, value in attributes.items():
            if name == "datacontenttype":
                headers["content-type"] = value
            else:
                headers[f"ce-{name}"] = quote(value, safe=_SAFE)
        return headers, body_data
    event: dict[str, Any] = {**attributes, "data": data}
    return {**transport, "content-type": STRUCTURED}, orjson.dumps(event)


@pytest.mark.parametrize("case", CASES)
async def test_conformance_case(client: httpx.AsyncClient, case: dict[str, Any]) -> None:
    """Valid events get 200 and a reply in their mode; non-JSON data on a JSON type is 415."""
    _, json_data, _ = retarget(case)
    for mode in modes_of(case):
        headers, body = request_for(case, mode)
        response = await client.post("/", headers=headers, content=body)
        if not json_data:
            assert response.status_code == 415, (mode, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            continue
        assert response.status_code == 200, (mode, response.text)
        if mode == "binary":
            assert response.headers["ce-type"] == RESPONSE
            reply_data = response.json()
        else:
            assert response.headers["content-type"] == STRUCTURED
            reply = response.json()
            assert reply["type"] == RESPONSE
            reply_data = reply["data"]
        assert reply_data["result"] == {"message": "Processed query: conformance"}


def test_conformance_cases_are_found_when_shared_is_present() -> None:
    """When ../shared is there, the replay really runs cases of both spec versions."""
    if not CASES_DIR.is_dir():
        pytest.skip(f"no conformance cases at {CASES_DIR}")
    versions = {c.values[0]["ContextAttributes"]["specversion"] for c in CASES}
    assert versions == {"1.0", "0.3"}
    assert len(CASES) >= 10


def test_shared_is_outside_the_project() -> None:
    """The cases are read from ../shared, never vendored into the project."""
    assert not Path(CASES_DIR).resolve().is_relative_to(Path(__file__).resolve().parents[2])
