"""`python -m eventfn route` and `python -m eventfn cesql`: JSON lines and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import manifests
from eventfn import CESQL, Catalogue, EventSpec, Exact, Route
from eventfn.__main__ import main
from eventfn.routing import commands
from eventfn.routing.triggers import duration, triggers_in

ORDER_TYPE = "com.acme.order.placed"


class Order(BaseModel):
    sku: str


ORDER = EventSpec(
    ORDER_TYPE,
    Order,
    "An order",
    consumes=True,
    routes=(Route("eu-urgent", Exact("region", "eu"), CESQL("priority > 3")),),
)
CANCEL = EventSpec("com.acme.order.cancelled", Order, "A cancellation", consumes=True)
EU = f"{manifests.NAME}-com-acme-order-placed-eu-urgent"
CANCELLED = f"{manifests.NAME}-com-acme-order-cancelled"


@pytest.fixture
def eventing(tmp_path: Path) -> Path:
    """eventing/ rendered from a catalogue of two types, one of them routed."""
    out = tmp_path / "eventing"
    manifests.write(out, manifests.render(Catalogue((ORDER, CANCEL))))
    return out


def event_file(tmp_path: Path, **attributes: Any) -> str:
    event = {"specversion": "1.0", "id": "1", "source": "/shop", "type": ORDER_TYPE}
    path = tmp_path / "event.json"
    path.write_text(json.dumps({**event, **attributes, "data": {"sku": "book"}}))
    return str(path)


def run(*argv: str, stdin: str = "") -> tuple[int, list[dict[str, Any]]]:
    """main(argv) with its output parsed as JSON lines."""
    out = io.StringIO()
    code = commands.main(list(argv), out, io.StringIO(stdin))
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_route_prints_one_line_per_trigger_with_the_match(eventing: Path, tmp_path: Path) -> None:
    """Every Trigger gets a line; the routed one matches an urgent European order."""
    path = event_file(tmp_path, region="eu", priority=5)
    code, lines = run("route", path, "--eventing", str(eventing))
    assert code == 0
    assert {line["trigger"]: line["match"] for line in lines} == {EU: True, CANCELLED: False}
    assert next(line for line in lines if line["trigger"] == EU)["why"] is None


def test_route_says_which_filter_failed(eventing: Path, tmp_path: Path) -> None:
    """A Trigger that does not match names the filter and what the event held."""
    path = event_file(tmp_path, region="eu", priority=1)
    _, lines = run("route", path, "--eventing", str(eventing))
    by_name = {line["trigger"]: line for line in lines}
    assert by_name[EU]["why"] == "cesql 'priority > 3': false"
    assert by_name[CANCELLED]["why"].startswith("filter.attributes type:")


def test_route_reads_the_event_from_stdin(eventing: Path) -> None:
    """`-` is standard input."""
    event = {"specversion": "1.0", "id": "1", "source": "/", "type": CANCEL.type}
    code, lines = run("route", "-", "--eventing", str(eventing), stdin=json.dumps(event))
    assert code == 0
    assert {line["trigger"] for line in lines if line["match"]} == {CANCELLED}


def test_route_rejects_an_invalid_event(eventing: Path, tmp_path: Path) -> None:
    """An event that is no valid CloudEvent is exit 2, nothing printed."""
    path = tmp_path / "bad.json"
    path.write_text('{"id": "1"}')
    assert run("route", str(path), "--eventing", str(eventing)) == (2, [])


def test_cesql_prints_the_value_without_error() -> None:
    """An expression that evaluates prints its value and a null error."""
    assert run("cesql", "CONCAT('a', 'b')") == (0, [{"value": "ab", "error": None}])


def test_cesql_evaluates_against_the_event(tmp_path: Path) -> None:
    """--event gives the expression the event's attributes."""
    code, lines = run(
        "cesql",
        "priority > 3 AND region = 'eu'",
        "--event",
        event_file(tmp_path, region="eu", priority=4),
    )
    assert (code, lines) == (0, [{"value": True, "error": None}])


def test_cesql_an_evaluation_error_is_exit_0_with_its_kind() -> None:
    """A missing attribute is evaluated: value false, error missingAttribute, exit 0."""
    code, [line] = run("cesql", "region = 'eu'")
    assert code == 0
    assert (line["value"], line["error"]) == (False, "missingAttribute")


def test_cesql_a_parse_error_is_exit_2_with_its_position() -> None:
    """A syntax error is exit 2, error parse, with the line and column."""
    code, [line] = run("cesql", "priority >")
    assert code == 2
    assert (line["error"], line["line"], line["column"]) == ("parse", 1, 11)


def test_the_commands_run_from_python_m_eventfn() -> None:
    """`python -m eventfn cesql` is the same command, its exit code the process's."""
    done = subprocess.run(
        [sys.executable, "-m", "eventfn", "cesql", "1 / 0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert json.loads(done.stdout)["error"] == "math"


def test_help_lists_the_routing_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m eventfn --help` names route and cesql beside serve and send."""
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "route EVENT_FILE" in out
    assert "cesql EXPRESSION" in out


# --- Reading Triggers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("PT0.5S", 0.5), ("PT2M", 120.0), ("PT1H30M", 5400.0), ("P1D", 86400.0)]
)
def test_durations_are_read_as_knative_spells_them(text: str, seconds: float) -> None:
    """ISO 8601 durations: days, hours, minutes, seconds."""
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["0.5", "PT", "P", "PT1X", "1S"])
def test_a_duration_that_is_not_iso_8601_is_refused(text: str) -> None:
    """A malformed backoffDelay or timeout is an error, not zero."""
    with pytest.raises(ValueError, match="ISO 8601"):
        duration(text)


def test_a_triggers_delivery_is_read_whole() -> None:
    """retry, backoff policy and delay, timeout, retryAfterMax and the dead-letter sink."""
    [trigger] = triggers_in(
        [
            {
                "apiVersion": "eventing.knative.dev/v1",
                "kind": "Trigger",
                "metadata": {"name": "t"},
                "spec": {
                    "broker": "b",
                    "subscriber": {"uri": "http://x/"},
                    "delivery": {
                        "retry": 2,
                        "backoffPolicy": "linear",
                        "backoffDelay": "PT1S",
                        "timeout": "PT3S",
                        "retryAfterMax": "PT9S",
                        "deadLetterSink": {"uri": "http://dls/"},
                    },
                },
            }
        ]
    )
    assert (trigger.broker, trigger.subscriber.uri) == ("b", "http://x/")
    delivery = trigger.delivery
    assert (delivery.retry, delivery.backoff_policy, delivery.timeout) == (2, "linear", 3.0)
    assert (delivery.backoff(1), delivery.backoff(3), delivery.retry_after_max) == (0.0, 2.0, 9.0)
    assert delivery.dead_letter_sink is not None
    assert delivery.dead_letter_sink.uri == "http://dls/"


def test_only_eventing_triggers_are_read() -> None:
    """Other kinds, other API groups and empty documents are skipped."""
    docs = [None, {"kind": "Service"}, {"apiVersion": "other.dev/v1", "kind": "Trigger"}]
    assert triggers_in(docs) == []
