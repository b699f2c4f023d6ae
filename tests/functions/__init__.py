"""The suite's own function: its models, event types, catalogue, handlers and registry.

The suites test the runtime, not the example in `handler/` and `schemas/`, which a user edits,
replaces or deletes: they serve this function instead (in process through
`tests.helpers.support`, and in the processes they start), so that whatever the user's catalogue
holds leaves them as they are. Only the few tests that check the shipped example itself import
it (named `test_example*`).

It has what a real function has: a consumed type with a reply (`ASK`, served as `query` at
`/api/v1/query`, the shape `ui/app.py` and the seed test plan ask), a fire-and-forget type
(`NOTE`) and a type it only produces (`NOTICE`).
"""

from tests.functions.catalogue import (
    ANSWER,
    ASK,
    ASK_CATALOGUE,
    CATALOGUE,
    NOTE,
    NOTICE,
    Answer,
    AnswerMetadata,
    Note,
    Notice,
    Question,
)
from tests.functions.handlers import answer, registry, registry_with, take_note

__all__ = [
    "ANSWER",
    "ASK",
    "ASK_CATALOGUE",
    "CATALOGUE",
    "NOTE",
    "NOTICE",
    "Answer",
    "AnswerMetadata",
    "Note",
    "Notice",
    "Question",
    "answer",
    "registry",
    "registry_with",
    "take_note",
]
