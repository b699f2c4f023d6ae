"""`POST /deadletter`: the broker's `deadLetterSink` points here, so failures are never silent.

An ASGI fast path (authenticated like the ingress, no FastAPI) that stores each dead-lettered
event with the error Knative attached to it. Its body limit is its own, DEADLETTER_MAX_BODY_BYTES
(8 MiB), above the ingress's: an event dead-lettered because the ingress found it too large
must still fit here.

    knativeerrordest   where the delivery failed (URL)
    knativeerrorcode   the HTTP status it got
    knativeerrordata   base64 of the failed response body (Knative keeps at most 1024 chars)

The letter id derives from the event's source + id: the broker redelivering the same dead letter
replaces it instead of adding a copy. `eventfn.facade.deadletters` is the REST side that lists,
replays and deletes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventfn.core.errors import FunctionError, MethodNotAllowed, problem_response
from eventfn.core.http import Receive, Scope, Send
from eventfn.ingress.deadline import BodyDeadline
from eventfn.observability.logs import get_logger
from eventfn.stores.deadletters import DeadLetterStore, dead_letter_of

if TYPE_CHECKING:
    from eventfn.runtime import Runtime

log = get_logger("eventfn.facade.deadletters")


class DeadLetterSink:
    """The ASGI endpoint of `POST /deadletter`: store every event of the request, answer 202."""

    def __init__(self, runtime: Runtime, store: DeadLetterStore) -> None:
        self.runtime = runtime
        self.store = store
        self._deadline = BodyDeadline(runtime.settings.body_timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from eventfn.core.http import ClientDisconnected, send_response
        from eventfn.ingress.request import read_request

        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed("the dead-letter sink accepts POST only", allow="POST")
            if self.runtime.delivery_auth is not None:
                await self.runtime.delivery_auth.check(scope)
            settings = self.runtime.settings
            _, request = await read_request(
                scope,
                receive,
                settings.deadletter_max_body_bytes,
                settings.max_batch_events,
                self._deadline,
                # Kept whatever its data holds: it may be why the broker dead-lettered it.
                check_data=False,
            )
            for event in request.events:
                letter = dead_letter_of(event)
                await self.store.add(letter)
                self.runtime.metrics.dead_letter_stored()
                log.warning(
                    "dead_letter", letter=letter.id, id=event.id, type=event.type,
                    source=event.source, dest=letter.destination, code=letter.code,
                )  # fmt: skip
        except ClientDisconnected:
            return
        except FunctionError as error:
            log.info("dead_letter_rejected", status=error.status_code, detail=error.detail)
            await send_response(send, *problem_response(error, instance=scope["path"]))
            return
        except Exception:  # a bug of ours: a retryable problem+json, never uvicorn's text/plain
            log.exception("dead_letter_bug")
            bug = FunctionError("the dead-letter sink failed unexpectedly; retry")
            await send_response(send, *problem_response(bug, instance=scope["path"]))
            return
        await send_response(send, 202, [(b"content-length", b"0")], b"")
