"""The closures an expression compiles to: one builder per operator, each returning a `Node`.

A node's `fn` takes the event's attributes and returns a value. What the static types decide is
decided here, once: casts the operand types make unnecessary are left out, a constant right
operand is not re-evaluated per event, literal sets are hashed once, and a LIKE pattern becomes
a prefix, suffix or equality test where it can (a regular expression otherwise).

LIKE and IN are in `patterns`, function calls in `functions`.

Errors are fail-fast (spec 4.1, the mode it recommends for filters): the node that fails raises
`EvaluationError` with the value it returns and its `tag`; the expression reports that value
when the failing node is its root, the zero value of its type otherwise.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NoReturn
from typing import cast as cast_type

from eventfn.routing.cesql.types import (
    CASTS,
    INT_MAX,
    INT_MIN,
    CastFailure,
    EvaluationError,
    Kind,
    Type,
    Value,
    implicit_boolean,
    to_integer,
    type_of,
)

Attributes = Mapping[str, Value]
Fn = Callable[[Attributes], Value]
IntFn = Callable[[Attributes], int]


@dataclass(frozen=True, slots=True)
class Node:
    """A compiled subexpression: its function, static type, and what is wrong with it for sure."""

    fn: Fn
    type: Type
    tag: object
    constant: bool = False
    problems: tuple[str, ...] = ()  # calls no function answers (a missingFunction every time)

    def value(self) -> Value:
        """A constant node's value."""
        return self.fn({})


def problems_of(*nodes: Node) -> tuple[str, ...]:
    return tuple(p for n in nodes for p in n.problems)


def fail(kind: Kind, message: str, value: Value, tag: object) -> NoReturn:
    raise EvaluationError(kind, message, value, tag)


def constant(value: Value) -> Node:
    return Node(lambda _a: value, type_of(value), object(), constant=True)


def attribute(name: str) -> Node:
    tag = object()

    def lookup(a: Attributes) -> Value:
        try:
            return a[name]
        except KeyError:
            fail(Kind.MISSING_ATTRIBUTE, f"the event has no attribute {name!r}", False, tag)

    return Node(lookup, Type.ANY, tag)


def exists(name: str) -> Node:
    return Node(lambda a: name in a, Type.BOOLEAN, object())


def integer_of(node: Node, tag: object, zero: Value) -> IntFn:
    """`node`'s value as an Integer (a cast error returning `zero` when it is none)."""
    fn = node.fn
    if node.type is Type.INTEGER:
        return cast_type(IntFn, fn)

    def cast(a: Attributes) -> int:
        v = fn(a)
        if type(v) is int:
            return v
        try:
            return to_integer(v)
        except CastFailure as e:
            fail(Kind.CAST, str(e), zero, tag)

    return cast


def boolean_of(node: Node, tag: object) -> Fn:
    fn = node.fn
    if node.type is Type.BOOLEAN:
        return fn

    def cast(a: Attributes) -> Value:
        v = fn(a)
        if v is True or v is False:
            return v
        try:
            return implicit_boolean(v)
        except CastFailure as e:
            fail(Kind.CAST, str(e), False, tag)

    return cast


def negation(child: Node) -> Node:
    tag = object()
    fn = child.fn

    def negate(a: Attributes) -> Value:
        v = fn(a)
        if v is True or v is False:
            return not v
        try:
            return not implicit_boolean(v)
        except CastFailure as e:
            # The cast's result is false, so NOT returns true with the error (TCK `NOT 10`).
            fail(Kind.CAST, str(e), True, tag)

    return Node(negate, Type.BOOLEAN, tag, problems=child.problems)


def minus(child: Node) -> Node:
    tag = object()
    fn = integer_of(child, tag, 0)

    def negative(a: Attributes) -> Value:
        v = fn(a)
        if v == INT_MIN:
            fail(Kind.MATH, "-(-2147483648) overflows a 32-bit Integer", 0, tag)
        return -v

    return Node(negative, Type.INTEGER, tag, problems=child.problems)


def _div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def _mod(x: int, y: int) -> int:
    return x - y * _div(x, y)


ARITHMETIC: Final[dict[str, Callable[[int, int], int]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _div,
    "%": _mod,
}
ORDER: Final[dict[str, Callable[[int, int], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def arithmetic(left: Node, op: str, right: Node) -> Node:
    tag = object()
    x_of, y_of = integer_of(left, tag, 0), integer_of(right, tag, 0)
    operation = ARITHMETIC[op]
    divides = op in ("/", "%")

    def compute(a: Attributes) -> Value:
        x, y = x_of(a), y_of(a)
        if divides and y == 0:
            fail(Kind.MATH, f"{x} {op} 0: division by zero", 0, tag)
        result = operation(x, y)
        if not INT_MIN <= result <= INT_MAX:
            fail(Kind.MATH, f"{x} {op} {y} overflows a 32-bit Integer", 0, tag)
        return result

    return Node(compute, Type.INTEGER, tag, problems=problems_of(left, right))


def order(left: Node, op: str, right: Node) -> Node:
    tag = object()
    test = ORDER[op]
    x_of = integer_of(left, tag, False)
    problems = problems_of(left, right)
    if right.constant:
        try:
            y = to_integer(right.value())
        except CastFailure:
            pass  # no Integer: the general closure raises the cast error per event
        else:
            return Node(lambda a: test(x_of(a), y), Type.BOOLEAN, tag, problems=problems)
    y_of = integer_of(right, tag, False)
    return Node(lambda a: test(x_of(a), y_of(a)), Type.BOOLEAN, tag, problems=problems)


def equality(left: Node, equal: bool, right: Node) -> Node:
    """`=`, `!=`, `<>`: ambiguous (Boolean, Integer, String), the right operand picks the type."""
    tag = object()
    x_fn = left.fn
    problems = problems_of(left, right)
    if right.constant:
        y, cast = right.value(), CASTS[right.type]
        y_class = type(y)

        def constant_equality(a: Attributes) -> Value:
            x = x_fn(a)
            if type(x) is not y_class:
                try:
                    x = cast(x)
                except CastFailure as e:
                    fail(Kind.CAST, str(e), False, tag)
            return (x == y) is equal

        return Node(constant_equality, Type.BOOLEAN, tag, problems=problems)
    y_fn = right.fn
    known = right.type if right.type is not Type.ANY else None

    def general_equality(a: Attributes) -> Value:
        x: Value = x_fn(a)
        y = y_fn(a)
        target = known or type_of(y)
        if type_of(x) is not target:
            try:
                x = CASTS[target](x)
            except CastFailure as e:
                fail(Kind.CAST, str(e), False, tag)
        return (x == y) is equal

    return Node(general_equality, Type.BOOLEAN, tag, problems=problems)


def logic(left: Node, op: str, right: Node) -> Node:
    """AND and OR short-circuit: the right operand is not evaluated when the left decides."""
    tag = object()
    x_of, y_of = boolean_of(left, tag), boolean_of(right, tag)
    fn: Fn
    if op == "AND":
        fn = lambda a: x_of(a) and y_of(a)  # noqa: E731 - one expression per operator
    elif op == "OR":
        fn = lambda a: x_of(a) or y_of(a)  # noqa: E731
    else:
        fn = lambda a: x_of(a) is not y_of(a)  # noqa: E731
    return Node(fn, Type.BOOLEAN, tag, problems=problems_of(left, right))
