"""From the parse to closures: each node of the expression becomes one Python function.

The parser calls these callbacks bottom-up while it parses; each returns a `Node` whose `fn`
takes the event's attributes and returns a value. Casts that the types known at compile time
make unnecessary are left out, literal sets are hashed once, and LIKE patterns become a prefix,
suffix or equality test where they can (a regular expression otherwise).

Errors are fail-fast (spec 4.1, the mode the spec recommends for filters): the node that fails
raises `EvaluationError` with the value it returns (`LEFT('abc', -2)` returns `'abc'`), and the
expression reports that value when the failing node is its root, the zero value of its type
otherwise (`true AND (1 != 1 / 0)` is false).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from typing import cast as cast_type

import lark

from eventfn.routing.cesql.functions import FunctionFailure, resolve
from eventfn.routing.cesql.types import (
    CASTS,
    INT_MAX,
    INT_MIN,
    ZERO,
    CastFailure,
    EvaluationError,
    Kind,
    ParseError,
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


def _problems(*nodes: Node) -> tuple[str, ...]:
    return tuple(p for n in nodes for p in n.problems)


class _Syntax(Exception):
    """A parse-time error found by a callback, at a token."""

    def __init__(self, message: str, token: lark.Token) -> None:
        super().__init__(message)
        self.line = token.line or 1
        self.column = token.column or 1


def _raise(kind: Kind, message: str, value: Value, tag: object) -> NoReturn:
    raise EvaluationError(kind, message, value, tag)


def _constant(value: Value) -> Node:
    return Node(lambda _a: value, type_of(value), object(), constant=True)


def _unquote(token: lark.Token) -> str:
    text = str(token)
    quote = text[0]
    # The escaped quote and the doubled quote stand for the quote; every other backslash stays
    # (a LIKE pattern reads `\%` and `\_` itself).
    return text[1:-1].replace("\\" + quote, quote).replace(quote * 2, quote)


def _div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def _mod(x: int, y: int) -> int:
    return x - y * _div(x, y)


_ARITHMETIC: Final[dict[str, Callable[[int, int], int]]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": _div,
    "%": _mod,
}
_ORDER: Final[dict[str, Callable[[int, int], bool]]] = {
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


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


def _like_test(pattern: str) -> Callable[[str], bool]:
    """The matcher of a LIKE pattern: `%` any run, `_` one character, `\\%` and `\\_` literal."""
    parts: list[str] = []
    plain: list[str] = []  # the pattern's literal text when it has no `_`
    wild = False
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
            plain.append("\0%")
        elif c == "_":
            parts.append(".")
            wild = True
        else:
            parts.append(re.escape(c))
            plain.append(c)
        i += 1
    if not wild:
        pieces = "".join(plain).split("\0%")
        if len(pieces) == 1:
            return pieces[0].__eq__
        if len(pieces) == 2 and not pieces[1]:
            return _starts(pieces[0])
        if len(pieces) == 2 and not pieces[0]:
            return _ends(pieces[1])
    regex = re.compile("".join(parts), re.DOTALL)
    return lambda s: regex.fullmatch(s) is not None


def _starts(prefix: str) -> Callable[[str], bool]:
    return lambda s: s.startswith(prefix)


def _ends(suffix: str) -> Callable[[str], bool]:
    return lambda s: s.endswith(suffix)


@lark.v_args(inline=True)
class Compiler(lark.Transformer[lark.Token, Node]):
    """The parser's callbacks: each grammar rule to a `Node`."""

    def integer(self, token: lark.Token) -> Node:
        number = int(token)
        if not INT_MIN <= number <= INT_MAX:
            raise _Syntax(f"integer literal {token} is not a 32-bit integer", token)
        return _constant(number)

    def true(self, _token: lark.Token) -> Node:
        return _constant(True)

    def false(self, _token: lark.Token) -> Node:
        return _constant(False)

    def string(self, token: lark.Token) -> Node:
        return _constant(_unquote(token))

    def identifier(self, token: lark.Token) -> Node:
        name = _attribute_name(token)
        tag = object()

        def attribute(a: Attributes) -> Value:
            try:
                return a[name]
            except KeyError:
                _raise(Kind.MISSING_ATTRIBUTE, f"the event has no attribute {name!r}", False, tag)

        return Node(attribute, Type.ANY, tag)

    def exists(self, _keyword: lark.Token, token: lark.Token) -> Node:
        name = _attribute_name(token)
        return Node(lambda a: name in a, Type.BOOLEAN, object())

    def not_(self, _keyword: lark.Token, child: Node) -> Node:
        tag = object()
        fn = child.fn

        def negation(a: Attributes) -> Value:
            v = fn(a)
            if v is True or v is False:
                return not v
            try:
                return not implicit_boolean(v)
            except CastFailure as e:
                # The cast's result is false, so NOT returns true with the error (TCK `NOT 10`).
                _raise(Kind.CAST, str(e), True, tag)

        return Node(negation, Type.BOOLEAN, tag, problems=child.problems)

    def negate(self, _minus: lark.Token, child: Node) -> Node:
        tag = object()
        fn = _integer_of(child, tag, 0)

        def minus(a: Attributes) -> Value:
            v = fn(a)
            if v == INT_MIN:
                _raise(Kind.MATH, "-(-2147483648) overflows a 32-bit Integer", 0, tag)
            return -v

        return Node(minus, Type.INTEGER, tag, problems=child.problems)

    def arith(self, left: Node, op: lark.Token, right: Node) -> Node:
        tag = object()
        x_of, y_of = _integer_of(left, tag, 0), _integer_of(right, tag, 0)
        operation = _ARITHMETIC[str(op)]
        divides = str(op) in ("/", "%")

        def arithmetic(a: Attributes) -> Value:
            x, y = x_of(a), y_of(a)
            if divides and y == 0:
                _raise(Kind.MATH, f"{x} {op} 0: division by zero", 0, tag)
            result = operation(x, y)
            if not INT_MIN <= result <= INT_MAX:
                _raise(Kind.MATH, f"{x} {op} {y} overflows a 32-bit Integer", 0, tag)
            return result

        return Node(arithmetic, Type.INTEGER, tag, problems=_problems(left, right))

    def compare(self, left: Node, op: lark.Token, right: Node) -> Node:
        text = str(op)
        if text in _ORDER:
            return self._order(left, _ORDER[text], right)
        return self._equality(left, text == "=", right)

    def _order(self, left: Node, test: Callable[[int, int], bool], right: Node) -> Node:
        tag = object()
        x_of, y_of = _integer_of(left, tag, False), _integer_of(right, tag, False)

        def order(a: Attributes) -> Value:
            return test(x_of(a), y_of(a))

        return Node(order, Type.BOOLEAN, tag, problems=_problems(left, right))

    def _equality(self, left: Node, equal: bool, right: Node) -> Node:
        # `=` is ambiguous (Boolean, Integer, String): the right operand's type picks the one.
        tag = object()
        x_fn, y_fn = left.fn, right.fn
        known = right.type if right.type is not Type.ANY else None

        def equality(a: Attributes) -> Value:
            x: Value = x_fn(a)
            y = y_fn(a)
            target = known or type_of(y)
            if type_of(x) is not target:
                try:
                    x = CASTS[target](x)
                except CastFailure as e:
                    _raise(Kind.CAST, str(e), False, tag)
            return (x == y) is equal

        return Node(equality, Type.BOOLEAN, tag, problems=_problems(left, right))

    def logic(self, left: Node, op: lark.Token, right: Node) -> Node:
        tag = object()
        x_of, y_of = _boolean_of(left, tag), _boolean_of(right, tag)
        kind = str(op).upper()
        if kind == "AND":

            def logic(a: Attributes) -> Value:
                return x_of(a) and y_of(a)  # short-circuit: y is not evaluated when x is false
        elif kind == "OR":

            def logic(a: Attributes) -> Value:
                return x_of(a) or y_of(a)
        else:

            def logic(a: Attributes) -> Value:
                return x_of(a) is not y_of(a)

        return Node(logic, Type.BOOLEAN, tag, problems=_problems(left, right))

    def like(self, child: Node, _like: lark.Token, pattern: Node) -> Node:
        return _like_node(child, pattern, negated=False)

    def not_like(self, child: Node, _not: lark.Token, _like: lark.Token, pattern: Node) -> Node:
        return _like_node(child, pattern, negated=True)

    def in_set(self, child: Node, _in: lark.Token, *elements: Node) -> Node:
        return _in_node(child, elements, negated=False)

    def not_in_set(self, child: Node, _not: lark.Token, _in: lark.Token, *elements: Node) -> Node:
        return _in_node(child, elements, negated=True)

    def call(self, token: lark.Token, *arguments: Node | None) -> Node:
        return _call_node(token, [a for a in arguments if a is not None])


def _like_node(child: Node, pattern: Node, *, negated: bool) -> Node:
    test = _like_test(str(pattern.fn({})))
    fn = child.fn
    if child.type is Type.STRING:

        def matches(a: Attributes) -> Value:
            return test(fn(a)) is not negated  # type: ignore[arg-type]
    else:

        def matches(a: Attributes) -> Value:
            return test(to_string(fn(a))) is not negated

    return Node(matches, Type.BOOLEAN, object(), problems=child.problems)


def _in_node(child: Node, elements: Sequence[Node], *, negated: bool) -> Node:
    tag = object()
    fn = child.fn
    problems = _problems(child, *elements)
    if all(e.constant for e in elements):
        sets = _constant_sets([e.fn({}) for e in elements])

        def member(a: Attributes) -> Value:
            x = fn(a)
            found = sets[type_of(x)]
            if isinstance(found, CastFailure):
                _raise(Kind.CAST, str(found), False, tag)
            return (x in found) is not negated

        return Node(member, Type.BOOLEAN, tag, problems=problems)
    element_fns = [e.fn for e in elements]

    def member_of(a: Attributes) -> Value:
        x = fn(a)
        cast = CASTS[type_of(x)]
        for element in element_fns:
            try:
                if cast(element(a)) == x:
                    return not negated
            except CastFailure as e:
                _raise(Kind.CAST, str(e), False, tag)
        return negated

    return Node(member_of, Type.BOOLEAN, tag, problems=problems)


def _call_node(token: lark.Token, args: list[Node]) -> Node:
    name = str(token)
    if not _FUNCTION_NAME.fullmatch(name):
        raise _Syntax(f"{name!r} is not a function name", token)
    problems = _problems(*args)
    function = resolve(name, len(args))
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


_FUNCTION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z_]*")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9]+")


def _attribute_name(token: lark.Token) -> str:
    name = str(token)
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise _Syntax(f"{name!r} is not an attribute name (letters and digits only)", token)
    return name.lower()


def _argument(node: Node, param: Type, tag: object, zero: Value) -> Fn:
    if param is Type.ANY or node.type is param:
        return node.fn
    if param is Type.INTEGER:
        return _integer_of(node, tag, zero)
    fn = node.fn
    if param is Type.STRING:
        return lambda a: to_string(fn(a))
    return _boolean_of(node, tag)


def _constant_sets(values: Sequence[Value]) -> dict[Type, frozenset[Value] | CastFailure]:
    """The set's elements cast to each type the left operand may have (or why they cannot be)."""
    sets: dict[Type, frozenset[Value] | CastFailure] = {}
    for target, cast in CASTS.items():
        try:
            sets[target] = frozenset(cast(v) for v in values)
        except CastFailure as e:
            sets[target] = e
    return sets


def compile_tree(expression: str) -> Node:
    """Parse `expression` and compile it (ParseError on a syntax error, with its position)."""
    from eventfn.routing.cesql.parser import parser

    try:
        return parser(_COMPILER).parse(expression)  # type: ignore[return-value]
    except _Syntax as e:
        raise ParseError(str(e), expression, e.line, e.column) from None
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, _Syntax):
            raise ParseError(
                str(e.orig_exc), expression, e.orig_exc.line, e.orig_exc.column
            ) from None
        raise
    except lark.exceptions.UnexpectedInput as e:
        raise ParseError(_describe(e), expression, *_position(e, expression)) from None


def _position(e: lark.exceptions.UnexpectedInput, expression: str) -> tuple[int, int]:
    line, column = getattr(e, "line", -1), getattr(e, "column", -1)
    at_end = isinstance(e, lark.exceptions.UnexpectedToken) and e.token.type == "$END"
    if at_end or not isinstance(line, int) or line < 1 or not isinstance(column, int) or column < 1:
        lines = expression.split("\n")
        return len(lines), len(lines[-1]) + 1
    return line, column


def _describe(e: lark.exceptions.UnexpectedInput) -> str:
    if isinstance(e, lark.exceptions.UnexpectedToken):
        if e.token.type == "$END":
            return "unexpected end of expression"
        return f"unexpected {str(e.token)!r}"
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        return f"unexpected character {e.char!r}"
    return "unexpected end of expression"


_COMPILER: Final[Any] = Compiler()
