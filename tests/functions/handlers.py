"""The suite function's handlers and its registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventfn import Registry
from tests.functions.catalogue import ASK, ASK_CATALOGUE, CATALOGUE, NOTE, Answer, Note, Question

registry = Registry(CATALOGUE)


@registry.handles(ASK)
async def answer(question: Question) -> Answer:
    """Answer the question with its text (the wording of the seed handler the plan asks for)."""
    return Answer(result={"message": f"Processed query: {question.query}"})


@registry.handles(NOTE)
async def take_note(_note: Note) -> None:
    """Take the note; there is nothing to answer (202)."""


def registry_with(handler: Callable[..., Any]) -> Registry:
    """A registry of `ASK` alone, handled by `handler` (a test's own)."""
    own = Registry(ASK_CATALOGUE)
    own.handles(ASK)(handler)
    return own
