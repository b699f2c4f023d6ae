"""The hand-written CESQL parser parses as the spec's grammar does (lark,
`tests/helpers/cesql_lark.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from eventfn.routing.cesql import Expression, ParseError, descent
from tests.helpers import cesql_lark
from tests.unit.test_cesql_tck import _cases

# Corners the TCK leaves out: signs and spaces, grouping, keywords where a name may stand,
# malformed sets and calls, quotes, positions across lines.
CORNERS = [
    "4-1",
    "4 -1",
    "- 5",
    "-2147483648",
    "- 2147483648",
    "+5",
    "+ 5",
    "--10",
    "2*-3",
    "a AND b OR c",
    "a OR b XOR c AND a",
    "NOT a LIKE 'x%'",
    "NOT NOT TRUE",
    "1 = 1 = TRUE",
    "and = 1",
    "in = 2",
    "EXISTS in",
    "exists",
    "x IN ()",
    "x IN (1,)",
    "x IN ('a', b, 3)",
    "x NOT 1",
    "x NOT LIKE 1",
    "a LIKE",
    "x LIKE 'a' LIKE 'b'",
    "LIKE",
    "NOT",
    "TRUE AND",
    "f()",
    "f(1,)",
    "TRUE()",
    "concat_ws(',')",
    "Concat('a')",
    "ABS(-2147483648)",
    "-(2147483648)",
    "'abc",
    "a_b",
    "1abc = 1",
    "12_",
    "a b",
    "(a",
    "a)",
    "a = = b",
    "\n a =",
    "a <>b",
    "a!=b",
    "'a''b'",
    '"a""b"',
    "'a\\'b'",
    "priority > 3\n AND (tier",
]
EXPRESSIONS = sorted(
    {str(p.values[0]["expression"]) for p in _cases() if p.values[0] is not None} | set(CORNERS)
)
ATTRIBUTES: list[dict[str, Any]] = [
    {},
    {"a": True, "b": False, "c": "x", "x": "1", "in": 1, "and": 1, "myext": "abc"},
]


def outcome(parse: Any, expression: str) -> Any:
    """The parse error's position, or the value, type and error kind against each attribute set."""
    try:
        compiled = Expression(expression, parse(expression))
    except ParseError as e:
        return ("parse", e.line, e.column)
    results = [compiled.evaluate(a) for a in ATTRIBUTES]
    shown = [(r.value, type(r.value), r.error and r.error.kind) for r in results]
    return shown, compiled.problems


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_hand_written_parser_agrees_with_the_reference_grammar(expression: str) -> None:
    """Same values, same errors, same parse-error positions as the lark grammar."""
    assert outcome(descent.parse, expression) == outcome(cesql_lark.compile_tree, expression)
