"""The CESQL engine beyond the TCK: grammar corners, 32-bit arithmetic, errors, filter answers."""

from __future__ import annotations

from typing import Any

import pytest

from eventfn.routing import cesql


def run(expression: str, **attributes: Any) -> tuple[Any, str | None]:
    """The value and the error kind of `expression` against `attributes`."""
    result = cesql.compile(expression).evaluate(attributes)
    return result.value, None if result.error is None else result.error.kind.value


@pytest.mark.parametrize(
    "expression", ["region = 'eu' and TIER = 'gold'", "Region = 'eu' AnD tier = 'gold'"]
)
def test_keywords_and_attribute_names_are_case_insensitive(expression: str) -> None:
    """`and`, `AND` and `AnD` are one keyword; `TIER` is the attribute `tier`."""
    assert run(expression, region="eu", tier="gold") == (True, None)


def test_and_or_xor_share_a_level_and_group_to_the_right() -> None:
    """As the spec's grammar (and Knative's engine) parse it: `a AND b OR c` is `a AND (b OR c)`."""
    assert run("FALSE AND TRUE OR TRUE") == (False, None)
    assert run("(FALSE AND TRUE) OR TRUE") == (True, None)


def test_not_binds_tighter_than_like() -> None:
    """`NOT x LIKE p` is `(NOT x) LIKE p`: NOT comes first in the precedence list."""
    assert run("NOT flag LIKE 'fal%'", flag=True) == (True, None)


def test_subtraction_needs_no_spaces() -> None:
    """`4-1` is a subtraction, though `-1` alone is a literal."""
    assert run("4-1") == (3, None)
    assert run("4 - -1") == (5, None)


@pytest.mark.parametrize(
    ("expression", "value"), [("-7 / 2", -3), ("7 / -2", -3), ("-7 % 2", -1), ("7 % -2", 1)]
)
def test_division_truncates_toward_zero_and_modulo_keeps_the_dividends_sign(
    expression: str, value: int
) -> None:
    """`/` rounds toward 0; `%` has the sign of its left operand."""
    assert run(expression) == (value, None)


@pytest.mark.parametrize(
    "expression",
    ["2147483647 + 1", "-2147483648 - 1", "65536 * 65536", "-(-2147483648)", "-2147483648 / -1"],
)
def test_leaving_32_bits_is_a_math_error_returning_zero(expression: str) -> None:
    """Integer results outside the signed 32-bit range are a math error, value 0."""
    assert run(expression) == (0, "math")


def test_an_integer_literal_outside_32_bits_does_not_parse() -> None:
    """2147483648 is no Integer literal; -2147483648 is one."""
    with pytest.raises(cesql.ParseError, match="32-bit"):
        cesql.compile("2147483648")
    assert run("-2147483648") == (-2147483648, None)


def test_a_string_that_overflows_is_a_cast_error() -> None:
    """An attribute '2147483648' cannot be cast to an Integer."""
    assert run("big > 1", big="2147483648") == (False, "cast")


@pytest.mark.parametrize(
    ("expression", "line", "column"),
    [("region =", 1, 9), ("region = 'eu' AND\n  (tier", 2, 8), ("a @ b", 1, 3), ("a_b = 1", 1, 1)],
)
def test_a_parse_error_has_its_line_and_column(expression: str, line: int, column: int) -> None:
    """The position is where parsing stopped (the end, for an unfinished expression)."""
    with pytest.raises(cesql.ParseError) as raised:
        cesql.compile(expression)
    assert (raised.value.kind, raised.value.line, raised.value.column) == ("parse", line, column)


def test_a_call_no_function_answers_compiles_and_fails_every_evaluation() -> None:
    """It parses (the TCK's missingFunction is an evaluation error), and says so up front."""
    expression = cesql.compile("NOPE(1) OR TRUE")
    assert expression.problems == ("no function NOPE takes 1 argument(s)",)
    assert run("NOPE(1) OR TRUE") == (False, "missingFunction")


def test_trim_removes_unicode_whitespace_but_not_control_characters() -> None:
    """U+3000 (ideographic space) goes; U+001F (a control character Python calls space) stays."""
    assert run("TRIM(x)", x="\u3000a\u3000") == ("a", None)
    assert run("TRIM(x)", x="\x1fa\x1f") == ("\x1fa\x1f", None)


@pytest.mark.parametrize(
    ("value", "pattern", "matches"),
    [
        ("a.c", "a.c", True),
        ("abc", "a.c", False),
        ("a*(c", "a*(%", True),
        ("line\nbreak", "line%", True),
        ("x\nyz", "x_y%", True),
        ("100%", "100\\%", True),
        ("100x", "100\\%", False),
    ],
)
def test_like_patterns_are_literal_except_for_percent_and_underscore(
    value: str, pattern: str, matches: bool
) -> None:
    """Regular-expression characters are plain text; `%` and `_` match newlines too."""
    assert run(f"v LIKE '{pattern}'", v=value) == (matches, None)


def test_in_casts_the_elements_to_the_left_operands_type() -> None:
    """An Integer attribute against String elements compares as Integers."""
    assert run("n IN ('1', '2')", n=2) == (True, None)
    assert run("n IN (m, 5)", n="5", m="6") == (True, None)
    assert run("n IN ('x')", n=2) == (False, "cast")


def test_quotes_are_escaped_by_backslash_or_doubling() -> None:
    """`\\'` and `''` both stand for a quote in a single-quoted string."""
    assert run("'it\\'s' = 'it''s'") == (True, None)


@pytest.mark.parametrize(
    ("expression", "attributes", "passes"),
    [
        ("TRUE", {}, True),
        ("region = 'eu'", {"region": "eu"}, True),
        ("region", {"region": "true"}, False),
        ("1", {}, False),
        ("missing = 'x' OR TRUE", {}, False),
    ],
)
def test_a_filter_passes_only_on_a_boolean_true_without_error(
    expression: str, attributes: dict[str, Any], passes: bool
) -> None:
    """`matches` is the Subscriptions API's answer: a String 'true' or an error is no match."""
    assert cesql.compile(expression).matches(attributes) is passes


def test_one_compiled_expression_evaluates_many_events_without_changing_them() -> None:
    """Compile once, evaluate per event; the attributes are left as they were."""
    expression = cesql.compile("priority > 3")
    events = [{"priority": n} for n in range(6)]
    assert [expression.matches(e) for e in events] == [False] * 4 + [True] * 2
    assert events[5] == {"priority": 5}


def test_attributes_of_leaves_the_data_out_and_keeps_the_types() -> None:
    """Integers and Booleans stay; `data` and `data_base64` are not attributes."""
    event = {"id": "1", "priority": 5, "vip": True, "data": {"x": 1}, "data_base64": "eA=="}
    assert cesql.attributes_of(event) == {"id": "1", "priority": 5, "vip": True}
