"""Trigger filters with Knative's semantics (`pkg/eventfilter`), declared in Python or read back.

    Route("eu-urgent", Exact("region", "eu"), CESQL("priority > 3"))

A `Route` is one Trigger of a consumed type: its filters, each of one dialect (`Exact`,
`Prefix`, `Suffix`, `CESQL`, `AllOf`, `AnyOf`, `Not`), must all pass. `to_dict` gives the
Trigger's `filters:` item; `filter_from_dict` reads one back; `compile_trigger` turns a Trigger's
spec into one check per event. How Knative decides, and so how these do:

- `filters` (the Subscriptions API list) takes precedence over `filter.attributes` when set;
  the list is an AND, and an empty one (or none) lets every event through;
- `exact`, `prefix` and `suffix` fail on an attribute the event does not have; a value that is
  not a string is compared as its text (`5`, `true`);
- `filter.attributes` matches exactly, and its `""` means "set, with any value";
- a CESQL expression passes only when it evaluates to true without error;
- `not` of a filter that decides nothing (`all: []`) decides nothing either.

A filter is checked where it is built: a CESQL expression that does not parse raises
`cesql.ParseError` (a `ValueError`) with its position, so a catalogue with a typo fails at import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from eventfn.routing.cesql import Expression, Value

Attributes = Mapping[str, "Value"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A filter's answer: `match`, and `why` it failed (None when it passed or decided nothing)."""

    match: bool
    why: str | None = None
    decided: bool = True


PASS: Final = Verdict(True)
NO_FILTER: Final = Verdict(True, decided=False)

Check = Callable[[Attributes], Verdict]

_ATTRIBUTE: Final = re.compile(r"[a-z0-9]+")
_ROUTE_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _text(value: object) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _lookup(attributes: Attributes, name: str) -> str | None:
    if name == "datamediatype":  # Knative's derived attribute: the media type without parameters
        media = attributes.get("datacontenttype")
        return None if media is None else _text(media).split(";", 1)[0].strip()
    value = attributes.get(name)
    return None if value is None else _text(value)


@dataclass(frozen=True, slots=True)
class _Match:
    """An attribute against a value: `exact`, `prefix` or `suffix` (one key, as Knative admits)."""

    attribute: str
    value: str

    dialect = ""

    def __post_init__(self) -> None:
        if not _ATTRIBUTE.fullmatch(self.attribute):
            raise ValueError(
                f"{self.dialect} filter: {self.attribute!r} is not a CloudEvents attribute name"
            )
        if not self.value:
            raise ValueError(f"{self.dialect} filter on {self.attribute!r}: the value is empty")

    def to_dict(self) -> dict[str, Any]:
        return {self.dialect: {self.attribute: self.value}}

    def test(self, actual: str) -> bool:
        raise NotImplementedError

    def compile(self) -> Check:
        name, test, dialect, wanted = self.attribute, self.test, self.dialect, self.value
        derived = name == "datamediatype"

        def check(attributes: Attributes) -> Verdict:
            actual = _lookup(attributes, name) if derived else attributes.get(name)
            if actual is None:
                return Verdict(False, f"{dialect} {name}: the event has no {name!r}")
            if actual.__class__ is not str:
                actual = _text(actual)
            if test(actual):
                return PASS
            return Verdict(False, f"{dialect} {name}: {actual!r} against {wanted!r}")

        return check


class Exact(_Match):
    """The attribute equals the value (`exact: {attribute: value}`)."""

    dialect = "exact"

    def test(self, actual: str) -> bool:
        return actual == self.value


class Prefix(_Match):
    """The attribute starts with the value (`prefix: {attribute: value}`)."""

    dialect = "prefix"

    def test(self, actual: str) -> bool:
        return actual.startswith(self.value)


class Suffix(_Match):
    """The attribute ends with the value (`suffix: {attribute: value}`)."""

    dialect = "suffix"

    def test(self, actual: str) -> bool:
        return actual.endswith(self.value)


@dataclass(frozen=True, slots=True)
class CESQL:
    """A CESQL v1 expression that must evaluate to true (`cesql: "..."`); parsed when built."""

    expression: str

    def __post_init__(self) -> None:
        self.compiled()  # a ParseError (or a call no function answers) fails here, not per event

    def compiled(self) -> Expression:
        from eventfn.routing import cesql

        try:
            compiled = cesql.compile(self.expression)
        except cesql.ParseError as e:
            raise cesql.ParseError(
                f"CESQL filter {self.expression!r}: {e.message.rsplit(' at line ', 1)[0]}",
                self.expression,
                e.line,
                e.column,
            ) from None
        if compiled.problems:
            raise ValueError(f"CESQL filter {self.expression!r}: {'; '.join(compiled.problems)}")
        return compiled

    def to_dict(self) -> dict[str, Any]:
        return {"cesql": self.expression}

    def compile(self) -> Check:
        expression = self.compiled()
        source = self.expression

        def check(attributes: Attributes) -> Verdict:
            result = expression.evaluate(attributes)
            if result.error is not None:
                return Verdict(False, f"cesql {source!r}: {result.error.kind} ({result.error})")
            if result.value is True:
                return PASS
            return Verdict(False, f"cesql {source!r}: {_text(result.value)}")

        return check


@dataclass(frozen=True, slots=True, init=False)
class AllOf:
    """Every filter passes (`all: [...]`)."""

    filters: tuple[Filter, ...]

    def __init__(self, *filters: Filter) -> None:
        if not filters:
            raise ValueError("all: at least one filter")
        object.__setattr__(self, "filters", tuple(filters))

    def to_dict(self) -> dict[str, Any]:
        return {"all": [f.to_dict() for f in self.filters]}

    def compile(self) -> Check:
        return _all([f.compile() for f in self.filters])


@dataclass(frozen=True, slots=True, init=False)
class AnyOf:
    """At least one filter passes (`any: [...]`)."""

    filters: tuple[Filter, ...]

    def __init__(self, *filters: Filter) -> None:
        if not filters:
            raise ValueError("any: at least one filter")
        object.__setattr__(self, "filters", tuple(filters))

    def to_dict(self) -> dict[str, Any]:
        return {"any": [f.to_dict() for f in self.filters]}

    def compile(self) -> Check:
        checks = [f.compile() for f in self.filters]
        if len(checks) == 1:
            return checks[0]

        def check(attributes: Attributes) -> Verdict:
            verdict, reasons = NO_FILTER, []
            for c in checks:
                verdict = c(attributes)
                if verdict.match and verdict.decided:
                    return PASS
                if verdict.why:
                    reasons.append(verdict.why)
            if verdict.match:  # the last decided nothing, as Knative's loop leaves it
                return verdict
            return Verdict(False, f"any: none passed ({'; '.join(reasons)})")

        return check


@dataclass(frozen=True, slots=True)
class Not:
    """The filter fails (`not: {...}`)."""

    filter: Filter

    def to_dict(self) -> dict[str, Any]:
        return {"not": self.filter.to_dict()}

    def compile(self) -> Check:
        inner = self.filter.compile()
        shown = json.dumps(self.filter.to_dict())

        def check(attributes: Attributes) -> Verdict:
            verdict = inner(attributes)
            if not verdict.decided:
                return NO_FILTER
            if verdict.match:
                return Verdict(False, f"not: {shown} passed")
            return PASS

        return check


Filter = Exact | Prefix | Suffix | CESQL | AllOf | AnyOf | Not


def _all(checks: Sequence[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def check(attributes: Attributes) -> Verdict:
        verdict = NO_FILTER
        for c in checks:
            verdict = c(attributes)
            if not verdict.match:
                return verdict
        return verdict

    return check


@dataclass(frozen=True, slots=True, init=False)
class Route:
    """One Trigger of a consumed type: a short name (the Trigger's suffix) and its filters."""

    name: str
    filters: tuple[Filter, ...]

    def __init__(self, name: str, *filters: Filter) -> None:
        if not _ROUTE_NAME.fullmatch(name) or len(name) > 40:
            raise ValueError(f"route name {name!r}: lowercase letters, digits and '-' (at most 40)")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "filters", tuple(filters))


def trigger_filter(event_type: str, route: Route | None = None) -> dict[str, Any]:
    """The filter part of a consumed type's Trigger spec: the type alone, or a route's filters.

    Without a route, `filter.attributes.type`; with one, `filters:` (which Knative reads first)
    holding the type as an `exact` filter, then the route's own: all must pass.
    """
    if route is None:
        return {"filter": {"attributes": {"type": event_type}}}
    return {"filters": [{"exact": {"type": event_type}}, *(f.to_dict() for f in route.filters)]}


_DIALECTS: Final = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


def filter_from_dict(item: Mapping[str, Any]) -> Filter:
    """One `filters:` item of a Trigger (exactly one dialect, as Knative's webhook demands)."""
    dialects = [d for d in _DIALECTS if item.get(d) not in (None, {}, [], "")]
    unknown = sorted(set(item) - set(_DIALECTS))
    if unknown or len(dialects) != 1:
        raise ValueError(f"a filter has exactly one of {', '.join(_DIALECTS)}; got {dict(item)}")
    dialect = dialects[0]
    value = item[dialect]
    if dialect in ("exact", "prefix", "suffix"):
        if not isinstance(value, Mapping) or len(value) != 1:
            raise ValueError(f"{dialect}: one attribute and its value, got {value!r}")
        ((attribute, wanted),) = value.items()
        kinds: dict[str, type[Exact | Prefix | Suffix]] = {
            "exact": Exact,
            "prefix": Prefix,
            "suffix": Suffix,
        }
        kind = kinds[dialect]
        return kind(str(attribute), str(wanted))
    if dialect == "cesql":
        return CESQL(str(value))
    if dialect == "not":
        return Not(filter_from_dict(value))
    items = [filter_from_dict(v) for v in value]
    return AllOf(*items) if dialect == "all" else AnyOf(*items)


def _attributes_filter(attrs: Mapping[str, str]) -> Check:
    wanted = {str(k): str(v) for k, v in attrs.items()}

    def check(attributes: Attributes) -> Verdict:
        for name, value in wanted.items():
            actual = _lookup(attributes, name)
            if actual is None or (value == "" and actual == ""):
                return Verdict(False, f"filter.attributes {name}: the event has no {name!r}")
            if value not in ("", actual):
                return Verdict(False, f"filter.attributes {name}: {actual!r} against {value!r}")
        return PASS

    return check


def compile_trigger(spec: Mapping[str, Any]) -> Check:
    """The check of a Trigger's spec: `filters` when given, else `filter.attributes`, else none."""
    items = spec.get("filters") or []
    if items:
        return _all([filter_from_dict(item).compile() for item in items])
    attrs = (spec.get("filter") or {}).get("attributes") or {}
    if attrs:
        return _attributes_filter(attrs)
    return lambda _attributes: NO_FILTER
