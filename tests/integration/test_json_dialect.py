"""One JSON dialect at every door: RFC 8259, no NaN or Infinity, numbers a double can hold, and
integers kept exactly however long.

The binding reads JSON once, with orjson (`eventfn.binding.loads`); binary-mode data and the
facade's bodies are held to it too, not left to pydantic's or the standard library's parser,
which accept `NaN`. An integer beyond 64 bits (which orjson would read as a float) is read
exactly and carried as the bytes it came in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfn.binding import decode_batch, decode_structured, loads
from eventfn.core.errors import MalformedEvent
from tests.helpers.faults import recording_sink
from tests.helpers.support import (
    BATCH,
    STRUCTURED,
    assert_bad_request,
    binary_headers,
    dumps,
    event_json,
    facade_path,
    new_id,
    suite_client,
)

NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
BIG = 123456789012345678901234567890  # beyond 64 bits


def data_with(number: str) -> bytes:
    """A valid payload but for `number`, where the model takes any JSON (its parameters)."""
    return b'{"query": "hi", "parameters": {"n": ' + number.encode() + b"}}"


def structured_with(number: str) -> bytes:
    return (
        b'{"specversion":"1.0","id":"1","source":"/t","type":"t","data":' + data_with(number) + b"}"
    )


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
def test_the_dialect_refuses_non_finite_numbers(number: str) -> None:
    """`loads` refuses what RFC 8259 has no number for."""
    with pytest.raises(MalformedEvent):
        loads(data_with(number))


def test_the_dialect_keeps_big_integers_exactly() -> None:
    """An integer beyond 64 bits comes back as that integer, not a float."""
    assert loads(data_with(str(BIG)))["parameters"]["n"] == BIG
    assert loads(data_with(str(-BIG)))["parameters"]["n"] == -BIG


def test_a_structured_event_keeps_its_big_integers_as_bytes() -> None:
    """Its JSON data is carried as the bytes of the exact value, which every encoder embeds."""
    event = decode_structured(structured_with(str(BIG)))
    assert event.data is not None
    assert loads(event.data) == {"query": "hi", "parameters": {"n": BIG}}


def test_a_batch_keeps_its_big_integers_as_bytes() -> None:
    """The same in a batch, for every member."""
    (event,) = decode_batch(b"[" + structured_with(str(BIG)) + b"]", 10)
    assert event.data is not None
    assert loads(event.data)["parameters"]["n"] == BIG


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
async def test_binary_mode_refuses_non_finite_numbers(number: str) -> None:
    """A binary-mode event with NaN/Infinity/1e400 in its JSON data is a 400."""
    async with suite_client() as client:
        response = await client.post("/", headers=binary_headers(), content=data_with(number))
    assert_bad_request(response)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
async def test_structured_mode_refuses_non_finite_numbers(number: str) -> None:
    """The same in structured mode."""
    async with suite_client() as client:
        response = await client.post(
            "/", headers={"content-type": STRUCTURED}, content=structured_with(number)
        )
    assert_bad_request(response)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
async def test_batch_mode_refuses_non_finite_numbers(number: str) -> None:
    """The same in a batch."""
    async with suite_client() as client:
        response = await client.post(
            "/", headers={"content-type": BATCH}, content=b"[" + structured_with(number) + b"]"
        )
    assert_bad_request(response)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
async def test_the_facade_refuses_non_finite_numbers(number: str) -> None:
    """The facade's JSON body is held to the same dialect (FastAPI's parser takes NaN)."""
    async with suite_client() as client:
        response = await client.post(
            facade_path(), headers={"content-type": "application/json"}, content=data_with(number)
        )
    assert_bad_request(response)


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
async def test_a_plain_json_post_refuses_non_finite_numbers(number: str) -> None:
    """Plain JSON to `POST /` is the facade's default route: the same 400."""
    async with suite_client() as client:
        response = await client.post(
            "/", headers={"content-type": "application/json"}, content=data_with(number)
        )
    assert_bad_request(response)


async def test_a_structured_dead_letter_replays_its_big_integers_exactly(tmp_path: Path) -> None:
    """Shown and replayed, a big integer of a structured dead letter is the integer it was."""
    letter_id = new_id()
    letter = event_json({"query": "hi", "n": 0}, id=letter_id, knativeerrorcode=500)
    body = dumps(letter).replace(b'"n":0', b'"n":' + str(BIG).encode())
    with recording_sink() as sink:
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            stored = await client.post(
                "/deadletter", headers={"content-type": STRUCTURED}, content=body
            )
            assert stored.status_code == 202
            (shown,) = (await client.get("/api/v1/deadletters")).json()["items"]
            replay = await client.post(f"/api/v1/deadletters/{shown['id']}/replay")
    assert shown["event"]["data"]["n"] == BIG
    assert replay.status_code == 202
    assert loads(sink.bodies[letter_id])["n"] == BIG
    assert str(BIG).encode() in sink.bodies[letter_id]


@pytest.mark.parametrize("body", [b'{"n": NaN}', b"{not json", b"[1e400]"])
async def test_a_dead_letter_is_kept_whatever_its_json_data_holds(
    body: bytes, tmp_path: Path
) -> None:
    """`POST /deadletter` keeps data the ingress refused: it may be why it was dead-lettered."""
    async with suite_client(data_dir=tmp_path) as client:
        stored = await client.post(
            "/deadletter", headers=binary_headers(knativeerrorcode="400"), content=body
        )
        (shown,) = (await client.get("/api/v1/deadletters")).json()["items"]
    assert stored.status_code == 202
    assert "data_base64" in shown["event"]  # not JSON in the dialect: shown as its bytes
