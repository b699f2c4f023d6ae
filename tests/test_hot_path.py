"""The hot path's hand-made shortcuts give exactly what the standard library gives."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from handler.binding import _HEADER_SAFE, _SPACE, encode_header_value
from handler.dispatch import REPLY_NAMESPACE, reply_id, rfc3339_now
from handler.logs import _timestamp

ISO_MICROS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
ISO_MILLIS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@given(st.text(), st.text())
def test_reply_id_is_uuid5_of_source_and_id(source: str, event_id: str) -> None:
    """reply_id is uuid.uuid5 of the length-prefixed source and id, byte for byte."""
    expected = uuid.uuid5(REPLY_NAMESPACE, f"{len(source)}:{source}{event_id}")
    assert reply_id(source, event_id) == str(expected)


def test_reply_time_is_rfc3339_millis_and_now() -> None:
    """The reply's time is RFC 3339 UTC with milliseconds, within a second of the clock."""
    text = rfc3339_now()
    assert ISO_MILLIS.fullmatch(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=1)


def test_log_timestamp_has_structlogs_iso_format() -> None:
    """The log timestamp looks like TimeStamper(fmt="iso", utc=True)'s and is now."""
    text = _timestamp(None, "info", {})["timestamp"]
    assert ISO_MICROS.fullmatch(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=1)


@given(st.text())
def test_header_encoding_matches_percent_quoting(text: str) -> None:
    """The no-escape fast path gives what urllib's quote gives, for any text."""
    assert encode_header_value(text) == quote(text, safe=_HEADER_SAFE).encode("ascii")


@given(st.text())
def test_whitespace_check_is_str_isspace(text: str) -> None:
    """The source whitespace regex finds exactly what str.isspace finds."""
    assert bool(_SPACE.search(text)) == any(ch.isspace() for ch in text)
