"""The function's one exception tree, and the one place errors become HTTP responses.

    FunctionError                      500  (root; never raised bare)
    ├── ClientError                    4xx: the broker must not retry, it dead-letters
    │   ├── MalformedEvent             400  not a valid CloudEvent (binding rules)
    │   │   ├── InvalidBatch           400  one event of a batch is malformed (names its index)
    │   │   └── Unencodable            400  cannot be written in binary mode (in eventfn.binding)
    │   ├── SchemaViolation            400  the payload fails its schema (lists field errors)
    │   ├── UnknownEventType           400  no handler for the type (lists the accepted ones)
    │   ├── Unauthenticated            401  always with a WWW-Authenticate challenge
    │   ├── Forbidden                  403
    │   ├── NotFound                   404
    │   ├── MethodNotAllowed           405
    │   ├── RequestTimeout             408  the body did not arrive in time (in ingress/deadline.py)
    │   ├── Conflict                   409  retryable: the same event is still being handled
    │   ├── NoSink                     409  replay asked for but K_SINK is not set
    │   ├── PayloadTooLarge            413
    │   ├── UnsupportedMediaType       415
    │   ├── HeadersTooLarge            431
    │   ├── TooManyRequests            429  a WebSocket over its message rate or in-flight limit
    │   └── Reject                     4xx  a handler refuses the event (422 unless it says)
    └── TransientError                 503  the broker retries (Retry-After where known)
        ├── StoreUnavailable           503  dedupe/outbox/dead-letter store unreachable
        ├── IssuerUnavailable          503  OIDC issuer/JWKS unreachable (in auth/jwks.py)
        ├── HandlerTimeout             504  the handler exceeded its time budget
        ├── HandlerFailed              500  the handler raised something else
        └── Retry                      503  a handler asks for a retry (429 if it says)

`Reject` and `Retry` are the two a handler raises (`eventfn.Reject`, `eventfn.Retry`): they are
how the code that knows what went wrong steers the broker. Any other exception out of a handler
is a `HandlerFailed` 500 whose detail discloses nothing.

Each class carries its status code and RFC 9457 problem type; `problem_response` is the only code
that turns one into bytes on the wire, headers included: so every 401 carries the
`WWW-Authenticate` challenge RFC 9110 (section 11.6.1) requires, wherever it was raised.
Third-party exceptions (pydantic, orjson, redis, httpx) are translated into this tree where they
are caught, so they never leak into a response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

PROBLEM_JSON = "application/problem+json"
# The JSON Schema of every error body (RFC 9457), for the OpenAPI and AsyncAPI documents.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
_PROBLEM_BASE = "https://knative-python-backend.dev/problems/"
# The protection space named in every 401 challenge (RFC 9110 section 11.6.1).
REALM = "knative-python-backend"


class FunctionError(Exception):
    """Root of every error the function raises on purpose."""

    # Not a ClassVar: `Reject` and `Retry` carry the status their raiser chose.
    status_code: int = 500
    problem: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    @property
    def retry_after(self) -> int | None:
        """Seconds a client should wait before retrying, when known."""
        value = self.extensions.get("retry_after")
        return int(value) if value is not None else None

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": _PROBLEM_BASE + self.problem,
            "title": self.title,
            "status": self.status_code,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        body.update((k, v) for k, v in self.extensions.items() if k != "retry_after")
        return body


class ClientError(FunctionError):
    """The request is wrong; sending it again will not help."""

    status_code = 400
    problem = "bad-request"
    title = "Bad request"


class MalformedEvent(ClientError):
    problem = "malformed-event"
    title = "Malformed CloudEvent"


class InvalidBatch(MalformedEvent):
    problem = "invalid-batch"
    title = "Invalid CloudEvents batch"


class SchemaViolation(ClientError):
    problem = "schema-violation"
    title = "Payload does not match its schema"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]], **extensions: Any) -> None:
        super().__init__(detail, errors=list(errors), **extensions)


class UnknownEventType(ClientError):
    problem = "unknown-event-type"
    title = "No handler for this event type"


class Unauthenticated(ClientError):
    """No credentials, or credentials refused: a 401 whose challenge says how to authenticate.

    `invalid_token` says a bearer token was presented and refused (malformed, expired, another
    audience...): the challenge then carries RFC 6750's `error="invalid_token"`, and no more (the
    detail is in the body). `api_key_header` names the header an API key is accepted in, which the
    challenge then offers next to Bearer.
    """

    status_code = 401
    problem = "unauthenticated"
    title = "Authentication required"

    def __init__(
        self,
        detail: str,
        *,
        invalid_token: bool = False,
        api_key_header: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail, **extensions)
        self.invalid_token = invalid_token
        self.api_key_header = api_key_header

    def challenge(self) -> str:
        """The `WWW-Authenticate` value: Bearer (RFC 6750 section 3), then the API key, if any."""
        value = f'Bearer realm="{REALM}"'
        if self.invalid_token:
            value += ', error="invalid_token"'
        if self.api_key_header is not None:
            value += f', ApiKey header="{self.api_key_header}"'
        return value


class Forbidden(ClientError):
    status_code = 403
    problem = "forbidden"
    title = "Forbidden"


class NotFound(ClientError):
    status_code = 404
    problem = "not-found"
    title = "Not found"


class MethodNotAllowed(ClientError):
    status_code = 405
    problem = "method-not-allowed"
    title = "Method not allowed"


class Conflict(ClientError):
    """The same event is being handled right now; the broker retries 409 later."""

    status_code = 409
    problem = "in-progress"
    title = "Event already in progress"


class NoSink(ClientError):
    """An action needs K_SINK and none is configured (issue 3: dead-letter replay)."""

    status_code = 409
    problem = "no-sink"
    title = "No sink configured"


class PayloadTooLarge(ClientError):
    status_code = 413
    problem = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(ClientError):
    status_code = 415
    problem = "unsupported-media-type"
    title = "Unsupported media type"


class HeadersTooLarge(ClientError):
    status_code = 431
    problem = "headers-too-large"
    title = "Request header fields too large"


class TooManyRequests(ClientError):
    status_code = 429
    problem = "too-many-requests"
    title = "Too many requests"


# What a Knative Broker retries besides 5xx: a `Reject` with one of these would be redelivered.
BROKER_RETRIES = frozenset({404, 408, 409, 429})


class Reject(ClientError):
    """A handler's "this event is wrong": a 4xx the broker does not retry, so it dead-letters
    the event at once, with `detail` in the problem body (its `knativeerrordata`).

        raise Reject(f"unknown SKU {order.sku!r}")             # 422
        raise Reject("the order was cancelled", status=410)
    """

    problem = "rejected"
    title = "Event rejected"

    def __init__(self, detail: str, status: int = 422, **extensions: Any) -> None:
        if not 400 <= status < 500 or status in BROKER_RETRIES:
            raise ValueError(
                f"Reject takes a 4xx status the broker does not retry, not {status}: "
                f"{sorted(BROKER_RETRIES)} are retried (raise Retry for a retry)"
            )
        super().__init__(detail, **extensions)
        self.status_code = status


class TransientError(FunctionError):
    """Worth retrying: the broker redelivers on 5xx."""

    status_code = 503
    problem = "unavailable"
    title = "Temporarily unavailable"


class StoreUnavailable(TransientError):
    problem = "store-unavailable"
    title = "Store unavailable"


class HandlerTimeout(TransientError):
    status_code = 504
    problem = "handler-timeout"
    title = "Handler timed out"


class HandlerFailed(TransientError):
    status_code = 500
    problem = "handler-failed"
    title = "Handler failed"


class Retry(TransientError):
    """A handler's "not now": 503 (or 429 with `status=429`) with `Retry-After` when
    `retry_after` is given, so the broker redelivers the event later.

        raise Retry("the pricing service is down", retry_after=5)
    """

    problem = "retry"
    title = "Retry later"

    def __init__(self, detail: str, retry_after: float | None = None, *, status: int = 503) -> None:
        if status not in (429, 503):
            raise ValueError(f"Retry answers 503 or 429, not {status}")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after is a number of seconds, 0 or more")
        extras = {} if retry_after is None else {"retry_after": math.ceil(retry_after)}
        super().__init__(detail, **extras)
        self.status_code = status


def problem_response(
    error: FunctionError, instance: str | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body of the problem+json response for `error`."""
    body = orjson.dumps(error.to_problem(instance))
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if error.retry_after is not None:
        headers.append((b"retry-after", str(error.retry_after).encode()))
    if isinstance(error, MethodNotAllowed) and "allow" in error.extensions:
        headers.append((b"allow", str(error.extensions["allow"]).encode()))
    if isinstance(error, Unauthenticated):
        headers.append((b"www-authenticate", error.challenge().encode()))
    return error.status_code, headers, body
