"""CESQL's grammar by recursive descent: tokens, then one function per precedence level.

The levels, tightest first, as the spec's ANTLR grammar (`CESQLParser.g4`) orders them, and so as
Knative's Go engine parses: function calls and atoms; NOT and unary minus; LIKE, IN (postfix,
left to right); `* / %`; `+ -`; the comparisons; AND, OR and XOR, one level grouping to the right
(`a AND b OR c` is `a AND (b OR c)`). Keywords are case-insensitive; where an operand is expected
the infix ones (AND, OR, XOR, LIKE, IN) read as names, as the grammar's contextual lexing has it.
An integer literal carries its sign when it follows it directly (`-2147483648` is a literal,
`- 5` a negation).
Each rule calls its `nodes` builder as it completes, so the parse is the compilation.

Why by hand and not with a parser library: the first version used lark (LALR, the ANTLR grammar
nearly line for line; it is kept as the suite's reference, `tests/helpers/cesql_lark.py`, and
the two agree on every TCK expression and the corners in `tests/unit/test_cesql_grammar.py`).
Both build the same closures, so evaluating costs the same to the instruction; parsing does not.
Measured on this machine: with lark, importing the engine took ~45 ms (lark itself) and the
first parse ~35 ms (building its table), then ~150 µs per 30-character expression; by hand the
engine imports in ~10 ms, and every parse, the first included, takes ~60 µs. A catalogue's CESQL
filters are parsed when `schemas/` is imported, that is at every start of the function: with
lark, declaring one filter cost ~70 ms of cold start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NoReturn

from eventfn.routing.cesql import functions, nodes, patterns
from eventfn.routing.cesql.nodes import Node
from eventfn.routing.cesql.types import INT_MAX, INT_MIN, ParseError

_TOKEN: Final = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | (?P<int>[0-9]+(?![A-Za-z0-9_]))
      | (?P<name>[A-Za-z0-9_]+)
      | (?P<string>"(?:\\.|""|[^"\\])*"|'(?:\\.|''|[^'\\])*')
      | (?P<op>!=|<>|<=|>=|[=<>+\-*/%(),])""",
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS: Final = frozenset({"AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE"})
# Keywords that cannot start an operand: where one is expected, these are plain names.
_INFIX: Final = frozenset({"AND", "OR", "XOR", "LIKE", "IN"})
_FUNCTION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z_]*")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9]+")
_COMPARISONS: Final = frozenset({"=", "!=", "<>", "<", "<=", ">", ">="})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # int, name, keyword, string, op, end
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper()


class _Parser:
    def __init__(self, expression: str) -> None:
        self.source = expression
        self.tokens = self._tokenize(expression)
        self.i = 0

    # --- tokens --------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        at = 0
        while at < len(text):
            match = _TOKEN.match(text, at)
            if match is None:
                self._fail(f"unexpected character {text[at]!r}", at)
            kind = match.lastgroup or ""
            if kind != "space":
                word = match.group()
                if kind == "name" and word.upper() in _KEYWORDS:
                    kind = "keyword"
                tokens.append(_Token(kind, word, at, match.end()))
            at = match.end()
        tokens.append(_Token("end", "", len(text), len(text)))
        return tokens

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def _take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _is(self, kind: str, *texts: str) -> bool:
        token = self.token
        if token.kind != kind:
            return False
        return not texts or (token.upper if kind == "keyword" else token.text) in texts

    def _expect(self, kind: str, text: str) -> _Token:
        if not self._is(kind, text):
            self._unexpected()
        return self._take()

    def _position(self, at: int) -> tuple[int, int]:
        before = self.source[:at]
        return before.count("\n") + 1, at - (before.rfind("\n") + 1) + 1

    def _fail(self, message: str, at: int) -> NoReturn:
        raise ParseError(message, self.source, *self._position(at))

    def _unexpected(self) -> NoReturn:
        token = self.token
        if token.kind == "end":
            self._fail("unexpected end of expression", token.start)
        self._fail(f"unexpected {token.text!r}", token.start)

    # --- rules, loosest first ----------------------------------------------------------

    def parse(self) -> Node:
        node = self.expression()
        if self.token.kind != "end":
            self._unexpected()
        return node

    def expression(self) -> Node:
        left = self.comparison()
        if self._is("keyword", "AND", "OR", "XOR"):
            op = self._take().upper
            return nodes.logic(left, op, self.expression())
        return left

    def comparison(self) -> Node:
        node = self.additive()
        while self.token.kind == "op" and self.token.text in _COMPARISONS:
            op = self._take().text
            right = self.additive()
            if op in nodes.ORDER:
                node = nodes.order(node, op, right)
            else:
                node = nodes.equality(node, op == "=", right)
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self._is("op", "+", "-"):
            op = self._take().text
            node = nodes.arithmetic(node, op, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.postfix()
        while self._is("op", "*", "/", "%"):
            op = self._take().text
            node = nodes.arithmetic(node, op, self.postfix())
        return node

    def postfix(self) -> Node:
        node = self.unary()
        while True:
            negated = self._is("keyword", "NOT")
            if negated:
                self._take()
                if not self._is("keyword", "LIKE", "IN"):
                    self._unexpected()
            if self._is("keyword", "LIKE"):
                self._take()
                if self.token.kind != "string":
                    self._unexpected()
                node = patterns.like(node, _unquote(self._take().text), negated=negated)
            elif self._is("keyword", "IN"):
                self._take()
                node = patterns.member(node, self._set(), negated=negated)
            else:
                return node

    def _set(self) -> list[Node]:
        self._expect("op", "(")
        elements = [self.expression()]
        while self._is("op", ","):
            self._take()
            elements.append(self.expression())
        self._expect("op", ")")
        return elements

    def unary(self) -> Node:
        if self._is("keyword", "NOT"):
            self._take()
            return nodes.negation(self.unary())
        if self._is("op", "-", "+"):
            sign = self._take()
            following = self.token
            if following.kind == "int" and following.start == sign.end:  # a signed literal
                self._take()
                return self._integer(sign.text + following.text, sign.start)
            if sign.text == "+":
                self._fail("unexpected '+'", sign.start)
            return nodes.minus(self.unary())
        return self.primary()

    def _literal(self) -> Node | None:
        token = self.token
        if token.kind == "int":
            self._take()
            return self._integer(token.text, token.start)
        if token.kind == "string":
            self._take()
            return nodes.constant(_unquote(token.text))
        if token.kind == "keyword" and token.upper in ("TRUE", "FALSE"):
            self._take()
            return nodes.constant(token.upper == "TRUE")
        return None

    def primary(self) -> Node:
        literal = self._literal()
        if literal is not None:
            return literal
        token = self.token
        if token.kind == "keyword" and token.upper == "EXISTS":
            self._take()
            if self.token.kind != "name" and not self._is("keyword", *_INFIX):
                self._unexpected()
            return nodes.exists(self._attribute(self._take()))
        if self._is("op", "("):
            self._take()
            node = self.expression()
            self._expect("op", ")")
            return node
        if token.kind != "name" and not self._is("keyword", *_INFIX):
            self._unexpected()
        self._take()
        if self._is("op", "("):
            return self._call(token)
        return nodes.attribute(self._attribute(token))

    def _call(self, name: _Token) -> Node:
        if not _FUNCTION_NAME.fullmatch(name.text):
            self._fail(f"{name.text!r} is not a function name", name.start)
        self._take()  # (
        args: list[Node] = []
        if not self._is("op", ")"):
            args.append(self.expression())
            while self._is("op", ","):
                self._take()
                args.append(self.expression())
        self._expect("op", ")")
        return functions.call(name.text, functions.resolve(name.text, len(args)), args)

    def _attribute(self, token: _Token) -> str:
        if not _ATTRIBUTE_NAME.fullmatch(token.text):
            self._fail(
                f"{token.text!r} is not an attribute name (letters and digits only)", token.start
            )
        return token.text.lower()

    def _integer(self, text: str, at: int) -> Node:
        number = int(text)
        if not INT_MIN <= number <= INT_MAX:
            self._fail(f"integer literal {text} is not a 32-bit integer", at)
        return nodes.constant(number)


def _unquote(text: str) -> str:
    quote = text[0]
    # The escaped quote and the doubled quote stand for the quote; every other backslash stays
    # (a LIKE pattern reads `\%` and `\_` itself).
    return text[1:-1].replace("\\" + quote, quote).replace(quote * 2, quote)


def parse(expression: str) -> Node:
    """Parse and compile `expression` (ParseError with the line and column where it stops)."""
    return _Parser(expression).parse()
