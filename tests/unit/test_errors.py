"""The exception tree: each error knows its status, and becomes one RFC 9457 problem."""

from __future__ import annotations

import orjson
import pytest

from eventfn.core import errors
from eventfn.core.errors import (
    PROBLEM_JSON,
    ClientError,
    Conflict,
    Forbidden,
    FunctionError,
    HandlerFailed,
    HandlerTimeout,
    InvalidBatch,
    MalformedEvent,
    MethodNotAllowed,
    PayloadTooLarge,
    SchemaViolation,
    StoreUnavailable,
    TransientError,
    Unauthenticated,
    UnknownEventType,
    UnsupportedMediaType,
    problem_response,
)

STATUSES = [
    (MalformedEvent, 400),
    (InvalidBatch, 400),
    (UnknownEventType, 400),
    (MethodNotAllowed, 405),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (StoreUnavailable, 503),
    (HandlerTimeout, 504),
    (HandlerFailed, 500),
]


@pytest.mark.parametrize(("cls", "status"), STATUSES, ids=[c.__name__ for c, _ in STATUSES])
def test_each_error_carries_its_status(cls: type[FunctionError], status: int) -> None:
    """The status code of an error is a property of its class."""
    assert cls("x").status_code == status


def test_client_errors_are_4xx_and_transient_errors_5xx() -> None:
    """Everything under ClientError is 4xx (not retried); under TransientError 5xx (retried)."""
    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, FunctionError):
            if issubclass(cls, ClientError):
                assert 400 <= cls.status_code < 500, name
            if issubclass(cls, TransientError):
                assert cls.status_code >= 500, name


def test_problem_types_are_unique() -> None:
    """Each error class has its own problem type URI."""
    classes = [
        getattr(errors, n)
        for n in dir(errors)
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), FunctionError)
    ]
    problems = [c.problem for c in classes]
    assert len(problems) == len(set(problems))


def test_problem_body_is_rfc9457() -> None:
    """type, title, status, detail and instance, plus the error's extensions."""
    error = UnknownEventType("no handler for 'x'", accepted_types=["a"])
    status, headers, body = problem_response(error, instance="/")
    problem = orjson.loads(body)
    assert status == 400
    assert problem == {
        "type": "https://knative-python-backend.dev/problems/unknown-event-type",
        "title": "No handler for this event type",
        "status": 400,
        "detail": "no handler for 'x'",
        "instance": "/",
        "accepted_types": ["a"],
    }
    assert dict(headers)[b"content-type"] == PROBLEM_JSON.encode()
    assert dict(headers)[b"content-length"] == str(len(body)).encode()
    assert dict(headers)[b"cache-control"] == b"no-store"


def test_retry_after_is_a_header_not_a_body_member() -> None:
    """Retry-After where known: as an HTTP header, left out of the body."""
    _, headers, body = problem_response(Conflict("busy", retry_after=2))
    assert dict(headers)[b"retry-after"] == b"2"
    assert "retry_after" not in orjson.loads(body)
    assert "instance" not in orjson.loads(body)


def test_method_not_allowed_sends_allow() -> None:
    """A 405 names the allowed methods in Allow."""
    _, headers, _ = problem_response(MethodNotAllowed("no", allow="POST"))
    assert dict(headers)[b"allow"] == b"POST"


def test_unauthenticated_sends_a_bearer_challenge() -> None:
    """Every 401 carries WWW-Authenticate (RFC 9110 11.6.1): Bearer, in the function's realm."""
    _, headers, _ = problem_response(Unauthenticated("no token"))
    assert dict(headers)[b"www-authenticate"] == b'Bearer realm="knative-python-backend"'


def test_a_refused_token_is_challenged_as_invalid_token() -> None:
    """`invalid_token=True` adds RFC 6750's error code to the challenge, not to the body."""
    _, headers, body = problem_response(Unauthenticated("expired", invalid_token=True))
    challenge = dict(headers)[b"www-authenticate"]
    assert challenge == b'Bearer realm="knative-python-backend", error="invalid_token"'
    assert set(orjson.loads(body)) == {"type", "title", "status", "detail"}


def test_an_accepted_api_key_header_is_a_second_challenge() -> None:
    """`api_key_header` offers the API key after Bearer, in one header field."""
    error = Unauthenticated("no key", invalid_token=True, api_key_header="X-API-Key")
    _, headers, _ = problem_response(error)
    assert [v for k, v in headers if k == b"www-authenticate"] == [
        b'Bearer realm="knative-python-backend", error="invalid_token", ApiKey header="X-API-Key"'
    ]


def test_only_401_carries_a_challenge() -> None:
    """Other statuses, 403 included, send no WWW-Authenticate."""
    for error in (Forbidden("no"), Conflict("busy"), StoreUnavailable("down")):
        _, headers, _ = problem_response(error)
        assert b"www-authenticate" not in dict(headers), type(error).__name__


def test_schema_violation_lists_its_errors() -> None:
    """A schema violation carries its field errors in `errors`."""
    error = SchemaViolation("bad", [{"loc": ["data", "query"], "msg": "m", "type": "t"}])
    assert error.to_problem()["errors"] == [{"loc": ["data", "query"], "msg": "m", "type": "t"}]


def test_errors_without_retry_after_say_none() -> None:
    """retry_after is None unless the error knows it."""
    assert MalformedEvent("x").retry_after is None
    assert StoreUnavailable("down", retry_after="5").retry_after == 5
