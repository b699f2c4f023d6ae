"""Reading a CloudEvents request: its headers in one pass, its body in time and within the limit,
decoded."""

from __future__ import annotations

from eventfn.binding import Head, Request, decode_head, read_head
from eventfn.core.http import Receive, Scope, content_length
from eventfn.ingress.deadline import BodyDeadline


async def read_request(
    scope: Scope,
    receive: Receive,
    limit: int,
    max_batch: int,
    deadline: BodyDeadline,
    *,
    check_data: bool = True,
) -> tuple[Head, Request]:
    """The request's headers (one pass) and its events, the body read within `limit`."""
    head = read_head(scope["headers"])
    events = await read_events(head, receive, limit, max_batch, deadline, check_data=check_data)
    return head, events


async def read_events(
    head: Head,
    receive: Receive,
    limit: int,
    max_batch: int,
    deadline: BodyDeadline,
    *,
    check_data: bool = True,
) -> Request:
    """The events of a request whose headers `read_head` read, the body read within `limit`
    before `deadline` (408 after it); `check_data` as `decode_head` takes it."""
    body = await deadline.read(receive, limit, content_length(head.content_length))
    return decode_head(head, body, max_batch=max_batch, check_data=check_data)
