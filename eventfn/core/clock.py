"""Timestamps: RFC 3339 in UTC, formatted once a second (log lines and reply events share it)."""

from __future__ import annotations

import time
from typing import Any

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
