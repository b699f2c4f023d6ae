"""Command line: `python -m eventfn` serves the function; `... send` sends an event."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m eventfn` and the `knative-fn` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "send":
        from eventfn.send import main as send_main

        return send_main(args[1:])
    if args and args[0] in ("route", "cesql"):
        from eventfn.routing.commands import main as routing_main

        return routing_main(args)
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: python -m eventfn [serve [MODULE:REGISTRY]]  serve the function on $PORT\n"
            "                   (its handlers: MODULE:REGISTRY, else $FUNCTION_REGISTRY)\n"
            "       python -m eventfn send --help   send a CloudEvent like `kn event send`\n"
            "       python -m eventfn route EVENT_FILE [--eventing DIR]  which Triggers take it\n"
            "       python -m eventfn cesql EXPRESSION [--event EVENT_FILE]  evaluate CESQL",
        )
        return 0
    if args and args[0] not in ("serve",):
        print(f"unknown command {args[0]!r}; see python -m eventfn --help", file=sys.stderr)
        return 2
    return _serve(args[1:])


def _serve(args: list[str]) -> int:
    """`serve [TARGET]`: the handlers are the Registry TARGET (or FUNCTION_REGISTRY) names."""
    from eventfn.core.config import Settings
    from eventfn.loading import RegistryNotFound
    from eventfn.server.serve import serve

    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m eventfn serve [module.path:registry]", file=sys.stderr)
        return 2
    try:
        serve(Settings(function_registry=args[0]) if args else Settings())
    except RegistryNotFound as error:
        print(f"python -m eventfn: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
