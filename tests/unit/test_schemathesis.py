"""schemathesis against the app's own OpenAPI document, in-process: no 5xx, answers as documented.

The schema is loaded from the running app (ASGI, no socket); each generated request is sent to it
and checked by schemathesis' default checks: not a server error, status code and content type
documented, body matching the documented schema. Bounded by `max_examples` to keep the suite fast.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.support import make_app
from tests.helpers.support import suite_settings as settings_for

FACADE = r"^/api/v1/(query|schemas)"
API_KEY = "schemathesis-key-7c1f"


def operations(path_regex: str, **overrides: Any) -> list[Any]:
    """The app's API operations matching `path_regex`, from its OpenAPI document."""
    app = make_app(settings_for(**overrides))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.include(path_regex=path_regex).get_all_operations()]


def run(
    found: list[Any],
    mode: schemathesis.GenerationMode,
    examples: int,
    headers: dict[str, str] | None = None,
) -> None:
    """Send `examples` generated requests and validate every answer."""
    strategy = st.one_of(*(op.as_strategy(mode) for op in found))

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers)

    check()


@pytest.mark.parametrize(
    ("mode", "examples"),
    [(schemathesis.GenerationMode.POSITIVE, 80), (schemathesis.GenerationMode.NEGATIVE, 60)],
    ids=["valid requests", "invalid requests"],
)
def test_facade_conforms_to_its_openapi(mode: schemathesis.GenerationMode, examples: int) -> None:
    """Valid and invalid generated requests: never a 5xx, every answer as documented."""
    found = operations(FACADE)
    assert len(found) >= 3
    run(found, mode, examples)


def test_protected_facade_conforms_to_its_openapi() -> None:
    """With API keys on, both authorized answers and 401s match the document."""
    found = operations(FACADE, api_keys=[API_KEY])
    run(found, schemathesis.GenerationMode.POSITIVE, 30, headers={"X-API-Key": API_KEY})
    run(found, schemathesis.GenerationMode.POSITIVE, 15)
