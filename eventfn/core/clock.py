"""The runtime's clocks, and timestamps: RFC 3339 in UTC, formatted once a second (log lines and
reply events share it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Clocks:
    """The clocks `create_app` hands the components that read time, so a test can move them.

    `monotonic` (seconds) times intervals: the in-memory dedupe leases, the OIDC verifier's
    JWKS refresh bounds and how long it remembers a refused token. `wall` (Unix seconds) is what
    tokens' `exp`, `nbf` and `iat` are checked against.
    """

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def iso_now() -> str:
    """`TimeStamper(fmt="iso", utc=True)`'s format, with the date formatted once per second.

    structlog's TimeStamper builds a datetime per line: a quarter of the cost of a log line.
    """
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[0] = second
    return f"{_second[1]}.{int((now - second) * 1e6):06d}Z"
