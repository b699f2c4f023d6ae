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
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: python -m eventfn [serve]          serve the function on $PORT\n"
            "       python -m eventfn send --help      send a CloudEvent like `kn event send`",
        )
        return 0
    if args and args[0] not in ("serve",):
        print(f"unknown command {args[0]!r}; see python -m eventfn --help", file=sys.stderr)
        return 2
    from eventfn.server.serve import serve

    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
