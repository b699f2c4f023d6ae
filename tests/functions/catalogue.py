"""The suite function's payload models and event catalogue.

`Question` is bounded as a user's request model should be (the runtime's tests send it payloads
that are too long, too wide or too deep, and expect a 400, never a 500).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from eventfn import Catalogue, EventSpec

MAX_QUERY_LENGTH = 10_000
MAX_PARAMETERS = 100
# Past ~250 levels pydantic cannot serialize a value (a 500 on the dedupe fingerprint).
MAX_PARAMETERS_DEPTH = 32


def _bounded_depth(value: Any) -> Any:
    """Reject containers nested deeper than MAX_PARAMETERS_DEPTH (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = list(item.values()) if isinstance(item, dict) else item
        if not isinstance(children, list) or not children:
            continue
        if depth >= MAX_PARAMETERS_DEPTH:
            raise ValueError(f"parameters nest deeper than {MAX_PARAMETERS_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


class Question(BaseModel):
    """What the suite's function is asked."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "What is Knative?"}]},
    )

    query: Annotated[
        str,
        Field(min_length=1, max_length=MAX_QUERY_LENGTH, pattern=r"\S", description="The text."),
    ]
    parameters: Annotated[
        dict[str, Any] | None,
        Field(default=None, max_length=MAX_PARAMETERS, description="Free-form parameters."),
        AfterValidator(_bounded_depth),
    ] = None


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class AnswerMetadata(BaseModel):
    """When the answer was made (RFC 3339, UTC), and whatever else a handler adds."""

    model_config = ConfigDict(extra="allow")

    timestamp: Annotated[AwareDatetime, AfterValidator(_in_utc)] = Field(default_factory=_now)


class Answer(BaseModel):
    """The reply to a `Question`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"result": {"message": "Processed query: q"}}]},
    )

    result: dict[str, Any] = Field(description="What the handler produced.")
    metadata: AnswerMetadata = Field(default_factory=AnswerMetadata)


class Note(BaseModel):
    """A fire-and-forget message: handled, never answered."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, description="What to note.")]


class Notice(BaseModel):
    """What the function publishes on its own (a produced-only type)."""

    text: str = Field(description="What happened.")


ANSWER = EventSpec(
    type="dev.eventfn.tests.answer",
    model=Answer,
    description="The answer to dev.eventfn.tests.ask.",
)
ASK = EventSpec(
    type="dev.eventfn.tests.ask",
    model=Question,
    description="A question for the suite's function.",
    consumes=True,
    reply=ANSWER,
    name="query",
)
NOTE = EventSpec(
    type="dev.eventfn.tests.note",
    model=Note,
    description="A note the suite's function takes without answering.",
    consumes=True,
    name="note",
)
NOTICE = EventSpec(
    type="dev.eventfn.tests.notice",
    model=Notice,
    description="A notice the suite's function publishes on its own.",
)

CATALOGUE = Catalogue((ASK, NOTE, NOTICE))
"""The suite's function: `ASK` first, so it is the default type (plain JSON, typeless messages)."""

ASK_CATALOGUE = Catalogue((ASK,))
"""`ASK` alone: for tests that give it a handler of their own and need nothing else."""
