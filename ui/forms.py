"""JSON Schema to form, and form back to JSON: pure functions, no Streamlit.

`fields(schema)` reads a type's JSON Schema (as pydantic writes it: `$ref`/`$defs`, `anyOf`
with `null` for optional fields, `enum`, `default`, `examples`) into a tree of `Field`s, one per
widget; `initial(fields, example)` is what the widgets start with; `collect(fields, raw)` turns
what was typed back into the JSON the type takes, with the fields it could not read. Written by
hand: the form libraries for Streamlit render widgets themselves (the page must place each
field's server-side error beside it), and jsonschema validates but builds no form.

Raw widget values are strings for strings, numbers and arrays of scalars (one item per line), a
bool for booleans, a string (or `UNSET`) for enums, and JSON text for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["string", "number", "integer", "boolean", "enum", "object", "array", "json"]
Path = tuple[str, ...]
UNSET = "—"  # the choice of an optional enum or boolean left out
_SCALARS = ("string", "number", "integer", "boolean")


@dataclass(frozen=True)
class Field:
    """One widget of the form: a property of the schema, where it sits, how it is typed."""

    path: Path
    kind: Kind
    required: bool
    title: str
    description: str = ""
    default: Any = None
    has_default: bool = False
    options: tuple[Any, ...] = ()  # enum values
    item_kind: Kind | None = None  # arrays of scalars: the items' kind
    children: tuple[Field, ...] = field(default=())  # objects

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def checkbox(self) -> bool:
        """A boolean that always has a value (required, or with a default): a checkbox; else a
        choice that can be left out."""
        return self.kind == "boolean" and (self.required or self.has_default)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` with a local `$ref` (`#/$defs/...`) replaced by its target, siblings kept."""
    seen: set[str] = set()
    result = dict(schema)
    while "$ref" in result:
        ref = result.pop("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            break  # remote or recursive: the field falls back to a JSON editor
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        result = {**target, **result}
    return result


def _nullable(schema: dict[str, Any], root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """An `anyOf: [X, {type: null}]` (pydantic's `X | None`) as X, and whether null is allowed."""
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list):
        others = [v for v in variants if v.get("type") != "null"]
        if len(others) == 1:
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            return {**_resolve(others[0], root), **rest}, len(others) < len(variants)
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        types = [t for t in kind if t != "null"]
        if len(types) == 1:
            return {**schema, "type": types[0]}, True
    return schema, False


def _kind(schema: Mapping[str, Any]) -> Kind:
    if "enum" in schema or "const" in schema:
        return "enum"
    kind = schema.get("type")
    if kind in (*_SCALARS, "object", "array"):
        if kind == "object" and not isinstance(schema.get("properties"), Mapping):
            return "json"  # a free-form object: typed as JSON
        return kind  # type: ignore[no-any-return]
    return "json"


def _refs(schema: Mapping[str, Any]) -> set[str]:
    """The local `$ref`s a property names, itself or as a variant of `anyOf`/`oneOf`."""
    variants = [schema, *(schema.get("anyOf") or ()), *(schema.get("oneOf") or ())]
    return {
        v["$ref"] for v in variants if isinstance(v, Mapping) and isinstance(v.get("$ref"), str)
    }


def _field(
    name: str,
    prop: Mapping[str, Any],
    required: bool,
    root: Mapping[str, Any],
    parent: Path,
    inside: frozenset[str],
) -> Field:
    refs = _refs(prop)
    schema, nullable = _nullable(_resolve(prop, root), root)
    # A model inside itself (a tree, a linked list) would nest forever: JSON from there on.
    kind = "json" if refs & inside else _kind(schema)
    path = (*parent, name)
    item_kind: Kind | None = None
    children: tuple[Field, ...] = ()
    if kind == "array":
        items, _ = _nullable(_resolve(schema.get("items", {}), root), root)
        item_kind = _kind(items)
        if item_kind not in _SCALARS:
            kind, item_kind = "json", None
    elif kind == "object":
        children = _fields(schema, root, path, inside | refs)
    options: tuple[Any, ...] = ()
    if kind == "enum":
        options = tuple(schema["enum"]) if "enum" in schema else (schema["const"],)
    return Field(
        path=path,
        kind=kind,
        required=required and not nullable and "default" not in schema,
        title=str(schema.get("title") or name),
        description=str(schema.get("description") or ""),
        default=schema.get("default"),
        has_default="default" in schema,
        options=options,
        item_kind=item_kind,
        children=children,
    )


def _fields(
    schema: Mapping[str, Any], root: Mapping[str, Any], parent: Path, inside: frozenset[str]
) -> tuple[Field, ...]:
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    return tuple(
        _field(name, prop, name in required, root, parent, inside)
        for name, prop in properties.items()
    )


def fields(schema: Mapping[str, Any]) -> tuple[Field, ...]:
    """The form of a type's JSON Schema: one `Field` per property, objects nested."""
    return _fields(_resolve(schema, schema), schema, (), frozenset(_refs(schema)))


def example(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema's first example (what the form is prefilled with), or `{}`."""
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], dict):
        return dict(examples[0])
    values: dict[str, Any] = {}
    # pydantic puts a field's `examples` on the property: the first of each makes one.
    for name, prop in schema.get("properties", {}).items():
        if (
            isinstance(prop, Mapping)
            and isinstance(prop.get("examples"), list)
            and prop["examples"]
        ):
            values[name] = prop["examples"][0]
    return values


def _get(data: Any, path: Path) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return False, None
        data = data[part]
    return True, data


def _raw(f: Field, value: Any) -> Any:
    """A JSON value as the widget of `f` holds it."""
    if f.kind == "boolean":
        return value if isinstance(value, bool) else (False if f.checkbox else UNSET)
    if f.kind == "enum":
        return value if value in f.options else UNSET
    if f.kind == "array":
        return "\n".join(json.dumps(v) if not isinstance(v, str) else v for v in value or [])
    if f.kind == "json":
        return "" if value is None else json.dumps(value, indent=2)
    return "" if value is None else str(value)


def initial(form: Iterable[Field], data: Mapping[str, Any]) -> dict[str, Any]:
    """Each widget's starting value by field key: from `data` (an example, a shared link),
    else the schema's default, else blank."""
    values: dict[str, Any] = {}
    for f in _walk(form):
        if f.kind == "object":
            continue
        found, value = _get(data, f.path)
        if not found and f.has_default:
            found, value = True, f.default
        values[f.key] = _raw(f, value if found else None)
    return values


def _walk(form: Iterable[Field]) -> Iterable[Field]:
    for f in form:
        yield f
        yield from _walk(f.children)


def _scalar(kind: Kind | None, text: str) -> Any:
    """`text` as a value of `kind`; ValueError with a message for a person."""
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "number":
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError(f"{text!r} is not true or false")
    return text


def _value(f: Field, raw: Any) -> tuple[bool, Any]:
    """(present, value) of one widget; ValueError when what was typed cannot be read."""
    if f.kind == "boolean":
        return (False, None) if raw in (UNSET, None) else (True, bool(raw))
    if f.kind == "enum":
        return (False, None) if raw in (UNSET, None) else (True, raw)
    text = "" if raw is None else str(raw)
    if f.kind == "string":
        return (bool(text) or f.required, text)
    if not text.strip():
        return False, None
    return True, _typed(f, text)


def _typed(f: Field, text: str) -> Any:
    """The value of a non-blank text widget (number, array of scalars, JSON)."""
    if f.kind == "array":
        return [_scalar(f.item_kind, line.strip()) for line in text.splitlines() if line.strip()]
    if f.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc.msg} (line {exc.lineno})") from None
    return _scalar(f.kind, text.strip())


def collect(form: Iterable[Field], raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON the form says (blank optional fields left out), and the fields that could not
    be read: {field key: message}. The function validates the rest and says what it refuses."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in form:
        if f.kind == "object":
            inner, inner_errors = collect(f.children, raw)
            errors.update(inner_errors)
            if inner or f.required:
                data[f.path[-1]] = inner
            continue
        try:
            present, value = _value(f, raw.get(f.key))
        except ValueError as exc:
            errors[f.key] = str(exc)
            continue
        if present:
            data[f.path[-1]] = value
    return data, errors


def _loc(error: Mapping[str, Any]) -> Path:
    loc = [str(part) for part in error.get("loc") or ()]
    # The facade says where in the request: `body`, then the field; the WebSocket `data`.
    if loc and loc[0] in ("body", "data"):
        loc = loc[1:]
    return tuple(loc)


def place_errors(
    form: Iterable[Field], errors: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, list[str]], list[str]]:
    """A problem's `errors[]` by the field each is about (the deepest field its `loc` starts
    with), and the messages about no field (the payload as a whole, an unknown property)."""
    keys = {f.path: f.key for f in _walk(form)}
    placed: dict[str, list[str]] = {}
    general: list[str] = []
    for error in errors:
        loc = _loc(error)
        message = str(error.get("msg") or error.get("message") or error)
        for end in range(len(loc), 0, -1):
            key = keys.get(loc[:end])
            if key is not None:
                placed.setdefault(key, []).append(message)
                break
        else:
            where = ".".join(loc)
            general.append(f"{where}: {message}" if where else message)
    return placed, general


def shared_data(text: str | None) -> dict[str, Any]:
    """The payload of a shared link's `data` parameter (JSON), or `{}` if it is not one."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
