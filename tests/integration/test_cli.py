"""`python -m eventfn send`: build an event like `kn event send`, send it, print the reply."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import respx

from eventfn import Catalogue, Registry
from eventfn.__main__ import main
from eventfn.send import build_event, parser, send, set_path
from tests.functions import NOTE, NOTICE, take_note
from tests.helpers.support import QUERY, RESPONSE, ROOT, SUITE_REGISTRY, ServerProcess

URL = "http://function.test/"

# Functions for `--registry`: one whose default type is not the suite function's, one that
# consumes nothing.
NOTES = Registry(Catalogue((NOTE,)))
NOTES.handles(NOTE)(take_note)
SILENT = Registry(Catalogue((NOTICE,)))


@pytest.fixture(autouse=True)
def suite_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command (in process or not) knows the function by FUNCTION_REGISTRY: the suite's."""
    monkeypatch.setenv("FUNCTION_REGISTRY", SUITE_REGISTRY)


def args(*argv: str) -> argparse.Namespace:
    """Parsed `send` arguments."""
    return parser().parse_args(["--to", URL, *argv])


def run_send(*argv: str) -> tuple[int, str, httpx.Request]:
    """send() against a respx route answering a binary reply; exit code, output, request."""
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL).respond(
            200,
            headers={
                "ce-id": "r-1",
                "ce-type": RESPONSE,
                "content-type": "application/json",
                "x-other": "hidden",
            },
            content=b'{"result":{"message":"ok"}}',
        )
        out = io.StringIO()
        code = send(args(*argv), out)
    return code, out.getvalue(), route.calls.last.request


# -------------------------------------------------------------------------------------------
# Building the event (no network)
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3),
        ("-1.5", -1.5),
        ("true", True),
        ("false", False),
        ("hello", "hello"),
        ("null", "null"),
        ('"quoted"', '"quoted"'),
        ("[1]", "[1]"),
        ("", ""),
    ],
)
def test_field_values_are_typed(value: str, expected: object) -> None:
    """--field turns numbers and booleans into JSON numbers and booleans; the rest are strings."""
    data: dict[str, object] = {}
    set_path(data, f"x={value}", typed=True)
    assert data["x"] == expected
    assert type(data["x"]) is type(expected)


def test_raw_field_values_stay_strings() -> None:
    """--raw-field never converts its value."""
    data: dict[str, object] = {}
    set_path(data, "n=42", typed=False)
    assert data == {"n": "42"}


def test_nested_paths_build_nested_objects() -> None:
    """Dotted paths create nested objects and merge with siblings."""
    data: dict[str, object] = {}
    set_path(data, "parameters.lang=en", typed=True)
    set_path(data, "parameters.limit=3", typed=True)
    set_path(data, "parameters.deep.er=x=y", typed=False)
    assert data == {"parameters": {"lang": "en", "limit": 3, "deep": {"er": "x=y"}}}


@pytest.mark.parametrize("assignment", ["novalue", "=x"])
def test_assignment_without_path_or_value_is_an_error(assignment: str) -> None:
    """A field must be path=value."""
    with pytest.raises(argparse.ArgumentTypeError, match="expected path=value"):
        set_path({}, assignment, typed=True)


def test_assigning_below_a_value_is_an_error() -> None:
    """a=1 then a.b=2 cannot both hold."""
    data: dict[str, object] = {}
    set_path(data, "a=1", typed=True)
    with pytest.raises(argparse.ArgumentTypeError, match="already a value"):
        set_path(data, "a.b=2", typed=True)


def test_event_defaults_like_kn_event_send() -> None:
    """Without options the event is of the function's default type, from kn-event/v1, with a
    fresh UUID id."""
    first, second = build_event(args()), build_event(args())
    assert first.get_type() == QUERY
    assert first.get_source() == "kn-event/v1"
    assert first.get_id() != second.get_id()
    assert first.get_datacontenttype() == "application/json"


def test_the_default_type_is_that_of_the_function_registry_names() -> None:
    """--registry (else FUNCTION_REGISTRY) names the function whose first consumed type is sent."""
    assert (
        build_event(args("--registry", "tests.integration.test_cli:NOTES")).get_type() == NOTE.type
    )


def test_the_default_type_follows_function_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --registry, the shell's FUNCTION_REGISTRY names the function."""
    monkeypatch.setenv("FUNCTION_REGISTRY", "tests.integration.test_cli:NOTES")
    assert build_event(args()).get_type() == NOTE.type


def test_a_given_type_needs_no_function() -> None:
    """--type is sent as given; the registry is not even loaded."""
    event = build_event(args("--type", "com.example.other", "--registry", "no.such:module"))
    assert event.get_type() == "com.example.other"


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("no.such.module:registry", "cannot be imported"),
        ("tests.integration.test_cli:SILENT", "consumes no"),
    ],
    ids=["unresolvable", "consumes-nothing"],
)
def test_no_type_and_no_default_type_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], registry: str, message: str
) -> None:
    """Without --type and without a function to take the default from: exit 2, saying why."""
    code, _, err = main_send(capsys, "--to", URL, "--registry", registry, "-f", "query=q")
    assert code == 2
    assert "no --type given" in err
    assert message in err
    assert registry in err


def test_extensions_become_attributes() -> None:
    """-e name=value adds a CloudEvents extension."""
    event = build_event(args("-e", "correlationid=c-1", "--extension", "tenant=acme"))
    assert event.get_extension("correlationid") == "c-1"
    assert event.get_extension("tenant") == "acme"


def test_extension_without_value_is_an_error() -> None:
    """An extension must be NAME=VALUE."""
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        build_event(args("-e", "lonely"))


# -------------------------------------------------------------------------------------------
# send() over respx
# -------------------------------------------------------------------------------------------


def test_binary_mode_sends_ce_headers_and_the_data() -> None:
    """The default mode is binary: attributes as ce- headers, the data object as the body."""
    code, out, request = run_send(
        "--id", "e-1", "--source", "/cli", "--field", "query=hi", "--raw-field", "parameters.n=1"
    )
    assert code == 0
    assert request.headers["ce-id"] == "e-1"
    assert request.headers["ce-source"] == "/cli"
    assert request.headers["ce-type"] == QUERY
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == {"query": "hi", "parameters": {"n": "1"}}
    assert out.startswith("HTTP 200 OK\n")
    assert "ce-id: r-1" in out
    assert "x-other" not in out
    assert '"message": "ok"' in out


def test_structured_mode_sends_one_json_document() -> None:
    """--mode structured sends application/cloudevents+json with the data embedded."""
    code, _, request = run_send("--mode", "structured", "--id", "e-2", "-f", "query=q", "-f", "n=2")
    assert code == 0
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert not any(name.startswith("ce-") for name in request.headers)
    body = orjson.loads(request.content)
    assert (body["id"], body["type"]) == ("e-2", QUERY)
    assert body["data"] == {"query": "q", "n": 2}


def test_extra_headers_are_sent() -> None:
    """--header adds an HTTP header, e.g. credentials."""
    _, _, request = run_send("--header", "Authorization=Bearer t0k", "-f", "query=q")
    assert request.headers["authorization"] == "Bearer t0k"


@pytest.mark.parametrize(("status", "code"), [(202, 0), (400, 1), (409, 1), (503, 1)])
def test_exit_code_is_0_only_on_2xx(status: int, code: int) -> None:
    """The exit code is 0 for a 2xx answer and 1 otherwise; the problem body is printed."""
    with respx.mock() as mock:
        mock.post(URL).respond(
            status,
            headers={"content-type": "application/problem+json", "retry-after": "1"},
            content=b'{"status": %d}' % status if status != 202 else b"",
        )
        out = io.StringIO()
        assert send(args("-f", "query=q"), out) == code
    assert out.getvalue().startswith(f"HTTP {status}")
    if status == 409:
        assert "retry-after: 1" in out.getvalue()


def test_non_json_reply_body_is_printed_as_text() -> None:
    """A body that is not JSON is printed as it came."""
    with respx.mock() as mock:
        mock.post(URL).respond(200, content=b"plain words")
        out = io.StringIO()
        send(args(), out)
    assert out.getvalue().rstrip().endswith("plain words")


def test_unreachable_target_exits_2() -> None:
    """A connection failure is reported on stderr with exit code 2."""
    with respx.mock() as mock:
        mock.post(URL).mock(side_effect=httpx.ConnectError("refused"))
        assert send(args(), io.StringIO()) == 2


# -------------------------------------------------------------------------------------------
# The real command against a real server
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real function for the CLI tests."""
    data_dir: Path = tmp_path_factory.mktemp("cli-data")
    proc = ServerProcess({"DATA_DIR": str(data_dir), "LOG_LEVEL": "warning"}).start()
    try:
        yield proc
    finally:
        proc.stop()


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m eventfn send ...` in a new process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "eventfn", "send", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def main_send(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`eventfn.__main__.main(["send", ...])` in this process: exit code, stdout, stderr."""
    try:
        code = main(["send", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.server
def test_python_m_handler_send_talks_to_a_real_function(server: ServerProcess) -> None:
    """The real command, in its own process, gets the binary reply and exits 0."""
    result = cli("--to", server.url, "--field", "query=What is Knative?", "-e", "correlationid=c-9")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP 200 OK")
    assert f"ce-type: {RESPONSE}" in result.stdout
    assert "ce-replyid: c-9" in result.stdout
    body = orjson.loads(result.stdout.split("\n\n", 1)[1])
    assert body["result"] == {"message": "Processed query: What is Knative?"}


@pytest.mark.server
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_cli_sends_a_query_and_prints_the_reply(
    server: ServerProcess, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """The reply comes back in the mode the CLI sent, with nested typed and raw fields."""
    code, out, _ = main_send(
        capsys,
        "--to",
        server.url,
        "--mode",
        mode,
        "--field",
        "query=What is Knative?",
        "--field",
        "parameters.limit=3",
        "--raw-field",
        "parameters.code=007",
        "-e",
        "correlationid=c-9",
    )
    assert code == 0
    assert out.startswith("HTTP 200 OK")
    body = orjson.loads(out.split("\n\n", 1)[1])
    if mode == "binary":
        assert "ce-replyid: c-9" in out
        assert body["result"] == {"message": "Processed query: What is Knative?"}
    else:
        assert "content-type: application/cloudevents+json" in out
        assert body["replyid"] == "c-9"
        assert body["data"]["result"] == {"message": "Processed query: What is Knative?"}


@pytest.mark.server
def test_cli_exit_code_is_1_on_a_rejected_event(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema failure prints the 400 problem and exits 1."""
    code, out, _ = main_send(capsys, "--to", server.url, "--field", "query=")
    assert code == 1
    assert out.startswith("HTTP 400")
    assert "schema-violation" in out


@pytest.mark.server
def test_cli_typed_field_reaches_the_schema_as_a_number(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """--field query=42 sends a number, which the query schema rejects; --raw-field sends text."""
    typed = main_send(capsys, "--to", server.url, "--field", "query=42")
    raw = main_send(capsys, "--to", server.url, "--raw-field", "query=42")
    assert typed[0] == 1
    assert "string_type" in typed[1]
    assert raw[0] == 0
    assert "Processed query: 42" in raw[1]


def test_cli_unreachable_target_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening: a clear error on stderr and exit code 2."""
    code, _, err = main_send(
        capsys, "--to", "http://127.0.0.1:9/", "-f", "query=q", "--timeout", "2"
    )
    assert code == 2
    assert "could not reach" in err


def test_cli_bad_field_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --field is reported like any argument error (exit code 2)."""
    code, _, err = main_send(capsys, "--to", URL, "--field", "nopath")
    assert code == 2
    assert "expected path=value" in err


def test_cli_help_lists_the_kn_event_send_options() -> None:
    """`send --help` documents --to, --type, --id, --source, --field, --raw-field and --mode."""
    text = parser().format_help()
    for option in ("--to", "--type", "--id", "--source", "--field", "--raw-field", "--mode", "-e"):
        assert option in text


def test_module_help_and_unknown_command() -> None:
    """`python -m eventfn --help` explains the commands; an unknown one exits 2."""
    assert main(["--help"]) == 0
    assert main(["bogus"]) == 2


@pytest.mark.parametrize(
    "argv",
    [("-e", "Upper=x"), ("-e", "data=x"), ("--source", ""), ("--type", "")],
    ids=["uppercase-extension", "reserved-data", "empty-source", "empty-type"],
)
def test_illegal_attribute_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """The SDK's validation errors become argparse errors (exit code 2, one line on stderr)."""
    code, _, err = main_send(capsys, "--to", URL, "-f", "query=q", *argv)
    assert code == 2
    assert "Traceback" not in err
    assert "error:" in err
