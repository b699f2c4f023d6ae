"""CESQL's built-in functions (spec 3.5) and how a call is dispatched by name and arity.

A function returns its value, or raises `FunctionFailure` carrying the value the spec says it
returns with its error (`LEFT('abc', -2)` is `'abc'` and a functionEvaluation error). `call`
compiles an invocation: the overload is resolved once, when the expression is parsed, and each
argument is cast to its parameter's type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from eventfn.routing.cesql.nodes import (
    Attributes,
    Fn,
    Node,
    boolean_of,
    fail,
    integer_of,
    problems_of,
)
from eventfn.routing.cesql.types import (
    INT_MIN,
    ZERO,
    CastFailure,
    Kind,
    Type,
    Value,
    to_boolean,
    to_integer,
    to_string,
)


class FunctionFailure(Exception):
    """A function's error: its kind, message and the value returned with it."""

    def __init__(self, kind: Kind, message: str, value: Value) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value


@dataclass(frozen=True, slots=True)
class Function:
    """One overload: fixed parameter types, an optional variadic type, the return type."""

    name: str
    params: tuple[Type, ...]
    returns: Type
    impl: Callable[..., Value]
    variadic: Type | None = None

    def accepts(self, arity: int) -> bool:
        fixed = len(self.params)
        return arity == fixed or (self.variadic is not None and arity > fixed)

    def param(self, index: int) -> Type:
        if index < len(self.params) or self.variadic is None:
            return self.params[index]
        return self.variadic


def _length(x: str) -> int:
    return len(x)


def _concat(*xs: str) -> str:
    return "".join(xs)


def _concat_ws(delimiter: str, *xs: str) -> str:
    return delimiter.join(xs)


# Unicode's White_Space property, which is what TRIM removes: Python's str.strip() would also
# remove the information separators U+001C..U+001F, control characters the spec says to keep.
_WHITESPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _trim(x: str) -> str:
    return x.strip(_WHITESPACE)


def _left(x: str, y: int) -> str:
    if y < 0:
        raise FunctionFailure(Kind.FUNCTION_EVALUATION, f"LEFT of a negative length {y}", x)
    return x[:y]


def _right(x: str, y: int) -> str:
    if y < 0:
        raise FunctionFailure(Kind.FUNCTION_EVALUATION, f"RIGHT of a negative length {y}", x)
    return x[len(x) - y :] if y else ""


def _start(x: str, pos: int) -> int | None:
    """The 0-based start of SUBSTRING at `pos`; None for pos 0 (the empty string)."""
    if pos > len(x) or pos < -len(x):
        raise FunctionFailure(
            Kind.FUNCTION_EVALUATION, f"SUBSTRING position {pos} is outside {len(x)} characters", ""
        )
    if pos == 0:
        return None
    return pos - 1 if pos > 0 else len(x) + pos


def _substring(x: str, pos: int, length: int | None = None) -> str:
    if length is not None and length < 0:
        raise FunctionFailure(Kind.FUNCTION_EVALUATION, f"SUBSTRING of length {length}", "")
    start = _start(x, pos)
    if start is None:
        return ""
    return x[start:] if length is None else x[start : start + length]


def _abs(x: int) -> int:
    if x == INT_MIN:
        raise FunctionFailure(Kind.MATH, "ABS(-2147483648) overflows a 32-bit Integer", 2**31 - 1)
    return abs(x)


def _cast(cast: Callable[[Value], Value], zero: Value) -> Callable[[Value], Value]:
    def explicit(x: Value) -> Value:
        try:
            return cast(x)
        except CastFailure as e:
            raise FunctionFailure(Kind.CAST, str(e), zero) from None

    return explicit


S, N, B, A = Type.STRING, Type.INTEGER, Type.BOOLEAN, Type.ANY

BUILTINS: Final[tuple[Function, ...]] = (
    Function("LENGTH", (S,), N, _length),
    Function("CONCAT", (), S, _concat, variadic=S),
    Function("CONCAT_WS", (S,), S, _concat_ws, variadic=S),
    Function("LOWER", (S,), S, str.lower),
    Function("UPPER", (S,), S, str.upper),
    Function("TRIM", (S,), S, _trim),
    Function("LEFT", (S, N), S, _left),
    Function("RIGHT", (S, N), S, _right),
    Function("SUBSTRING", (S, N), S, _substring),
    Function("SUBSTRING", (S, N, N), S, _substring),
    Function("ABS", (N,), N, _abs),
    Function("INT", (A,), N, _cast(to_integer, 0)),
    Function("BOOL", (A,), B, _cast(to_boolean, False)),
    Function("STRING", (A,), S, _cast(to_string, "")),
)


def resolve(name: str, arity: int, functions: Sequence[Function] = BUILTINS) -> Function | None:
    """The overload of `name` (case-insensitive) taking `arity` arguments, if there is one."""
    upper = name.upper()
    for function in functions:
        if function.name == upper and function.accepts(arity):
            return function
    return None


def _argument(node: Node, param: Type, tag: object, zero: Value) -> Fn:
    if param is Type.ANY or node.type is param:
        return node.fn
    if param is Type.INTEGER:
        return integer_of(node, tag, zero)
    fn = node.fn
    if param is Type.STRING:
        return lambda a: to_string(fn(a))
    return boolean_of(node, tag)


def call(name: str, function: Function | None, args: Sequence[Node]) -> Node:
    """A function invocation; without `function` (none answers), a missingFunction every time."""
    problems = problems_of(*args)
    tag = object()
    if function is None:
        message = f"no function {name.upper()} takes {len(args)} argument(s)"

        def missing(_a: Attributes) -> Value:
            fail(Kind.MISSING_FUNCTION, message, False, tag)

        return Node(missing, Type.BOOLEAN, tag, problems=(*problems, message))
    zero = ZERO[function.returns]
    casts = [_argument(arg, function.param(i), tag, zero) for i, arg in enumerate(args)]
    impl = function.impl

    def invocation(a: Attributes) -> Value:
        values = [cast(a) for cast in casts]
        try:
            return impl(*values)
        except FunctionFailure as e:
            fail(e.kind, str(e), e.value, tag)

    return Node(invocation, function.returns, tag, problems=problems)
