"""What every SQLite store shares: one database file used from asyncio, and how it fails.

Everything opening or using the file can raise is translated here, in one place, into the 503
the broker retries (`StoreUnavailable`): every exception class of `sqlite3` (a locked, corrupt or
full database) and `OSError` (a `DATA_DIR` that cannot be created or is read-only, before
SQLite is even asked). `usable` is the readiness side of the same: whether `DATA_DIR` can take
a write now.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from eventfn.core.errors import StoreUnavailable
from eventfn.observability.logs import get_logger

log = get_logger("eventfn.stores.sqlite")
T = TypeVar("T")
# What using a database file can raise: the disk, the directory, and the whole of sqlite3's tree
# (`sqlite3.Warning` is not an `sqlite3.Error`).
ERRORS = (sqlite3.Error, sqlite3.Warning, OSError)
LOG_EVERY = 10.0  # seconds between two lines about one store failing call after call


class SQLiteFile:
    """One SQLite database file used from asyncio: calls run in a thread, one at a time."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._schema = schema
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # The failures in a row, and when the last line about them was logged: a DATA_DIR that
        # cannot be written fails every call (the redeliverer's every poll too), and is logged
        # once, then at most every LOG_EVERY seconds, and once more when it works again.
        self._failures = 0
        self._logged = 0.0

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            db.execute("PRAGMA synchronous=FULL")  # a parked event survives a power cut too
            db.executescript(self._schema)
        except BaseException:
            db.close()  # not kept half-open: the next call opens it again
            raise
        self._db = db

    def present(self) -> bool:
        """Whether the database exists: reads of a store never written need not create it."""
        return self._db is not None or self.path.exists()

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` in a thread, inside a transaction; errors become 503s."""

        def call() -> T:
            with self._lock:
                if self._db is None:
                    self._open()
                assert self._db is not None  # noqa: S101 - opened just above
                with self._db:  # commit, or roll back on error
                    return work(self._db)

        try:
            result = await asyncio.to_thread(call)
        except ERRORS as exc:
            self._failed(exc)
            raise StoreUnavailable(f"the store {self.path.name} failed", retry_after=1) from None
        if self._failures:
            log.info("sqlite_recovered", path=str(self.path), failures=self._failures)
            self._failures = 0
        return result

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._failures += 1
        if self._failures == 1:
            self._logged = now
            log.error("sqlite_error", path=str(self.path), error=str(exc), exc_info=exc)
        elif now - self._logged >= LOG_EVERY:
            self._logged = now
            log.error("sqlite_error", path=str(self.path), error=str(exc), failures=self._failures)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                if self._db is not None:
                    self._db.close()
                    self._db = None

        await asyncio.to_thread(close)


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    # access(2) answers EROFS for a read-only mount and EACCES for a directory not ours.
    return os.access(folder, os.W_OK | os.X_OK)


async def usable(folder: Path) -> bool:
    """Whether the SQLite stores' directory exists (or can be made) and takes writes now.

    In a thread: the caller bounds the wait (a hung network volume fails the probe).
    """
    return await asyncio.to_thread(_writable, folder)
