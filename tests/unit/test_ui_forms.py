"""The UI's JSON Schema forms (`ui/forms.py`): schema to fields, widgets to JSON, errors placed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functions.ui import ORDER_PLACED, TICKET_OPENED
from ui import forms

TICKET = TICKET_OPENED.json_schema()
ORDER = ORDER_PLACED.json_schema()


def by_key(schema: dict[str, Any]) -> dict[str, forms.Field]:
    found: dict[str, forms.Field] = {}

    def walk(fields: tuple[forms.Field, ...]) -> None:
        for f in fields:
            found[f.key] = f
            walk(f.children)

    walk(forms.fields(schema))
    return found


def test_strings_and_integers_are_typed_and_required() -> None:
    """A required string and a required integer become a string and an integer field."""
    fields = by_key(ORDER)
    assert (fields["sku"].kind, fields["sku"].required) == ("string", True)
    assert (fields["quantity"].kind, fields["quantity"].required) == ("integer", True)


def test_a_number_field_reads_decimals_and_whole_numbers() -> None:
    """An optional `float | None` is a number field that is not required."""
    hours = by_key(TICKET)["estimate_hours"]
    assert (hours.kind, hours.required) == ("number", False)
    assert forms.collect([hours], {"estimate_hours": "1.5"})[0] == {"estimate_hours": 1.5}
    assert forms.collect([hours], {"estimate_hours": "2"})[0] == {"estimate_hours": 2}


def test_an_enum_behind_a_ref_keeps_its_options_and_default() -> None:
    """An enum in $defs, referenced with a default beside the $ref, is a choice of its values."""
    priority = by_key(TICKET)["priority"]
    assert priority.kind == "enum"
    assert priority.options == ("low", "normal", "high")
    assert (priority.default, priority.required) == ("normal", False)


def test_a_nested_object_behind_a_ref_has_its_own_fields() -> None:
    """A model field is an object whose properties are fields under its path."""
    customer = by_key(TICKET)["customer"]
    assert customer.kind == "object"
    assert [c.key for c in customer.children] == ["customer.name", "customer.email"]
    assert [c.required for c in customer.children] == [True, False]


def test_an_array_of_strings_is_one_item_per_line() -> None:
    """`list[str]` is an array field: each non-blank line is an item."""
    tags = by_key(TICKET)["tags"]
    assert (tags.kind, tags.item_kind) == ("array", "string")
    assert forms.collect([tags], {"tags": "a\n\n b \n"})[0] == {"tags": ["a", "b"]}


def test_an_array_of_integers_reads_each_line_as_one() -> None:
    """Items of an integer array are read as integers; a bad one is the field's error."""
    schema = {
        "type": "object",
        "properties": {"n": {"type": "array", "items": {"type": "integer"}}},
    }
    form = forms.fields(schema)
    assert forms.collect(form, {"n": "1\n2"}) == ({"n": [1, 2]}, {})
    assert forms.collect(form, {"n": "1\nx"}) == ({}, {"n": "'x' is not a whole number"})


def test_a_boolean_with_a_default_is_a_checkbox() -> None:
    """A boolean that always has a value is a checkbox, unchecked by its `false` default."""
    urgent = by_key(TICKET)["urgent"]
    assert (urgent.kind, urgent.checkbox) == ("boolean", True)
    assert forms.initial([urgent], {})["urgent"] is False


def test_an_optional_boolean_without_default_can_be_left_out() -> None:
    """`bool | None` without a default is a choice that can stay unset (and is then omitted)."""
    schema = {"properties": {"b": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}}}
    form = forms.fields(schema)
    assert not form[0].checkbox
    assert forms.initial(form, {}) == {"b": forms.UNSET}
    assert forms.collect(form, {"b": forms.UNSET}) == ({}, {})
    assert forms.collect(form, {"b": True}) == ({"b": True}, {})


def test_a_free_form_object_is_edited_as_json() -> None:
    """An object without properties (`dict[str, Any]`) is a JSON field."""
    schema = {"properties": {"p": {"type": "object", "additionalProperties": True}}}
    form = forms.fields(schema)
    assert form[0].kind == "json"
    assert forms.collect(form, {"p": '{"a": [1]}'}) == ({"p": {"a": [1]}}, {})
    assert forms.collect(form, {"p": "{"})[1]["p"].startswith("not JSON")


def test_a_recursive_ref_stops_at_a_json_field() -> None:
    """A schema that refers to itself does not recurse forever: the loop is a JSON field."""
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    }
    assert [(f.key, f.kind) for f in forms.fields(schema)] == [("next", "json")]


def test_the_schema_example_prefills_the_form() -> None:
    """The model's `examples` are what the widgets start with."""
    form = forms.fields(ORDER)
    assert forms.initial(form, forms.example(ORDER)) == {"sku": "book", "quantity": "2"}


def test_property_examples_make_an_example_when_the_model_has_none() -> None:
    """Without a model-level example, each property's first example fills its field."""
    assert forms.example(TICKET) == {"title": "Printer on fire"}


def test_defaults_fill_what_the_example_does_not() -> None:
    """A field the data does not give starts at its schema default, else blank."""
    values = forms.initial(forms.fields(TICKET), {"title": "t"})
    assert values["priority"] == "normal"
    assert values["customer.name"] == ""
    assert values["tags"] == ""


def test_blank_optional_fields_are_left_out_of_the_payload() -> None:
    """Only what was filled in is sent; required strings are sent even empty."""
    form = forms.fields(TICKET)
    raw = {**forms.initial(form, {}), "title": "t", "customer.name": "ada"}
    data, errors = forms.collect(form, raw)
    assert errors == {}
    assert data == {
        "title": "t",
        "priority": "normal",
        "customer": {"name": "ada"},
        "urgent": False,
    }


def test_a_value_that_is_not_a_number_is_the_fields_own_error() -> None:
    """What cannot be read is reported by field key, and left out of the payload."""
    form = forms.fields(ORDER)
    assert forms.collect(form, {"sku": "book", "quantity": "two"}) == (
        {"sku": "book"},
        {"quantity": "'two' is not a whole number"},
    )


@pytest.mark.parametrize(
    ("loc", "key"),
    [
        (["body", "quantity"], "quantity"),  # the facade
        (["quantity"], "quantity"),  # the WebSocket and the ingress
        (["data", "customer", "name"], "customer.name"),
        (["tags", 2], "tags"),  # an item: its array
    ],
)
def test_errors_are_placed_beside_the_field_their_loc_names(loc: list[Any], key: str) -> None:
    """An `errors[].loc` goes to the deepest field it starts with."""
    placed, general = forms.place_errors(
        forms.fields({**TICKET, "properties": {**TICKET["properties"], **ORDER["properties"]}}),
        [{"loc": loc, "msg": "wrong"}],
    )
    assert (placed, general) == ({key: ["wrong"]}, [])


def test_errors_about_no_field_are_general() -> None:
    """An unknown property or the payload as a whole is said above the form, with its loc."""
    placed, general = forms.place_errors(
        forms.fields(ORDER), [{"loc": ["body", "colour"], "msg": "Extra inputs are not permitted"}]
    )
    assert placed == {}
    assert general == ["colour: Extra inputs are not permitted"]


def test_a_shared_links_data_is_read_when_it_is_a_json_object() -> None:
    """`?data=` prefills only with a JSON object; anything else is ignored."""
    assert forms.shared_data('{"sku": "pen"}') == {"sku": "pen"}
    assert forms.shared_data("[1]") == {}
    assert forms.shared_data("{") == {}
    assert forms.shared_data(None) == {}
