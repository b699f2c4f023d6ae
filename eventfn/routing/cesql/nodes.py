"""The closures an expression compiles to: one builder per operator, each returning a `Node`.

A node's `fn` takes the event's attributes and returns a value. What the static types decide is
decided here, once: casts the operand types make unnecessary are left out, a constant right
operand is not re-evaluated per event, literal sets are hashed once, and a LIKE pattern becomes
a prefix, suffix or equality test where it can (a regular expression otherwise).

Errors are fail-fast (spec 4.1, the mode it recommends for filters): the node that fails raises
`EvaluationError` with the value it returns and its `tag`; the expression reports that value
when the failing node is its root, the zero value of its type otherwise.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn
from typing import cast as cast_type

from eventfn.routing.cesql.functions import Function, FunctionFailure
from eventfn.routing.cesql.types import (
    CASTS,
    INT_MAX,
    INT_MIN,
    ZERO,
    CastFailure,
    EvaluationError,
    Kind,
    Type,
    Value,
    implicit_boolean,
    to_integer,
    to_string,
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


def _problems(*nodes: Node) -> tuple[str, ...]:
    return tuple(p for n in nodes for p in n.problems)


def _raise(kind: Kind, message: str, value: Value, tag: object) -> NoReturn:
    raise EvaluationError(kind, message, value, tag)


def constant(value: Value) -> Node:
    return Node(lambda _a: value, type_of(value), object(), constant=True)


def attribute(name: str) -> Node:
    tag = object()

    def lookup(a: Attributes) -> Value:
        try:
            return a[name]
        except KeyError:
            _raise(Kind.MISSING_ATTRIBUTE, f"the event has no attribute {name!r}", False, tag)

    return Node(lookup, Type.ANY, tag)


def exists(name: str) -> Node:
    return Node(lambda a: name in a, Type.BOOLEAN, object())


def _integer_of(node: Node, tag: object, zero: Value) -> IntFn:
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
            _raise(Kind.CAST, str(e), zero, tag)

    return cast


def _boolean_of(node: Node, tag: object) -> Fn:
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
            _raise(Kind.CAST, str(e), False, tag)

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
            _raise(Kind.CAST, str(e), True, tag)

    return Node(negate, Type.BOOLEAN, tag, problems=child.problems)


def minus(child: Node) -> Node:
    tag = object()
    fn = _integer_of(child, tag, 0)

    def negative(a: Attributes) -> Value:
        v = fn(a)
        if v == INT_MIN:
            _raise(Kind.MATH, "-(-2147483648) overflows a 32-bit Integer", 0, tag)
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
    x_of, y_of = _integer_of(left, tag, 0), _integer_of(right, tag, 0)
    operation = ARITHMETIC[op]
    divides = op in ("/", "%")

    def compute(a: Attributes) -> Value:
        x, y = x_of(a), y_of(a)
        if divides and y == 0:
            _raise(Kind.MATH, f"{x} {op} 0: division by zero", 0, tag)
        result = operation(x, y)
        if not INT_MIN <= result <= INT_MAX:
            _raise(Kind.MATH, f"{x} {op} {y} overflows a 32-bit Integer", 0, tag)
        return result

    return Node(compute, Type.INTEGER, tag, problems=_problems(left, right))


def order(left: Node, op: str, right: Node) -> Node:
    tag = object()
    test = ORDER[op]
    x_of = _integer_of(left, tag, False)
    problems = _problems(left, right)
    if right.constant:
        try:
            y = to_integer(right.value())
        except CastFailure:
            pass  # no Integer: the general closure raises the cast error per event
        else:
            return Node(lambda a: test(x_of(a), y), Type.BOOLEAN, tag, problems=problems)
    y_of = _integer_of(right, tag, False)
    return Node(lambda a: test(x_of(a), y_of(a)), Type.BOOLEAN, tag, problems=problems)


def equality(left: Node, equal: bool, right: Node) -> Node:
    """`=`, `!=`, `<>`: ambiguous (Boolean, Integer, String), the right operand picks the type."""
    tag = object()
    x_fn = left.fn
    problems = _problems(left, right)
    if right.constant:
        y, cast = right.value(), CASTS[right.type]
        y_class = type(y)

        def constant_equality(a: Attributes) -> Value:
            x = x_fn(a)
            if type(x) is not y_class:
                try:
                    x = cast(x)
                except CastFailure as e:
                    _raise(Kind.CAST, str(e), False, tag)
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
                _raise(Kind.CAST, str(e), False, tag)
        return (x == y) is equal

    return Node(general_equality, Type.BOOLEAN, tag, problems=problems)


def logic(left: Node, op: str, right: Node) -> Node:
    """AND and OR short-circuit: the right operand is not evaluated when the left decides."""
    tag = object()
    x_of, y_of = _boolean_of(left, tag), _boolean_of(right, tag)
    fn: Fn
    if op == "AND":
        fn = lambda a: x_of(a) and y_of(a)  # noqa: E731 - one expression per operator
    elif op == "OR":
        fn = lambda a: x_of(a) or y_of(a)  # noqa: E731
    else:
        fn = lambda a: x_of(a) is not y_of(a)  # noqa: E731
    return Node(fn, Type.BOOLEAN, tag, problems=_problems(left, right))


def _starts(prefix: str) -> Callable[[str], bool]:
    return lambda s: s.startswith(prefix)


def _ends(suffix: str) -> Callable[[str], bool]:
    return lambda s: s.endswith(suffix)


def like_test(pattern: str) -> Callable[[str], bool]:
    """The matcher of a LIKE pattern: `%` any run, `_` one character, `\\%` and `\\_` literal."""
    parts: list[str] = []
    plain: list[str | None] = []  # the literal text, None for a `%`
    wild = False  # a `_` somewhere: only a regular expression does
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and pattern[i + 1 : i + 2] in ("%", "_"):
            parts.append(re.escape(pattern[i + 1]))
            plain.append(pattern[i + 1])
            i += 2
            continue
        if c == "%":
            parts.append(".*")
            plain.append(None)
        elif c == "_":
            parts.append(".")
            wild = True
        else:
            parts.append(re.escape(c))
            plain.append(c)
        i += 1
    percents = [n for n, p in enumerate(plain) if p is None]
    text = "".join(p for p in plain if p is not None)
    if not wild and not percents:
        return text.__eq__
    if not wild and percents == [len(plain) - 1]:
        return _starts(text)
    if not wild and percents == [0]:
        return _ends(text)
    regex = re.compile("".join(parts), re.DOTALL)
    return lambda s: regex.fullmatch(s) is not None


def like(child: Node, pattern: str, *, negated: bool) -> Node:
    test = like_test(pattern)
    fn = child.fn
    if child.type is Type.STRING:

        def matches(a: Attributes) -> Value:
            return test(fn(a)) is not negated  # type: ignore[arg-type]
    else:

        def matches(a: Attributes) -> Value:
            return test(to_string(fn(a))) is not negated

    return Node(matches, Type.BOOLEAN, object(), problems=child.problems)


def _constant_sets(values: Sequence[Value]) -> dict[Type, frozenset[Value] | CastFailure]:
    """The set's elements cast to each type the left operand may have (or why they cannot be)."""
    sets: dict[Type, frozenset[Value] | CastFailure] = {}
    for target, cast in CASTS.items():
        try:
            sets[target] = frozenset(cast(v) for v in values)
        except CastFailure as e:
            sets[target] = e
    return sets


def member(child: Node, elements: Sequence[Node], *, negated: bool) -> Node:
    """IN: the left operand's type is the one the set's elements are cast to."""
    tag = object()
    fn = child.fn
    problems = _problems(child, *elements)
    if all(e.constant for e in elements):
        sets = _constant_sets([e.value() for e in elements])

        def in_constants(a: Attributes) -> Value:
            x = fn(a)
            found = sets[type_of(x)]
            if isinstance(found, CastFailure):
                _raise(Kind.CAST, str(found), False, tag)
            return (x in found) is not negated

        return Node(in_constants, Type.BOOLEAN, tag, problems=problems)
    element_fns = [e.fn for e in elements]

    def in_values(a: Attributes) -> Value:
        x = fn(a)
        cast = CASTS[type_of(x)]
        for element in element_fns:
            try:
                if cast(element(a)) == x:
                    return not negated
            except CastFailure as e:
                _raise(Kind.CAST, str(e), False, tag)
        return negated

    return Node(in_values, Type.BOOLEAN, tag, problems=problems)


def _argument(node: Node, param: Type, tag: object, zero: Value) -> Fn:
    if param is Type.ANY or node.type is param:
        return node.fn
    if param is Type.INTEGER:
        return _integer_of(node, tag, zero)
    fn = node.fn
    if param is Type.STRING:
        return lambda a: to_string(fn(a))
    return _boolean_of(node, tag)


def call(name: str, function: Function | None, args: Sequence[Node]) -> Node:
    """A function invocation; without `function` (none answers), a missingFunction every time."""
    problems = _problems(*args)
    tag = object()
    if function is None:
        message = f"no function {name.upper()} takes {len(args)} argument(s)"

        def missing(_a: Attributes) -> Value:
            _raise(Kind.MISSING_FUNCTION, message, False, tag)

        return Node(missing, Type.BOOLEAN, tag, problems=(*problems, message))
    zero = ZERO[function.returns]
    casts = [_argument(arg, function.param(i), tag, zero) for i, arg in enumerate(args)]
    impl = function.impl

    def invocation(a: Attributes) -> Value:
        values = [cast(a) for cast in casts]
        try:
            return impl(*values)
        except FunctionFailure as e:
            _raise(e.kind, str(e), e.value, tag)

    return Node(invocation, function.returns, tag, problems=problems)
