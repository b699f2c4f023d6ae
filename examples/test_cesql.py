"""The routing page's CESQL example: an expression compiled once, then asked per event."""

from __future__ import annotations


def test_an_expression_is_compiled_once_and_asked_per_event() -> None:
    """`matches` is the filter's answer; `evaluate` tells the value and the error, if any."""
    # --8<-- [start:cesql]
    from eventfn.routing import cesql

    expression = cesql.compile("region = 'eu' AND priority > 3")
    assert expression.matches({"region": "eu", "priority": 5})  # the filter's answer
    result = expression.evaluate({"region": "eu"})  # no priority: a missingAttribute error
    assert result.value is False
    # --8<-- [end:cesql]
    assert result.error is not None
