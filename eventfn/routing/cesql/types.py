"""CESQL's values, types, casts and error kinds (CESQL v1, sections 3.1, 3.3 and 3.7).

A value is a Python `bool`, `int` (32-bit by contract, checked where it is computed) or `str`.
`bool` is a subclass of `int` in Python, so every check here is on `type(v)`, never `isinstance`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum, StrEnum
from typing import Final

Value = bool | int | str

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1


class Kind(StrEnum):
    """The error kinds, named as the TCK names them."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_ATTRIBUTE = "missingAttribute"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    GENERIC = "generic"


class Type(Enum):
    """The static type of a subexpression; ANY where only the event can tell (an attribute)."""

    BOOLEAN = "Boolean"
    INTEGER = "Integer"
    STRING = "String"
    ANY = "Any"


# The zero value of each type; ANY's is Boolean's (spec 3.2: an undeterminable type is Boolean).
ZERO: Final[dict[Type, Value]] = {
    Type.BOOLEAN: False,
    Type.INTEGER: 0,
    Type.STRING: "",
    Type.ANY: False,
}


class CesqlError(Exception):
    """An error of CESQL: its kind, and the value the failing operation returns with it."""

    def __init__(self, kind: Kind, message: str, value: Value = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.value = value


class ParseError(CesqlError, ValueError):
    """The expression does not parse; `position` is its 1-based column (line 1 is the usual)."""

    def __init__(self, message: str, expression: str, line: int, column: int) -> None:
        super().__init__(Kind.PARSE, f"{message} at line {line} column {column}", False)
        self.expression = expression
        self.line = line
        self.column = column


class EvaluationError(CesqlError):
    """Raised while evaluating: `origin` is the node that failed (it decides the value reported)."""

    def __init__(self, kind: Kind, message: str, value: Value, origin: object) -> None:
        super().__init__(kind, message, value)
        self.origin = origin


class CastFailure(Exception):
    """A cast that has no result; the operator doing it turns it into a `cast` error."""


def type_of(value: Value) -> Type:
    t = type(value)
    if t is bool:
        return Type.BOOLEAN
    if t is int:
        return Type.INTEGER
    return Type.STRING


def to_string(value: Value) -> str:
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    if t is bool:
        return "true" if value else "false"
    return str(value)


def to_integer(value: Value) -> int:
    t = type(value)
    if t is int:
        return value  # type: ignore[return-value]
    if t is bool:
        return 1 if value else 0
    text = str(value)  # a str: base 10, an optional sign, nothing else (no spaces, no `_`)
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body.isascii() or not body.isdigit():
        raise CastFailure(f"cannot cast {text!r} to Integer")
    number = int(text)
    if not INT_MIN <= number <= INT_MAX:
        raise CastFailure(f"{text!r} overflows a 32-bit Integer")
    return number


def to_boolean(value: Value) -> bool:
    """The explicit cast (BOOL): Integer 0 is false, any other Integer true."""
    t = type(value)
    if t is bool:
        return value  # type: ignore[return-value]
    if t is int:
        return value != 0
    return _string_to_boolean(value)  # type: ignore[arg-type]


def implicit_boolean(value: Value) -> bool:
    """The implicit cast of a logic operand: an Integer is a cast error (the TCK's `NOT 10`)."""
    t = type(value)
    if t is bool:
        return value  # type: ignore[return-value]
    if t is int:
        raise CastFailure(f"an Integer ({value}) is not a Boolean operand")
    return _string_to_boolean(value)  # type: ignore[arg-type]


def _string_to_boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise CastFailure(f"cannot cast {text!r} to Boolean")


CASTS: Final[dict[Type, Callable[[Value], Value]]] = {
    Type.BOOLEAN: to_boolean,
    Type.INTEGER: to_integer,
    Type.STRING: to_string,
}


def attribute_value(value: object) -> Value:
    """An event attribute as CESQL sees it: Boolean, Integer and String kept, the rest a String."""
    if type(value) in (bool, int, str):
        return value  # type: ignore[return-value]
    return str(value)
