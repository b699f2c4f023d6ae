"""Command line: `python -m handler` serves the function; `... send` sends an event."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m handler` and the `knative-fn` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "send":
        from handler.send import main as send_main

        return send_main(args[1:])
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: python -m handler [serve]          serve the function on $PORT\n"
            "       python -m handler send --help      send a CloudEvent like `kn event send`",
        )
        return 0
    if args and args[0] not in ("serve",):
        print(f"unknown command {args[0]!r}; see python -m handler --help", file=sys.stderr)
        return 2
    from handler.server import serve

    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
