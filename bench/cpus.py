"""`--pin`: the server under test on a core of its own, everything else on the other cores.

On a small machine the load generator, the benchmark's `redis-server` and its JWKS server share
the cores with the server under test. Unpinned, the scheduler moves them all about, and the
rows with Redis also pay for Redis' own CPU, which a deployment spends on another machine.
Pinned, each server under test has the last CPU to itself (its per-request CPU time is its own
code's), and wrk and the services run on the others. `make bench` runs unpinned unless asked.
"""

from __future__ import annotations

import os
from collections.abc import Callable

# The CPUs of each role ("server", "others") while pinned; empty: not pinned.
ROLES: dict[str, set[int]] = {}


def pin() -> None:
    """Pin from now on: the last CPU this process may use for servers, the rest for the others."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    ROLES.update(server={cpus[-1]}, others=set(cpus[:-1]))


def preexec(role: str) -> Callable[[], None] | None:
    """A `preexec_fn` that pins a child process to the CPUs of `role` (None when not pinned)."""
    cpus = ROLES.get(role)
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)
