"""From the parse to closures: the parser's callbacks, each grammar rule to a `nodes` builder.

The LALR parser calls these bottom-up while it parses (no tree is built); what is wrong with
the expression's text (an integer literal out of range, a name of the wrong shape) is a
`ParseError` at its token's line and column.
"""

from __future__ import annotations

import re
from typing import Any, Final

import lark

from eventfn.routing.cesql import nodes
from eventfn.routing.cesql.functions import resolve
from eventfn.routing.cesql.nodes import Node
from eventfn.routing.cesql.types import INT_MAX, INT_MIN, ParseError

_FUNCTION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z_]*")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9]+")


class _Syntax(Exception):
    """A parse-time error found by a callback, at a token."""

    def __init__(self, message: str, token: lark.Token) -> None:
        super().__init__(message)
        self.line = token.line or 1
        self.column = token.column or 1


def _unquote(token: lark.Token) -> str:
    text = str(token)
    quote = text[0]
    # The escaped quote and the doubled quote stand for the quote; every other backslash stays
    # (a LIKE pattern reads `\%` and `\_` itself).
    return text[1:-1].replace("\\" + quote, quote).replace(quote * 2, quote)


def _attribute_name(token: lark.Token) -> str:
    name = str(token)
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise _Syntax(f"{name!r} is not an attribute name (letters and digits only)", token)
    return name.lower()


@lark.v_args(inline=True)
class Compiler(lark.Transformer[lark.Token, Node]):
    """The parser's callbacks."""

    def integer(self, token: lark.Token) -> Node:
        number = int(token)
        if not INT_MIN <= number <= INT_MAX:
            raise _Syntax(f"integer literal {token} is not a 32-bit integer", token)
        return nodes.constant(number)

    def true(self, _token: lark.Token) -> Node:
        return nodes.constant(True)

    def false(self, _token: lark.Token) -> Node:
        return nodes.constant(False)

    def string(self, token: lark.Token) -> Node:
        return nodes.constant(_unquote(token))

    def identifier(self, token: lark.Token) -> Node:
        return nodes.attribute(_attribute_name(token))

    def exists(self, _keyword: lark.Token, token: lark.Token) -> Node:
        return nodes.exists(_attribute_name(token))

    def not_(self, _keyword: lark.Token, child: Node) -> Node:
        return nodes.negation(child)

    def negate(self, _minus: lark.Token, child: Node) -> Node:
        return nodes.minus(child)

    def arith(self, left: Node, op: lark.Token, right: Node) -> Node:
        return nodes.arithmetic(left, str(op), right)

    def compare(self, left: Node, op: lark.Token, right: Node) -> Node:
        text = str(op)
        if text in nodes.ORDER:
            return nodes.order(left, text, right)
        return nodes.equality(left, text == "=", right)

    def logic(self, left: Node, op: lark.Token, right: Node) -> Node:
        return nodes.logic(left, str(op).upper(), right)

    def like(self, child: Node, _like: lark.Token, pattern: Node) -> Node:
        return nodes.like(child, str(pattern.value()), negated=False)

    def not_like(self, child: Node, _not: lark.Token, _like: lark.Token, pattern: Node) -> Node:
        return nodes.like(child, str(pattern.value()), negated=True)

    def in_set(self, child: Node, _in: lark.Token, *elements: Node) -> Node:
        return nodes.member(child, elements, negated=False)

    def not_in_set(self, child: Node, _not: lark.Token, _in: lark.Token, *elements: Node) -> Node:
        return nodes.member(child, elements, negated=True)

    def call(self, token: lark.Token, *arguments: Node | None) -> Node:
        name = str(token)
        if not _FUNCTION_NAME.fullmatch(name):
            raise _Syntax(f"{name!r} is not a function name", token)
        args = [a for a in arguments if a is not None]
        return nodes.call(name, resolve(name, len(args)), args)


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
