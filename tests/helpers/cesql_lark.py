"""The reference grammar: CESQL as the spec's ANTLR grammar says, for lark, with the same nodes.

The runtime parses by hand (`eventfn.routing.cesql.descent`: no parser table to build, no
library to import at start-up); this is the spec's `CESQLParser.g4` nearly line for line as a
lark LALR grammar, its callbacks building the same `nodes`. `tests/unit/test_cesql_grammar.py`
holds the two equal: same value and error on every TCK expression and the corners below it,
same line and column for every parse error.

Where the ANTLR grammar decides, this one follows it: function calls, then NOT and unary minus,
bind tighter than LIKE and IN, which bind tighter than `* / %`, `+ -`, the comparisons, and last
AND, OR, XOR, which share one level and group to the right. Keywords are case-insensitive; an
integer literal carries its sign.
"""

from __future__ import annotations

import re
from typing import Any, Final

import lark

from eventfn.routing.cesql import functions, nodes, patterns
from eventfn.routing.cesql.nodes import Node
from eventfn.routing.cesql.types import INT_MAX, INT_MIN, ParseError

GRAMMAR: Final = r"""
?start: expr

?expr: cmp
     | cmp LOGIC expr                          -> logic

?cmp: add
    | cmp CMP add                              -> compare

?add: mul
    | add ADD mul                              -> arith

?mul: post
    | mul MUL post                             -> arith

?post: unary
     | post LIKE string                        -> like
     | post NOT LIKE string                    -> not_like
     | post IN "(" expr ("," expr)* ")"        -> in_set
     | post NOT IN "(" expr ("," expr)* ")"    -> not_in_set

?unary: primary
      | NOT unary                              -> not_
      | MINUS unary                            -> negate

?primary: NAME "(" [expr ("," expr)*] ")"      -> call
        | EXISTS NAME                          -> exists
        | NAME                                 -> identifier
        | INT                                  -> integer
        | TRUE                                 -> true
        | FALSE                                -> false
        | string
        | "(" expr ")"

string: DQ_STRING | SQ_STRING

LOGIC.2: /(and|or|xor)(?![a-z0-9_])/i
NOT.2: /not(?![a-z0-9_])/i
LIKE.2: /like(?![a-z0-9_])/i
IN.2: /in(?![a-z0-9_])/i
EXISTS.2: /exists(?![a-z0-9_])/i
TRUE.2: /true(?![a-z0-9_])/i
FALSE.2: /false(?![a-z0-9_])/i

CMP: "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
ADD: "+" | "-"
MUL: "*" | "/" | "%"
MINUS: "-"
INT: /[+-]?[0-9]+(?![a-z0-9_])/i
NAME: /[a-z0-9_]*[a-z_][a-z0-9_]*/i
DQ_STRING: /"(\\.|""|[^"\\])*"/s
SQ_STRING: /'(\\.|''|[^'\\])*'/s

%ignore /[ \t\r\n]+/
"""


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
        return patterns.like(child, str(pattern.value()), negated=False)

    def not_like(self, child: Node, _not: lark.Token, _like: lark.Token, pattern: Node) -> Node:
        return patterns.like(child, str(pattern.value()), negated=True)

    def in_set(self, child: Node, _in: lark.Token, *elements: Node) -> Node:
        return patterns.member(child, elements, negated=False)

    def not_in_set(self, child: Node, _not: lark.Token, _in: lark.Token, *elements: Node) -> Node:
        return patterns.member(child, elements, negated=True)

    def call(self, token: lark.Token, *arguments: Node | None) -> Node:
        name = str(token)
        if not _FUNCTION_NAME.fullmatch(name):
            raise _Syntax(f"{name!r} is not a function name", token)
        args = [a for a in arguments if a is not None]
        return functions.call(name, functions.resolve(name, len(args)), args)


_PARSER: lark.Lark | None = None


def compile_tree(expression: str) -> Node:
    """Parse `expression` and compile it (ParseError on a syntax error, with its position)."""
    global _PARSER  # noqa: PLW0603 - one table per test session
    if _PARSER is None:
        _PARSER = lark.Lark(GRAMMAR, parser="lalr", lexer="contextual", transformer=_COMPILER)
    try:
        return _PARSER.parse(expression)  # type: ignore[return-value]
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
