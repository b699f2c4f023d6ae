"""The event the bench and the load test send: the function's default type, with its example.

They measure the function as `FUNCTION_REGISTRY` names it (default `handler.functions:registry`),
whatever its catalogue holds: the type is the catalogue's default consumed type (what a plain
JSON `POST /` asks for), the payload the first example its JSON Schema declares (the model's
`json_schema_extra={"examples": [...]}`, or an example on each field), validated by its model.
The stand-in servers (`bench/bare.py`, `bench/apps.py`) answer the reply type with its example,
so a ratio compares servers answering the same shape.

Resolved on first use, not at import: resolving imports the user's function.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What a wrk script, a Locust file or a stand-in server is told through its environment (they
# cannot import the function: another interpreter, or no eventfn at all).
ENV_TYPE, ENV_BODY = "BENCH_TYPE", "BENCH_BODY"
ENV_REPLY_TYPE, ENV_REPLY_BODY = "BENCH_REPLY_TYPE", "BENCH_REPLY_BODY"
ENV_FACADE_PATH = "BENCH_FACADE_PATH"


class NoBenchEvent(RuntimeError):
    """The function gives the bench nothing to send: no consumed type, or no valid example."""


@dataclass(frozen=True)
class BenchEvent:
    """The type the bench sends, its payload as JSON bytes, and what the function answers."""

    registry: str
    type: str
    body: bytes
    facade_path: str
    reply_type: str | None  # None: the type has no reply, the function answers 202
    reply_body: bytes

    def env(self) -> dict[str, str]:
        """The event for a process that cannot resolve it (wrk, Locust, a stand-in server)."""
        return {
            ENV_TYPE: self.type,
            ENV_BODY: self.body.decode(),
            ENV_FACADE_PATH: self.facade_path,
            ENV_REPLY_TYPE: self.reply_type or "",
            ENV_REPLY_BODY: self.reply_body.decode(),
        }


def resolved_or_exit(registry: str | None = None) -> BenchEvent:
    """`bench_event`, or the process exits with its reason: what a command line prints."""
    from eventfn.loading import RegistryNotFound

    try:
        return bench_event(registry)
    except (NoBenchEvent, RegistryNotFound) as exc:
        raise SystemExit(f"nothing to send: {exc}") from None


def shipped_registry() -> str:
    """`FUNCTION_REGISTRY` as the function reads it: the environment's, else the default."""
    from eventfn.core.config import Settings

    default = str(Settings.model_fields["function_registry"].default)
    return os.environ.get("FUNCTION_REGISTRY") or default


def example(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schema's first object example, else one made of each property's first example."""
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], dict):
        return dict(examples[0])
    values = {
        name: prop["examples"][0]
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, Mapping) and isinstance(prop.get("examples"), list) and prop["examples"]
    }
    return values or None


@functools.cache
def bench_event(registry: str | None = None) -> BenchEvent:
    """The event of the function `registry` names (default: `shipped_registry()`).

    NoBenchEvent, naming the registry and the type, when there is nothing valid to send.
    """
    from pydantic import ValidationError

    from eventfn import load_registry

    registry = registry or shipped_registry()
    spec = load_registry(registry).catalogue.default
    if spec is None:
        raise NoBenchEvent(f"{registry} consumes no event type: there is nothing to send it")
    payload = example(spec.json_schema())
    if payload is None:
        raise NoBenchEvent(
            f"{spec.type} (the default type of {registry}) declares no example to send: give "
            f'its model json_schema_extra={{"examples": [...]}} or an example on each field'
        )
    try:
        spec.model.model_validate(payload)
    except ValidationError as exc:
        raise NoBenchEvent(f"the example of {spec.type} is not valid: {exc}") from exc
    reply = spec.reply
    # A reply type without an example still gets an answer of its type: an empty object.
    reply_payload = (example(reply.json_schema()) or {}) if reply is not None else None
    return BenchEvent(
        registry=registry,
        type=spec.type,
        body=_compact(payload),
        facade_path=spec.facade_path,
        reply_type=reply.type if reply is not None else None,
        reply_body=b"" if reply_payload is None else _compact(reply_payload),
    )


def _compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def reply_from_env() -> tuple[str | None, bytes]:
    """The stand-in servers' reply: from the environment the bench starts them with, else
    resolved here (a server imported in-process, by the tests or the instruction counter)."""
    if ENV_REPLY_TYPE in os.environ:
        found = os.environ[ENV_REPLY_TYPE] or None
        return found, os.environ.get(ENV_REPLY_BODY, "").encode()
    event = bench_event()
    return event.reply_type, event.reply_body
