"""A `DATA_DIR` that cannot be used: every SQLite store answers 503, readiness is not ready.

`SQLiteFile` translates what opening or using the file raises, `OSError` included (a directory
that cannot be created is not a `sqlite3.Error`), into the 503 the broker retries. In-process
a `DATA_DIR` below a regular file stands for one that cannot be created (root ignores
permissions); the chaos cases mount a read-only and a full tmpfs where the machine allows it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from eventfn.binding import Event
from eventfn.core.errors import StoreUnavailable
from eventfn.stores import sqlite as sqlite_module
from eventfn.stores.deadletters import SQLiteDeadLetterStore, dead_letter_of
from eventfn.stores.outbox import SQLiteOutbox
from eventfn.stores.sqlite import SQLiteFile
from tests.helpers.faults import fill, tmpfs
from tests.helpers.support import (
    assert_unavailable,
    binary_headers,
    captured_logs,
    dumps,
    query,
    suite_client,
)


def letter_event() -> Event:
    return Event({"specversion": "1.0", "id": "1", "source": "/t", "type": "t.t"}, b"{}")


@pytest.fixture
def uncreatable(tmp_path: Path) -> Path:
    """A DATA_DIR whose parent is a regular file: mkdir fails with an OSError."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return blocker / "data"


async def test_an_outbox_under_an_uncreatable_data_dir_is_unavailable(uncreatable: Path) -> None:
    """The outbox's first write raises StoreUnavailable (503), not the OSError of mkdir."""
    outbox = SQLiteOutbox(uncreatable / "outbox.sqlite3")
    with pytest.raises(StoreUnavailable) as raised:
        await outbox.park(letter_event(), attempts=0, delay=0.0, error="")
    assert raised.value.retry_after == 1


async def test_a_dead_letter_store_under_an_uncreatable_data_dir_is_unavailable(
    uncreatable: Path,
) -> None:
    """Keeping a dead letter there is a 503 the broker retries, never a 500."""
    store = SQLiteDeadLetterStore(uncreatable / "deadletters.sqlite3")
    with pytest.raises(StoreUnavailable):
        await store.add(dead_letter_of(letter_event()))


SQLITE_ERRORS = sorted(
    (
        kind
        for kind in vars(sqlite3).values()
        if isinstance(kind, type) and issubclass(kind, Exception)
    ),
    key=lambda kind: kind.__name__,
)


@pytest.mark.parametrize("kind", [*SQLITE_ERRORS, OSError], ids=lambda kind: kind.__name__)
async def test_every_sqlite_error_is_a_store_outage(kind: type[Exception], tmp_path: Path) -> None:
    """Each exception class sqlite3 defines (and OSError), raised by a store's work, is a 503."""

    def work(_db: sqlite3.Connection) -> None:
        raise kind("failed")

    database = SQLiteFile(tmp_path / "store.sqlite3", "")
    with pytest.raises(StoreUnavailable):
        await database.run(work)
    await database.close()


async def test_a_failing_data_dir_is_logged_once_then_its_recovery(uncreatable: Path) -> None:
    """Failing call after call (every poll of the redeliverer), the store logs one line, not
    one per call, and one more when it works again."""
    outbox = SQLiteOutbox(uncreatable / "outbox.sqlite3")
    with captured_logs(sqlite_module) as logs:
        for _ in range(5):
            with pytest.raises(StoreUnavailable):
                await outbox.depth()
        uncreatable.parent.unlink()  # the blocking file goes: DATA_DIR can be made now
        assert await outbox.depth() == 0
    await outbox.stop()
    events = [line["event"] for line in logs]
    assert events == ["sqlite_error", "sqlite_recovered"]
    assert logs[1]["failures"] == 5


async def test_an_uncreatable_data_dir_is_503_and_not_ready(uncreatable: Path) -> None:
    """POST /deadletter answers 503 problem+json and readiness says which store is down."""
    async with suite_client(data_dir=uncreatable) as client:
        stored = await client.post(
            "/deadletter", headers=binary_headers(knativeerrorcode="500"), content=dumps(query())
        )
        readiness = await client.get("/health/readiness")
    assert_unavailable(stored)
    assert readiness.status_code == 503
    assert readiness.json() == {"status": "data-dir-unavailable"}


async def test_a_usable_data_dir_is_ready(tmp_path: Path) -> None:
    """The same probe on a directory that takes writes: ready."""
    async with suite_client(data_dir=tmp_path / "data") as client:
        assert (await client.get("/health/readiness")).status_code == 200


# -- real file systems (chaos) ------------------------------------------------------------------


@pytest.mark.chaos
async def test_a_read_only_data_dir_is_503_and_not_ready() -> None:
    """DATA_DIR on a read-only mount: dead letters 503, readiness 503, no 500 anywhere."""
    with tmpfs("ro") as folder:
        async with suite_client(data_dir=folder) as client:
            stored = await client.post(
                "/deadletter",
                headers=binary_headers(knativeerrorcode="500"),
                content=dumps(query()),
            )
            readiness = await client.get("/health/readiness")
            listed = await client.get("/api/v1/deadletters")
    assert_unavailable(stored)
    assert readiness.status_code == 503
    assert listed.status_code in (200, 503)  # nothing kept to list: empty, or the store's 503


@pytest.mark.chaos
async def test_a_full_data_dir_is_503() -> None:
    """DATA_DIR on a full disk: storing a dead letter is a 503 the broker retries."""
    with tmpfs() as folder:
        fill(folder)
        async with suite_client(data_dir=folder) as client:
            big = dumps(query("x" * 100_000))
            stored = await client.post(
                "/deadletter", headers=binary_headers(knativeerrorcode="500"), content=big
            )
    assert_unavailable(stored)


@pytest.mark.chaos
async def test_an_outbox_on_a_full_disk_is_unavailable() -> None:
    """The outbox on a full disk: StoreUnavailable, the loss not hidden as a success."""
    with tmpfs() as folder:
        fill(folder)
        outbox = SQLiteOutbox(folder / "outbox.sqlite3")
        with pytest.raises(StoreUnavailable):
            await outbox.park(letter_event(), attempts=0, delay=0.0, error="")
        await outbox.stop()
