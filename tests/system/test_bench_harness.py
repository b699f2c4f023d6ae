"""The benchmark's pieces work, in-process and untimed (`make bench` is not run by tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from bench import apps, bare, cpus, instructions, report, run
from bench.target import BenchEvent, NoBenchEvent, bench_event
from eventfn import Catalogue, EventSpec, Registry
from eventfn.binding import decode
from tests.helpers.sink import serve_posts
from tests.helpers.support import (
    binary_headers,
    free_port,
    running_server,
    shipped_function,
    suite_settings,
)


def shipped_event() -> BenchEvent:
    """The event `make bench` sends the function as it ships: its default type, with that
    type's example (skips when the function gives none)."""
    return bench_event(shipped_function("the bench"))


class Parcel(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"sku": "A-1", "count": 2}]})

    sku: str
    count: int


class Labelled(BaseModel):
    sku: str = Field(examples=["B-2"])
    label: str = Field(examples=["fragile"])


class Unexampled(BaseModel):
    sku: str


SHIPPED = EventSpec("org.bench.parcel.shipped", Labelled, "A reply with field examples.")
PARCEL = EventSpec("org.bench.parcel", Parcel, "A parcel.", consumes=True, reply=SHIPPED)
# Registries by import string, as FUNCTION_REGISTRY names one.
PARCELS = Registry(Catalogue((PARCEL,)))
LABELLED = Registry(Catalogue((EventSpec("org.bench.labelled", Labelled, "", consumes=True),)))
UNEXAMPLED = Registry(Catalogue((EventSpec("org.bench.bare", Unexampled, "", consumes=True),)))
INVALID = Registry(
    Catalogue((EventSpec("org.bench.invalid", Labelled, "", consumes=True, name="x"),))
)


def test_the_bench_sends_the_default_type_with_its_models_example() -> None:
    """The event is the catalogue's default consumed type, its body the model's first example;
    the stand-ins' reply is the reply type with that type's example (from its fields here)."""
    event = bench_event(f"{__name__}:PARCELS")
    assert event.type == "org.bench.parcel"
    assert json.loads(event.body) == {"sku": "A-1", "count": 2}
    assert event.facade_path == PARCEL.facade_path
    assert event.reply_type == "org.bench.parcel.shipped"
    assert json.loads(event.reply_body) == {"sku": "B-2", "label": "fragile"}


def test_a_type_without_a_reply_is_answered_without_a_body() -> None:
    """A consumed type without a reply: an event built from its fields' examples, no reply."""
    event = bench_event(f"{__name__}:LABELLED")
    assert json.loads(event.body) == {"sku": "B-2", "label": "fragile"}
    assert (event.reply_type, event.reply_body) == (None, b"")


def test_a_default_type_without_an_example_is_an_error_naming_it() -> None:
    """Nothing to send: the error names the type and how to give it an example."""
    with pytest.raises(NoBenchEvent, match=r"org\.bench\.bare .* declares no example"):
        bench_event(f"{__name__}:UNEXAMPLED")


def test_the_example_sent_is_one_its_model_accepts() -> None:
    """An example the model rejects is not sent: the error says which type's it is."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Labelled, "model_json_schema", lambda **_: {"examples": [{"sku": 1}]})
        with pytest.raises(NoBenchEvent, match=r"example of org\.bench\.invalid is not valid"):
            bench_event(f"{__name__}:INVALID")


async def test_bare_asgi_answers_202_for_a_type_without_a_reply() -> None:
    """Bare ASGI answers as the function does a type without a reply: 202, no body."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bare, "_REPLY", [])
        patch.setenv("BENCH_REPLY_TYPE", "")
        async with asgi_client(bare.app) as client:
            response = await client.post("/", content=b"{}")
    assert (response.status_code, response.content) == (202, b"")


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")


def reply_of(response: httpx.Response) -> Any:
    """The response decoded by the function's own strict binding."""
    headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
    return decode(headers, response.content).events[0]


async def test_bare_app_answers_a_valid_binary_mode_reply() -> None:
    """The bare ASGI app answers 200 with a reply that is a valid binary-mode CloudEvent."""
    event = shipped_event()
    if event.reply_type is None:
        pytest.skip(f"{event.type} has no reply type: bare ASGI answers 202 like the function")
    async with asgi_client(bare.app) as client:
        headers = binary_headers(type=event.type)
        response = await client.post("/", headers=headers, content=event.body)
    assert response.status_code == 200
    assert reply_of(response).type == event.reply_type
    assert response.content == event.reply_body


async def test_tutorial_receiver_parses_with_the_sdk_and_replies() -> None:
    """The tutorial receiver reads the event with the cloudevents SDK and answers in binary mode."""
    event = shipped_event()
    if event.reply_type is None:
        pytest.skip(f"{event.type} has no reply type: the receiver answers 202 like the function")
    async with asgi_client(apps.tutorial) as client:
        headers = binary_headers(type=event.type)
        response = await client.post("/", headers=headers, content=event.body)
    assert response.status_code == 200
    assert reply_of(response).type == event.reply_type
    assert response.json() == json.loads(event.reply_body)


async def test_hello_world_answers() -> None:
    """FastAPI's hello world answers GET / with its greeting."""
    async with asgi_client(apps.hello) as client:
        response = await client.get("/")
    assert response.json() == {"message": "Hello World"}


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but wrk is not installed (`make wrk`)")
        pytest.skip("wrk is not installed: `make wrk` installs it")
    return found


def test_wrk_sends_unique_ids_of_the_consumed_type_and_the_token_it_is_given() -> None:
    """What wrk sends with the bench's script, as a listener receives it: the event `make bench`
    describes, a fresh ce-id per request, and the same Bearer token on every one."""
    event = shipped_event()
    received: list[tuple[dict[str, str], bytes]] = []

    def answer(headers: dict[str, str], body: bytes) -> int:
        received.append((headers, body))
        return 202

    port = free_port()
    listener = serve_posts(port, answer)
    try:
        run.wrk(wrk_binary(), port, 1, 2, 1, token="t0ken.of.bench")
    finally:
        listener.shutdown()
        listener.server_close()
    assert len(received) >= 5
    ids = [headers["ce-id"] for headers, _ in received]
    assert len(set(ids)) == len(ids)
    for headers, body in received:
        assert headers["ce-type"] == event.type
        assert headers["ce-specversion"] == "1.0"
        assert headers["content-type"] == "application/json"
        assert headers["authorization"] == "Bearer t0ken.of.bench"
        assert body == event.body


def test_every_request_of_the_bench_is_an_event_the_function_answers_2xx() -> None:
    """A second of the bench's load on the real server: every answer a 2xx, no socket error."""
    binary = wrk_binary()
    # Warnings only: the test reads the server's output once it stops, and a line per event
    # would fill the pipe meanwhile.
    env = {"LOG_LEVEL": "warning", "FUNCTION_REGISTRY": shipped_event().registry}
    with running_server(env) as server:
        result = run.wrk(binary, server.port, 1, 4, 1)
    assert result["requests"] > 10  # a load, not a request or two
    assert result["non2xx"] == 0
    assert result["socket_errors"] == 0


def fake_results(function_rps: int, function_p99: float) -> dict[str, Any]:
    row = {"p50_ms": 1.0, "non2xx": 0, "socket_errors": 0, "rss_mb": 50.0, "cpu_us": 100.0}
    return {
        "bare": {**row, "rps": 10000, "p99_ms": 2.0},
        "hello": {**row, "rps": 4000, "p99_ms": 4.0, "cold_start_ms": 300.0},
        "tutorial": {**row, "rps": 2000, "p99_ms": 8.0},
        "function": {
            **row,
            "rps": function_rps,
            "p99_ms": function_p99,
            "cold_start_ms": 330.0,
            "rss_mb": 60.0,
        },
    }


def test_the_table_shows_the_user_share_of_each_servers_cpu_time() -> None:
    """CPU µs per request, and of it the interpreter's (user) time: the system's is the
    kernel's network work, which every server pays alike."""
    results = fake_results(function_rps=5000, function_p99=4.0)
    results["function"].update(cpu_us=120.0, user_us=103.2)
    rows = report.table(results, report.ratios(results)).splitlines()
    function = next(line for line in rows if line.startswith("| this function |"))
    assert function.split(" | ")[3] == "120.0 (103.2 user)"
    bare = next(line for line in rows if line.startswith("| bare"))
    assert bare.split(" | ")[3] == "100.0"  # a row measured without the split shows the total


def test_ratios_judge_each_target() -> None:
    """Ratios are taken against bare (throughput, p99) and hello (cold start, RSS)."""
    good = report.ratios(fake_results(function_rps=5000, function_p99=4.0))
    assert good["throughput"] == 0.5
    assert good["p99"] == 2.0
    assert good["cold_start"] == 1.1
    assert good["rss"] == 1.2
    assert all(good["met"].values())
    slow = report.ratios(fake_results(function_rps=3000, function_p99=7.0))
    assert not slow["met"]["throughput"]
    assert not slow["met"]["p99"]


def test_ratios_are_taken_round_by_round_when_the_rows_kept_their_rounds() -> None:
    """A machine that slows down halfway slows both servers of a round: the ratio of each round
    is what counts, not the ratio of two medians taken at different moments."""
    results = fake_results(function_rps=5000, function_p99=4.0)
    fast, slow = {"p99_ms": 2.0, "cpu_us": 50.0}, {"p99_ms": 4.0, "cpu_us": 100.0}
    results["bare"]["rounds"] = [
        {**fast, "rps": 20000},
        {**slow, "rps": 10000},
        {**slow, "rps": 10000},
    ]
    results["function"]["rounds"] = [
        {"rps": 9000, "p99_ms": 5.0, "cpu_us": 110.0},  # 0.45x of the bare round beside it
        {"rps": 4500, "p99_ms": 10.0, "cpu_us": 220.0},  # 0.45x
        {"rps": 4000, "p99_ms": 12.0, "cpu_us": 250.0},  # 0.40x
    ]
    r = report.ratios(results)
    assert r["throughput"] == 0.45  # the median round ratio; the rows' medians give 0.5
    assert r["p99"] == 2.5
    assert r["cpu_capacity"] == round(1 / 2.2, 3)
    assert report.paired(results["hello"], results["bare"], "rps") == 0.4  # no rounds: the rows


def test_table_prints_every_server_and_target() -> None:
    """The Markdown table has a row per server and a verdict per target."""
    results = fake_results(function_rps=5000, function_p99=4.0)
    text = report.table(results, report.ratios(results))
    for name in ("bare ASGI", "FastAPI hello world", "FastAPI + cloudevents SDK", "this function"):
        assert f"| {name} |" in text
    assert text.count("| met |") == 5


def test_the_table_and_the_verdicts_round_a_ratio_alike() -> None:
    """0.3149x is one figure in the row and in its verdict (both of 0.315), not 0.31x in the
    row beside 0.32x in the verdict."""
    results = fake_results(function_rps=3149, function_p99=4.0)
    text = report.table(results, report.ratios(results))
    row = next(line for line in text.splitlines() if line.startswith("| this function |"))
    verdict = next(line for line in text.splitlines() if line.startswith("| throughput"))
    assert row.split(" | ")[2] == verdict.split(" | ")[1]


async def test_instruction_counter_drives_events_the_function_answers(tmp_path: Path) -> None:
    """The in-process driver that callgrind runs gets a 200 for every event it sends."""
    settings = suite_settings(data_dir=tmp_path, function_registry=shipped_event().registry)
    assert await instructions.drive(5, settings) == instructions.WARMUP + 5


async def test_the_served_driver_sends_wire_requests_the_server_answers(tmp_path: Path) -> None:
    """`--served`: the function through the HTTP protocol `python -m eventfn` runs, and bare ASGI
    through uvicorn's, each answer a 200 to every request (bytes in, bytes out, no socket)."""
    settings = suite_settings(data_dir=tmp_path, function_registry=shipped_event().registry)
    assert await instructions.drive_server(5, settings) == instructions.WARMUP + 5
    assert await instructions.drive_server(5, bare=True) == instructions.WARMUP + 5


def test_the_counts_are_reported_against_in_memory_and_bare_asgi() -> None:
    counted = {"bare": 150_000, "memory": 300_000, "redis-oidc": 450_000}
    assert instructions.report_counts(counted, served=True).splitlines() == [
        "150000 instructions per event, bare (callgrind, through the server's HTTP layer)",
        "300000 instructions per event, memory (2.00x bare ASGI)"
        " (callgrind, through the server's HTTP layer)",
        "450000 instructions per event, redis-oidc (1.50x in-memory, 3.00x bare ASGI)"
        " (callgrind, through the server's HTTP layer)",
    ]


def test_production_rows_are_judged_against_bare_and_the_in_memory_row() -> None:
    """The deployed row (Redis + OIDC) gets its own verdicts, one of them against in-memory."""
    results = fake_results(function_rps=5000, function_p99=4.0)
    row = {"p50_ms": 1.0, "non2xx": 0, "socket_errors": 0, "rss_mb": 50.0, "cpu_us": 120.0}
    results["function-redis"] = {**row, "rps": 4600, "p99_ms": 4.0}
    results["function-oidc"] = {**row, "rps": 4500, "p99_ms": 5.0}
    r = report.ratios(results)
    assert r["function-oidc"]["throughput"] == 0.45
    assert r["function-oidc"]["vs_memory"] == 0.9
    assert r["met"]["deployed_vs_memory"]
    text = report.table(results, r)
    assert "| this function + REDIS_URL + OIDC |" in text
    assert text.count("| met |") == 9


async def test_instruction_counter_drives_redis_and_oidc_events(tmp_path: Path) -> None:
    """The driver answers 200 with Redis dedupe and a bearer token from the bench's issuer."""
    from bench import production

    with production.redis_server() as url, production.issuer() as issuer:
        settings = suite_settings(
            data_dir=tmp_path,
            function_registry=shipped_event().registry,
            redis_url=url,
            **{name.lower(): value for name, value in issuer.env().items()},
        )
        assert await instructions.drive(5, settings, issuer.token) == instructions.WARMUP + 5


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs 2 CPUs")
def test_pinned_servers_run_on_a_cpu_of_their_own() -> None:
    """`--pin`: a server under test on the last CPU, wrk and the services on the others."""
    show = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    allowed = sorted(os.sched_getaffinity(0))
    try:
        cpus.pin()
        seen = {
            role: subprocess.run(
                show, capture_output=True, text=True, check=True, preexec_fn=cpus.preexec(role)
            ).stdout.strip()
            for role in ("server", "others")
        }
    finally:
        cpus.ROLES.clear()
    assert seen == {"server": str(allowed[-1:]), "others": str(allowed[:-1])}
    assert cpus.preexec("server") is None  # not pinned: the scheduler's choice
