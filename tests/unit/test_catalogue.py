"""The event catalogue and the handler registry: one names the types, the other their handlers.

The registry is built on a catalogue and carries it, so the two cannot disagree. These tests build
their own catalogues; the example's (`schemas.CATALOGUE`) is checked in tests/repo/test_example.py.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from eventfn import Catalogue, EventSpec, Registry
from tests.functions import ASK as QUESTION
from tests.helpers.support import make_app, suite_settings


class Note(BaseModel):
    """A payload for the catalogues built here."""

    text: str


ANSWER = EventSpec("com.example.answer", Note, "An answer.")
ASK = EventSpec("com.example.ask", Note, "A question.", consumes=True, reply=ANSWER, name="ask")
TELL = EventSpec("com.example.tell", Note, "Fire-and-forget.", consumes=True)
PUBLISHED = EventSpec("com.example.published", Note, "Published on the function's own.")


async def echo(note: Note) -> Note:
    return note


async def nothing(_note: Note) -> None:
    return None


# -------------------------------------------------------------------------------------------
# EventSpec
# -------------------------------------------------------------------------------------------


def test_event_spec_slug_is_file_friendly() -> None:
    """A type's slug replaces dots with dashes."""
    assert QUESTION.slug == "dev-eventfn-tests-ask"


def test_event_spec_json_schema_is_titled_by_type() -> None:
    """The JSON Schema of a type is draft 2020-12, titled and described by the type."""
    schema = QUESTION.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == QUESTION.type
    assert schema["description"] == QUESTION.description
    assert schema["required"] == ["query"]


def test_a_named_type_is_served_under_its_name() -> None:
    """A short name gives the facade route /api/v1/<name> and the WebSocket message type."""
    assert ASK.facade_path == "/api/v1/ask"
    assert ASK.message_type == "ask"


def test_an_unnamed_type_is_served_under_its_type() -> None:
    """Without a name: /api/v1/events/<type>, and the event type is the message type."""
    assert TELL.facade_path == "/api/v1/events/com.example.tell"
    assert TELL.message_type == "com.example.tell"


def test_a_reply_needs_a_consumed_type() -> None:
    """Only a consumed type is answered: a reply on a produced type is refused at once."""
    with pytest.raises(ValueError, match="not consumed"):
        EventSpec("com.example.x", Note, "x", reply=ANSWER)


def test_a_facade_name_needs_a_consumed_type() -> None:
    """A produced type has no facade route, so no name."""
    with pytest.raises(ValueError, match="only a consumed type"):
        EventSpec("com.example.x", Note, "x", name="x")


# -------------------------------------------------------------------------------------------
# Catalogue
# -------------------------------------------------------------------------------------------


def test_catalogue_holds_the_specs_and_their_replies() -> None:
    """Listing a consumed type brings its reply type along."""
    catalogue = Catalogue((ASK, TELL))
    assert set(catalogue) == {ASK.type, ANSWER.type, TELL.type}
    assert catalogue.consumed == (ASK, TELL)
    assert catalogue.produced == (ANSWER,)


def test_produced_includes_published_types() -> None:
    """A type the function emits on its own is produced, never routed."""
    catalogue = Catalogue((ASK, PUBLISHED))
    assert catalogue.produced == (ANSWER, PUBLISHED)
    assert catalogue.consumed == (ASK,)


def test_the_default_type_is_the_first_consumed() -> None:
    """The default (plain JSON POST /, WebSocket messages without `type`) is the first consumed."""
    assert Catalogue((PUBLISHED, TELL, ASK)).default is TELL
    assert Catalogue((PUBLISHED,)).default is None


def test_catalogue_rejects_a_type_defined_twice() -> None:
    """Two different specs cannot share a type name."""
    clash = EventSpec(type=ANSWER.type, model=Note, description="clash")
    with pytest.raises(ValueError, match="defined twice"):
        Catalogue((ASK, EventSpec("x.request", Note, "x", consumes=True, reply=clash)))


def test_catalogue_rejects_two_consumed_types_of_one_name() -> None:
    """A facade route and a WebSocket message type name one consumed type only."""
    twin = EventSpec("com.example.ask2", Note, "twin", consumes=True, name="ask")
    with pytest.raises(ValueError, match="named 'ask'"):
        Catalogue((ASK, twin))


def test_catalogue_allows_a_shared_reply_type() -> None:
    """Two consumed types may reply with the same spec; it is produced once."""
    other = EventSpec("com.example.other", Note, "other", consumes=True, reply=ANSWER)
    catalogue = Catalogue((ASK, other))
    assert catalogue.produced == (ANSWER,)
    assert len(catalogue.consumed) == 2


# -------------------------------------------------------------------------------------------
# Registry
# -------------------------------------------------------------------------------------------


def test_registering_a_type_twice_fails() -> None:
    """Each type has exactly one handler."""
    registry = Registry(Catalogue((ASK,)))
    registry.handles(ASK)(echo)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.handles(ASK)(echo)


def test_a_handler_for_a_type_outside_the_catalogue_fails_at_once() -> None:
    """Registering for a type the registry's catalogue lacks is refused where it is written."""
    registry = Registry(Catalogue((ASK,)))
    with pytest.raises(LookupError, match="not in this registry's catalogue"):
        registry.handles(TELL)


def test_a_handler_for_a_produced_type_fails_at_once() -> None:
    """A produced type is never delivered to the function: a handler for it is a mistake."""
    registry = Registry(Catalogue((ASK, PUBLISHED)))
    with pytest.raises(ValueError, match="consumes=True"):
        registry.handles(PUBLISHED)


def test_a_consumed_type_without_handler_fails_when_the_app_is_built() -> None:
    """A consumed type with no handler fails fast at create_app, not in production."""
    registry = Registry(Catalogue((ASK, TELL)))
    registry.handles(ASK)(echo)
    with pytest.raises(LookupError, match=r"without a handler: \['com.example.tell'\]"):
        make_app(suite_settings(), registry=registry)


def test_a_fire_and_forget_type_gets_a_route_without_reply() -> None:
    """A consumed type declared without a reply is routed; its route has no reply type."""
    registry = Registry(Catalogue((TELL,)))
    registry.handles(TELL)(nothing)
    assert registry.routes()[TELL.type].reply is None
