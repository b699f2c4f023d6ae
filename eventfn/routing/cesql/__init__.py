"""CESQL v1, the CloudEvents SQL expression language: parse once, evaluate per event.

    expression = cesql.compile("region = 'eu' AND priority > 3")
    expression.matches({"region": "eu", "priority": 5})      # True: the filter's question
    expression.evaluate({"region": "eu"})                    # Result(False, <missingAttribute>)

`compile` parses the expression (`descent`) into closures (`nodes`), so an event costs a few
Python calls and no tree walk. Every error comes with the value the spec says goes with it and
its kind, named as the TCK names them (`Kind`): a syntax error is a `ParseError` raised by
`compile` with its position; the others come back from `evaluate` in the `Result`.
Attributes are given as a mapping of lowercase names to `bool`, `int` or `str`
(`attributes_of` makes one from a structured-mode event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventfn.routing.cesql.descent import parse
from eventfn.routing.cesql.nodes import Attributes, Node
from eventfn.routing.cesql.types import (
    ZERO,
    CesqlError,
    EvaluationError,
    Kind,
    ParseError,
    Type,
    Value,
    attribute_value,
)

__all__ = [
    "CesqlError",
    "Expression",
    "Kind",
    "ParseError",
    "Result",
    "Type",
    "Value",
    "attributes_of",
    "compile",
]


@dataclass(frozen=True, slots=True)
class Result:
    """An evaluation's value and its error (None when it succeeded)."""

    value: Value
    error: CesqlError | None = None


class Expression:
    """A compiled CESQL expression."""

    __slots__ = ("_fn", "_root", "problems", "source", "type")

    def __init__(self, source: str, root: Node) -> None:
        self.source = source
        self.type = root.type
        # What fails on every event whatever it holds (a call no function answers).
        self.problems = root.problems
        self._fn = root.fn
        self._root = root.tag

    def evaluate(self, attributes: Attributes) -> Result:
        """The value and the error (fail-fast: the first error ends the evaluation)."""
        try:
            return Result(self._fn(attributes))
        except EvaluationError as e:
            value = e.value if e.origin is self._root else ZERO[self.type]
            return Result(value, e)

    def matches(self, attributes: Attributes) -> bool:
        """The filter's answer: true only for a Boolean true without error (spec 1.2)."""
        try:
            return self._fn(attributes) is True
        except EvaluationError:
            return False

    def __repr__(self) -> str:
        return f"cesql.compile({self.source!r})"


def compile(expression: str) -> Expression:
    """Parse and compile `expression`; a `ParseError` (kind parse, with its position) if invalid."""
    return Expression(expression, parse(expression))


_PRIMITIVE = frozenset({bool, int, str})
_DATA = frozenset({"data", "data_base64"})


def attributes_of(event: Mapping[str, Any]) -> dict[str, Value]:
    """The context attributes of a structured-mode event (its data left out), as CESQL sees them.

    Names are taken as they are: CloudEvents attribute names are lowercase (the binding checks).
    """
    return {
        name: value if value.__class__ in _PRIMITIVE else attribute_value(value)  # type: ignore[misc]
        for name, value in event.items()
        if value is not None and name not in _DATA
    }


# The kinds by name, for callers that print them.
KINDS = {kind.value: kind for kind in Kind}
