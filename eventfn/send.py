"""`python -m eventfn send`: send a CloudEvent the way `kn event send` does, and print the reply.

    python -m eventfn send --to http://localhost:8080 --field query="What is Knative?"

Without `--type` the event is of the function's default type: the first consumed type of the
catalogue that `--registry` (default: the `FUNCTION_REGISTRY` setting) names, the type a plain
JSON `POST /` asks for. The event is built and encoded with the cloudevents SDK (the reference
client), sent with httpx, and the reply is printed as it came: status, CloudEvents headers, body.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any, TextIO

import httpx
import orjson
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from eventfn.core.config import Settings
from eventfn.loading import RegistryNotFound, load_registry

_SETTING_DEFAULT = str(Settings.model_fields["function_registry"].default)


def default_registry() -> str:
    """The `FUNCTION_REGISTRY` of this shell, else the setting's default (nothing else is read:
    a setting of the function that does not validate here is no reason to refuse a send)."""
    return os.environ.get("FUNCTION_REGISTRY") or _SETTING_DEFAULT


def default_type(target: str) -> str:
    """The default type of the function `target` names: its catalogue's first consumed type."""
    try:
        spec = load_registry(target).catalogue.default
    except RegistryNotFound as exc:
        raise argparse.ArgumentTypeError(f"no --type given, and {exc}") from None
    if spec is None:
        raise argparse.ArgumentTypeError(f"no --type given, and {target!r} consumes no type")
    return spec.type


def _typed(value: str) -> Any:
    """`--field` values: numbers and booleans become JSON numbers and booleans, the rest strings."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    return parsed if isinstance(parsed, bool | int | float) else value


def set_path(data: dict[str, Any], assignment: str, *, typed: bool) -> None:
    """Apply one `path.to.field=value` assignment to `data`."""
    path, sep, value = assignment.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected path=value, got {assignment!r}")
    keys = path.split(".")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise argparse.ArgumentTypeError(f"{path!r}: {key!r} is already a value")
        node = child
    node[keys[-1]] = _typed(value) if typed else value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eventfn send",
        description="Send a CloudEvent (like `kn event send`) and print the reply.",
    )
    p.add_argument("--to", default="http://localhost:8080/", help="URL of the function or broker")
    p.add_argument(
        "--type",
        default=None,
        help="event type (default: the default type of the function --registry names)",
    )
    p.add_argument(
        "--registry",
        default=None,
        metavar="MODULE:REGISTRY",
        help="the function whose default type is sent without --type "
        f"(default: $FUNCTION_REGISTRY, else {_SETTING_DEFAULT})",
    )
    p.add_argument("--id", default=None, help="event id (default: a new UUID)")
    p.add_argument("--source", default="kn-event/v1", help="event source (default: %(default)s)")
    p.add_argument(
        "-f",
        "--field",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="data field; numbers and booleans are typed (repeatable)",
    )
    p.add_argument(
        "--raw-field",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="data field, always a string (repeatable)",
    )
    p.add_argument(
        "-e",
        "--extension",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="CloudEvents extension attribute (repeatable)",
    )
    p.add_argument("--mode", choices=("binary", "structured"), default="binary")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra HTTP header, e.g. Authorization=Bearer... (repeatable)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds (default: %(default)s)")
    return p


def build_event(args: argparse.Namespace) -> CloudEvent:
    data: dict[str, Any] = {}
    for assignment in args.field:
        set_path(data, assignment, typed=True)
    for assignment in args.raw_field:
        set_path(data, assignment, typed=False)
    # Only a missing --type means the default: "" is no type, and the SDK says so below.
    type_ = (
        args.type if args.type is not None else default_type(args.registry or default_registry())
    )
    attributes: dict[str, Any] = {
        "type": type_,
        "source": args.source,
        "id": args.id or str(uuid.uuid4()),
        "datacontenttype": "application/json",
    }
    for extension in args.extension:
        name, sep, value = extension.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {extension!r}")
        attributes[name] = value
    try:
        return CloudEvent(attributes, data)
    except BaseCloudEventException as exc:
        # An illegal attribute is a usage error of the command, not a crash with a traceback.
        raise argparse.ArgumentTypeError(str(exc)) from None


def send(
    args: argparse.Namespace, out: TextIO, *, transport: httpx.BaseTransport | None = None
) -> int:
    """Send the event described by `args`; print the reply to `out`; 0 on a 2xx."""
    event = build_event(args)
    encode = to_binary if args.mode == "binary" else to_structured
    message = encode(event, JSONFormat())
    # This command prints the reply, so it says it processes one (the data-plane contract).
    headers = {**dict(message.headers), "prefer": "reply"}
    for header in args.header:
        name, _, value = header.partition("=")
        headers[name] = value
    with httpx.Client(timeout=args.timeout, transport=transport) as client:
        try:
            response = client.post(args.to, content=message.body, headers=headers)
        except httpx.HTTPError as exc:
            print(f"error: could not reach {args.to}: {exc}", file=sys.stderr)
            return 2
    print(f"HTTP {response.status_code} {response.reason_phrase}", file=out)
    for name, value in response.headers.items():
        if name.startswith("ce-") or name in ("content-type", "retry-after"):
            print(f"{name}: {value}", file=out)
    if response.content:
        print(file=out)
        try:
            body = orjson.dumps(orjson.loads(response.content), option=orjson.OPT_INDENT_2)
            print(body.decode(), file=out)
        except orjson.JSONDecodeError:
            print(response.text, file=out)
    return 0 if response.is_success else 1


def main(argv: Sequence[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        return send(args, sys.stdout)
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    return 2  # pragma: no cover - p.error exits
