"""`python -m eventfn route` and `... cesql`: routing answered on a laptop, as JSON lines.

    python -m eventfn route order.json                 # which Trigger of eventing/ takes it, why
    python -m eventfn cesql "priority > 3" --event order.json

`route` prints, for every Trigger in the YAML under `--eventing` (default `eventing/`), one line
`{"trigger": NAME, "match": true|false, "why": null|REASON}` and exits 0. `cesql` prints
`{"value": ..., "error": null|KIND}` (the TCK's kind names, a `message` with an error) and exits
0 once evaluated, an evaluation error included; a parse error exits 2 with its line and column.
Without `--event` the expression sees no attributes at all. An event file holds one
structured-mode CloudEvent (JSON); `-` reads it from stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from eventfn.core.errors import FunctionError


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m eventfn {command}")
    if command == "route":
        parser.description = "Which Triggers of the rendered manifests an event matches, and why."
        parser.add_argument(
            "event", metavar="EVENT_FILE", help="structured-mode event; - for stdin"
        )
        parser.add_argument("--eventing", default="eventing", metavar="DIR", type=Path)
    else:
        parser.description = "Evaluate a CESQL v1 expression (against an event, if given)."
        parser.add_argument("expression", metavar="EXPRESSION")
        parser.add_argument(
            "--event", metavar="EVENT_FILE", help="structured-mode event; - for stdin"
        )
    return parser


def read_event(name: str, stdin: TextIO) -> dict[str, Any]:
    """The attributes of the strict CloudEvent in file `name` (`-`: stdin), as CESQL sees them."""
    from eventfn import binding
    from eventfn.routing import cesql

    raw = stdin.read().encode() if name == "-" else Path(name).read_bytes()
    return cesql.attributes_of(binding.decode_structured(raw).attributes)


def _line(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")


def route(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from eventfn.routing.triggers import load_triggers

    attributes = read_event(args.event, stdin)
    if not args.eventing.is_dir():
        raise FileNotFoundError(f"no directory {args.eventing}")
    for trigger in load_triggers(args.eventing):
        verdict = trigger.check(attributes)
        _line(out, {"trigger": trigger.name, "match": verdict.match, "why": verdict.why})
    return 0


def evaluate(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    from eventfn.routing import cesql

    try:
        expression = cesql.compile(args.expression)
    except cesql.ParseError as e:
        _line(
            out,
            {
                "value": False,
                "error": "parse",
                "message": e.message,
                "line": e.line,
                "column": e.column,
            },
        )
        return 2
    attributes = {} if args.event is None else read_event(args.event, stdin)
    result = expression.evaluate(attributes)
    line: dict[str, Any] = {"value": result.value, "error": None}
    if result.error is not None:
        line.update(error=result.error.kind.value, message=result.error.message)
    _line(out, line)
    return 0


def main(argv: Sequence[str], out: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """`route ...` or `cesql ...` (argv starts with the command's name)."""
    command, rest = argv[0], list(argv[1:])
    args = _parser(command).parse_args(rest)
    run = route if command == "route" else evaluate
    try:
        return run(args, out or sys.stdout, stdin or sys.stdin)
    except (OSError, FunctionError, ValueError) as e:  # an unreadable file, an invalid event
        print(f"python -m eventfn {command}: {e}", file=sys.stderr)
        return 2
