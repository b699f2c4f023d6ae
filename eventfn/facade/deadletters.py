"""The dead-letter inbox's REST side: `/api/v1/deadletters` lists, shows, replays, deletes.

The broker's `deadLetterSink` posts to `POST /deadletter` (`eventfn.ingress.deadletter_sink`), which
stores each event with the error Knative attached. Here they are listed, shown, replayed (to
K_SINK, without the `knativeerror*` extensions) and deleted. Storage is SQLite under DATA_DIR or
Redis, like the outbox.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from eventfn.binding import Event, check_binary, is_json, loads
from eventfn.core.errors import MalformedEvent, NoSink, NotFound
from eventfn.facade.openapi import problems
from eventfn.observability.logs import get_logger
from eventfn.stores.deadletters import DeadLetter, DeadLetterStore, without_errors
from eventfn.stores.records import dump_event

if TYPE_CHECKING:
    from eventfn.runtime import Runtime

log = get_logger("eventfn.facade.deadletters")


# ---------------------------------------------------------------------------------------------
# /api/v1/deadletters
# ---------------------------------------------------------------------------------------------


class ErrorView(BaseModel):
    destination: str | None
    code: int | None
    data: str | None


class DeadLetterView(BaseModel):
    id: str
    received: str
    type: str
    source: str
    event_id: str
    error: ErrorView
    event: dict[str, Any]


class DeadLetterPage(BaseModel):
    items: list[DeadLetterView]
    next: str | None


class ReplayResult(BaseModel):
    id: str
    outcome: str  # "delivered" (the sink took it) or "queued" (parked in the outbox)


def event_json(event: Event) -> dict[str, Any]:
    """The event in the JSON format, with JSON data embedded and other data as data_base64."""
    obj: dict[str, Any] = dict(event.attributes)
    body = dump_event(event)["data"]
    if body is None:
        return obj
    if is_json(event.datacontenttype):
        try:  # integers exact: a big one shown as a float would not be what replay sends
            obj["data"] = loads(base64.b64decode(body))
        except MalformedEvent:
            pass
        else:
            return obj
    obj["data_base64"] = body
    return obj


def view(letter: DeadLetter) -> DeadLetterView:
    received = datetime.fromtimestamp(letter.received, UTC).isoformat(timespec="milliseconds")
    return DeadLetterView(
        id=letter.id,
        received=received.replace("+00:00", "Z"),
        type=letter.event.type,
        source=letter.event.source,
        event_id=letter.event.id,
        error=ErrorView(destination=letter.destination, code=letter.code, data=letter.data),
        event=event_json(letter.event),
    )


router = APIRouter(prefix="/api/v1/deadletters", tags=["dead letters"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _store(request: Request) -> DeadLetterStore:
    store = _runtime(request).deadletters
    assert store is not None  # noqa: S101 - the router is mounted only with a store
    return store


async def _letter(request: Request, letter_id: str) -> DeadLetter:
    letter = await _store(request).get(letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id!r}")
    return letter


@router.get(
    "",
    response_model=DeadLetterPage,
    summary="List dead letters, newest first",
    responses=problems(400),
)
async def list_letters(
    request: Request,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, description="`next` of the previous page"),
) -> DeadLetterPage:
    """Dead-lettered events with their decoded error, newest first, `limit` per page."""
    letters, next_cursor = await _store(request).page(limit, cursor)
    return DeadLetterPage(items=[view(letter) for letter in letters], next=next_cursor)


@router.get(
    "/{letter_id}",
    response_model=DeadLetterView,
    summary="Show one dead letter",
    responses=problems(404),
)
async def get_letter(letter_id: str, request: Request) -> DeadLetterView:
    """One dead letter: the event as received and its decoded error."""
    return view(await _letter(request, letter_id))


@router.post(
    "/{letter_id}/replay",
    response_model=ReplayResult,
    status_code=202,
    summary="Republish a dead letter to K_SINK",
    responses=problems(400, 404, 409),
)
async def replay_letter(letter_id: str, request: Request) -> ReplayResult:
    """Publish the original event (without knativeerror* extensions) to K_SINK.

    The letter stays in the inbox (delete it once the replay is confirmed downstream); an event
    the sink does not take right away is queued in the outbox like any other publish.
    """
    publisher = _runtime(request).publisher
    if publisher is None:
        raise NoSink("replay needs K_SINK, and this function has no sink configured")
    letter = await _letter(request, letter_id)
    event = publisher.prepare(without_errors(letter.event))
    # Validated before anything is queued: an event no request can carry (a datacontenttype no
    # header can hold, say) is a 400 here, never an outbox record retried for ever.
    check_binary(event)
    outcome = await publisher.publish(event)
    log.info("dead_letter_replayed", letter=letter_id, outcome=outcome)
    return ReplayResult(id=letter_id, outcome=outcome)


@router.delete(
    "/{letter_id}", status_code=204, summary="Delete a dead letter", responses=problems(404)
)
async def delete_letter(letter_id: str, request: Request) -> Response:
    """Remove a dead letter from the inbox."""
    if not await _store(request).delete(letter_id):
        raise NotFound(f"no dead letter {letter_id!r}")
    return Response(status_code=204)
