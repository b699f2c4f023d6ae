"""CESQL's grammar for lark (LALR), and the one parser built from it on first use.

Why lark and not a hand-written parser: the grammar below is the spec's ANTLR grammar
(`CESQLParser.g4`) nearly line for line, so what it accepts can be checked by reading it; lark's
LALR parser runs the compiler's callbacks while it parses (no tree is kept), and an expression is
parsed once, when a filter is built, never per event. The table is built on the first parse
(about 20 ms), so importing the runtime costs nothing.

Where the ANTLR grammar decides, this one follows it (it is what Knative's Go engine runs):
function calls, then NOT and unary minus, bind tighter than LIKE, EXISTS and IN, which bind
tighter than `* / %`, `+ -`, the comparisons, and last AND, OR, XOR, which share one level and
group to the right (`a AND b OR c` is `a AND (b OR c)`). Keywords are case-insensitive; an
integer literal carries its sign (`-2147483648` is a literal, not the negation of an overflow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import lark

# Keywords end where a name would (`trueish` is an attribute); priority 2 puts them before NAME.
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

_parser: lark.Lark | None = None


def parser(transformer: lark.Transformer[lark.Token, object]) -> lark.Lark:
    """The LALR parser (built once per process), running `transformer` while it parses."""
    global _parser  # noqa: PLW0603 - one table per process, built on first use
    if _parser is None:
        import lark

        _parser = lark.Lark(
            GRAMMAR,
            parser="lalr",
            lexer="contextual",
            transformer=transformer,
            propagate_positions=False,
        )
    return _parser
