"""Events that can never be sent: refused at replay with a 4xx, final on their first attempt.

A `datacontenttype` no header can carry (a character beyond latin-1, a CR LF) makes `to_binary`
raise `Unencodable`, a `ClientError`: replay checks it before queueing anything (400
problem+json), and the publisher and the redeliverer count it as a permanent failure (one retry
policy: `eventfn.delivery.retry.failure`), dead-lettered at once instead of retried for ever.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventfn.binding import Event, Unencodable, check_binary
from eventfn.delivery.publisher import Publisher
from eventfn.delivery.redeliver import Redeliverer
from eventfn.delivery.retry import failure
from eventfn.observability.metrics import Metrics
from eventfn.stores.deadletters import SQLiteDeadLetterStore
from eventfn.stores.outbox import SQLiteOutbox
from tests.helpers.faults import recording_sink
from tests.helpers.support import (
    STRUCTURED,
    dumps,
    event_json,
    make_app,
    suite_client,
    suite_settings,
)

POISON_TYPES = {
    "beyond latin-1": "text/plain; x=\u20ac",
    "CR LF": "text/plain\r\nx-injected: 1",
    "NUL": "text/plain\x00",
}


def poison(content_type: str) -> Event:
    attributes = {
        "specversion": "1.0",
        "id": "poison-1",
        "source": "/tests",
        "type": "com.example.poison",
        "datacontenttype": content_type,
    }
    return Event(attributes, b"hello")


@pytest.mark.parametrize("content_type", POISON_TYPES.values(), ids=POISON_TYPES.keys())
def test_an_unencodable_content_type_is_a_typed_error(content_type: str) -> None:
    """`to_binary` raises Unencodable (400), never a UnicodeEncodeError or a header with CR LF."""
    with pytest.raises(Unencodable) as raised:
        check_binary(poison(content_type))
    assert raised.value.status_code == 400


def test_an_unencodable_event_is_a_permanent_failure() -> None:
    """The retry policy classifies it as permanent: not retried."""
    with pytest.raises(Unencodable) as raised:
        check_binary(poison(POISON_TYPES["CR LF"]))
    attempt = failure(raised.value)
    assert not attempt.delivered
    assert not attempt.retryable


def test_an_ordinary_content_type_is_encoded_as_is() -> None:
    """What a header can carry goes as it is (parameters, quotes, tabs)."""
    check_binary(poison('text/plain; charset="utf-8";\tq=1'))


@pytest.mark.parametrize("content_type", POISON_TYPES.values(), ids=POISON_TYPES.keys())
async def test_a_poison_dead_letter_is_refused_at_replay(content_type: str, tmp_path: Path) -> None:
    """Replay answers 400 problem+json; nothing reaches the sink or the outbox."""
    with recording_sink() as sink:
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            letter = event_json(data="hello", datacontenttype=content_type, knativeerrorcode=500)
            stored = await client.post(
                "/deadletter", headers={"content-type": STRUCTURED}, content=dumps(letter)
            )
            assert stored.status_code == 202
            listed = (await client.get("/api/v1/deadletters")).json()["items"]
            replay = await client.post(f"/api/v1/deadletters/{listed[0]['id']}/replay")
    depth = await SQLiteOutbox(tmp_path / "outbox.sqlite3").depth()
    assert replay.status_code == 400, replay.text
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.json()["type"].endswith("/unencodable-event")
    assert sink.arrived == []
    assert depth == 0


async def parts(tmp_path: Path, sink_url: str) -> tuple[Publisher, SQLiteOutbox, Any, Metrics]:
    settings = suite_settings(k_sink=sink_url, data_dir=tmp_path)
    outbox = SQLiteOutbox(tmp_path / "outbox.sqlite3")
    letters = SQLiteDeadLetterStore(tmp_path / "deadletters.sqlite3")
    metrics = Metrics(make_app().state.runtime.catalogue)
    publisher = Publisher(
        settings, sink=sink_url, outbox=outbox, deadletters=letters, metrics=metrics
    )
    await publisher.start()
    return publisher, outbox, letters, metrics


async def test_the_publisher_dead_letters_an_unencodable_event_on_its_first_attempt(
    tmp_path: Path,
) -> None:
    """publish() answers "rejected" at once: no HTTP attempt, a dead letter, counted."""
    with recording_sink() as sink:
        publisher, outbox, letters, metrics = await parts(tmp_path, sink.url)
        outcome = await publisher.publish(poison(POISON_TYPES["beyond latin-1"]))
        page, _ = await letters.page(10, None)
        depth = await outbox.depth()
        await publisher.stop()
    assert outcome == "rejected"
    assert sink.arrived == []
    assert [letter.event.id for letter in page] == ["poison-1"]
    assert depth == 0
    assert metrics.publish_attempts == 1
    assert metrics.dead_letters == 1


async def test_the_redeliverer_dead_letters_an_unencodable_event_on_its_first_pass(
    tmp_path: Path,
) -> None:
    """A poison record in the outbox is dead-lettered and removed in one pass, not retried."""
    with recording_sink() as sink:
        publisher, outbox, letters, _ = await parts(tmp_path, sink.url)
        await outbox.park(poison(POISON_TYPES["CR LF"]), attempts=0, delay=0.0, error="")
        redeliverer = Redeliverer(outbox, publisher, poll=60.0, batch=10, flush=0.1)
        delivered = await redeliverer.run_once()
        depth = await outbox.depth()
        page, _ = await letters.page(10, None)
        await publisher.stop()
    assert delivered == 0
    assert depth == 0
    assert [letter.event.id for letter in page] == ["poison-1"]
    assert sink.arrived == []
