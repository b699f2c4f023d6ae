"""LIKE and IN: patterns prepared once, sets hashed once.

A LIKE pattern becomes a prefix, suffix or equality test where it can (a regular expression
otherwise); an IN whose elements are all literals hashes them once per type the left operand
may have, so an event costs one lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from eventfn.routing.cesql.nodes import Attributes, Node, fail, problems_of
from eventfn.routing.cesql.types import CASTS, CastFailure, Kind, Type, Value, to_string, type_of


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
    problems = problems_of(child, *elements)
    if all(e.constant for e in elements):
        sets = _constant_sets([e.value() for e in elements])

        def in_constants(a: Attributes) -> Value:
            x = fn(a)
            found = sets[type_of(x)]
            if isinstance(found, CastFailure):
                fail(Kind.CAST, str(found), False, tag)
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
                fail(Kind.CAST, str(e), False, tag)
        return negated

    return Node(in_values, Type.BOOLEAN, tag, problems=problems)
