"""GET /metrics counts what the function did, in Prometheus text format, per app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import prometheus_client
import pytest
import respx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from eventfn.binding import Event
from eventfn.dispatch.registry import Progress, Registry
from eventfn.observability import tracing
from eventfn.observability.metrics import OTHER, Metrics
from eventfn.testing import app_client
from tests.functions import ASK, ASK_CATALOGUE, Answer, Question, registry_with
from tests.helpers.live import answer, function_socket, receive, send, socket
from tests.helpers.support import (
    BATCH,
    QUERY,
    RESPONSE,
    binary_headers,
    cloud_event,
    dumps,
    event_json,
    make_app,
    query,
    running_server,
    suite_client,
    suite_settings,
    until,
)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and sorted labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def events(samples: dict[Any, float], type_: str, mode: str, outcome: str) -> float:
    key = ("function_events_total", (("mode", mode), ("outcome", outcome), ("type", type_)))
    return samples.get(key, 0.0)


async def post_query(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await client.post("/", headers=binary_headers(**headers), content=dumps(query()))


def blocking_registry(release: asyncio.Event, started: asyncio.Event) -> Registry:
    """A registry whose query handler waits for `release`."""
    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def handle(request: Question) -> Answer:
        started.set()
        await release.wait()
        return Answer(result={"message": request.query})

    return registry


def failing_registry() -> Registry:
    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def handle(request: Question) -> Answer:
        raise RuntimeError("boom")

    return registry


async def test_metrics_is_prometheus_text() -> None:
    """/metrics answers 200 in the Prometheus text exposition format."""
    async with suite_client() as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert {
        "function_events",
        "function_handler_duration_seconds",
        "function_replies",
        "function_requests_in_flight",
        "function_dedupe_hits",
        "function_dedupe_conflicts",
        "function_publish_attempts",
        "function_publish_failures",
        "function_outbox_depth",
        "function_dead_letters_stored",
        "function_websocket_connections",
        "function_feed_events_dropped",
        "function_feed_subscribers_dropped",
        "function_websocket_progress_dropped",
        "function_dedupe_window_seconds",
        "function_dedupe_evicted_early",
    } <= names


async def test_handled_event_counts_ok_reply_and_duration() -> None:
    """A handled event counts as ok, its reply as sent, and its handler time is observed."""
    async with suite_client() as client:
        assert (await post_query(client)).status_code == 200
        samples = await scrape(client)
    assert events(samples, QUERY, "binary", "ok") == 1
    assert samples[("function_replies_total", (("type", RESPONSE),))] == 1
    count = ("function_handler_duration_seconds_count", (("type", QUERY),))
    assert samples[count] == 1


async def test_redelivery_counts_duplicate_and_dedupe_hit() -> None:
    """A redelivered event counts as a duplicate and a dedupe hit; its replay as a reply."""
    async with suite_client() as client:
        await post_query(client, id="same")
        assert (await post_query(client, id="same")).status_code == 200
        samples = await scrape(client)
    assert events(samples, QUERY, "binary", "ok") == 1
    assert events(samples, QUERY, "binary", "duplicate") == 1
    assert samples[("function_dedupe_hits_total", ())] == 1
    assert samples[("function_replies_total", (("type", RESPONSE),))] == 2


async def test_malformed_request_counts_rejected_with_unknown_labels() -> None:
    """A request that is not a CloudEvent counts as rejected, type other, mode unknown."""
    async with suite_client() as client:
        response = await client.post("/", content=b"{}", headers={"content-type": "text/plain"})
        assert response.status_code == 400
        samples = await scrape(client)
    assert events(samples, OTHER, "unknown", "rejected") == 1


async def test_unknown_types_fold_into_other() -> None:
    """Event types outside the catalogue share one label value: cardinality stays bounded."""
    async with suite_client() as client:
        for n in range(5):
            assert (await post_query(client, type=f"com.example.unknown{n}")).status_code == 400
        samples = await scrape(client)
    assert events(samples, OTHER, "binary", "rejected") == 5
    assert not any("unknown0" in str(key) for key in samples)


async def test_schema_violation_counts_rejected_for_its_type() -> None:
    """An event of a known type with bad data counts as rejected under its own type."""
    async with suite_client() as client:
        bad = await client.post("/", headers=binary_headers(), content=dumps({"nope": 1}))
        assert bad.status_code == 400
        samples = await scrape(client)
    assert events(samples, QUERY, "binary", "rejected") == 1


async def test_batch_counts_every_event_in_batch_mode() -> None:
    """Each event of a batch is counted, with mode batch."""
    body = dumps([event_json(query()), event_json(query())])
    async with suite_client() as client:
        response = await client.post("/", content=body, headers={"content-type": BATCH})
        assert response.status_code == 200
        samples = await scrape(client)
    assert events(samples, QUERY, "batch", "ok") == 2


async def test_handler_failure_counts_failed_and_its_duration() -> None:
    """A handler that raises counts as failed (5xx); its run time is still observed."""
    app = make_app(suite_settings(), registry=failing_registry())
    async with app_client(app) as client:
        assert (await post_query(client)).status_code == 500
        samples = await scrape(client)
    assert events(samples, QUERY, "binary", "failed") == 1
    assert samples[("function_handler_duration_seconds_count", (("type", QUERY),))] == 1


async def test_in_progress_redelivery_counts_conflict_and_in_flight() -> None:
    """While an event is handled, in-flight is 1 and its redelivery counts as a conflict."""
    release, started = asyncio.Event(), asyncio.Event()
    app = make_app(suite_settings(), registry=blocking_registry(release, started))
    async with app_client(app) as client:
        first = asyncio.create_task(post_query(client, id="slow"))
        await asyncio.wait_for(started.wait(), 5)
        assert (await post_query(client, id="slow")).status_code == 409
        during = await scrape(client)
        release.set()
        assert (await first).status_code == 200
        after = await scrape(client)
    assert during[("function_requests_in_flight", ())] == 1
    assert after[("function_requests_in_flight", ())] == 0
    assert events(after, QUERY, "binary", "conflict") == 1
    assert after[("function_dedupe_conflicts_total", ())] == 1


async def test_apps_count_separately_and_leave_the_global_registry_alone() -> None:
    """Two apps in one process have their own counters; the global registry gets nothing."""
    before = {m.name for m in prometheus_client.REGISTRY.collect()}
    async with suite_client() as one, suite_client() as two:
        await post_query(one)
        first, second = await scrape(one), await scrape(two)
    assert events(first, QUERY, "binary", "ok") == 1
    assert events(second, QUERY, "binary", "ok") == 0
    assert {m.name for m in prometheus_client.REGISTRY.collect()} == before


async def test_metrics_accepts_get_only() -> None:
    """POST /metrics is a 405 problem naming GET."""
    async with suite_client() as client:
        response = await client.post("/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.headers["content-type"] == "application/problem+json"


def test_component_calls_show_in_the_exposition() -> None:
    """Publisher, outbox, dead-letter and WebSocket numbers land in their metrics."""
    metrics = Metrics([QUERY, RESPONSE])
    metrics.published(ok=True)
    metrics.published(ok=False)
    metrics.outbox_depth = 3
    metrics.dead_letter_stored()
    metrics.websocket_connections = 1
    text = metrics.render().decode()
    assert "function_publish_attempts_total 2.0" in text
    assert "function_publish_failures_total 1.0" in text
    assert "function_outbox_depth 3.0" in text
    assert "function_dead_letters_stored_total 1.0" in text
    assert "function_websocket_connections 1.0" in text


def test_histogram_buckets_are_cumulative() -> None:
    """Each duration lands in its bucket and in every larger one, +Inf included."""
    metrics = Metrics([QUERY])
    metrics.handled(QUERY, 0.003)
    metrics.handled(QUERY, 100.0)
    text = metrics.render().decode()
    assert f'function_handler_duration_seconds_bucket{{le="0.0025",type="{QUERY}"}} 0.0' in text
    assert f'function_handler_duration_seconds_bucket{{le="0.005",type="{QUERY}"}} 1.0' in text
    assert f'function_handler_duration_seconds_bucket{{le="30.0",type="{QUERY}"}} 1.0' in text
    assert f'function_handler_duration_seconds_bucket{{le="+Inf",type="{QUERY}"}} 2.0' in text
    assert f'function_handler_duration_seconds_sum{{type="{QUERY}"}} 100.003' in text


async def test_outbox_depth_is_read_at_scrape_time(tmp_path: Path) -> None:
    """With K_SINK set, the outbox depth gauge shows the events parked in the outbox."""
    settings = suite_settings(k_sink="http://127.0.0.1:9/", data_dir=tmp_path)
    app = make_app(settings)
    async with app_client(app) as client:
        publisher = app.state.runtime.publisher
        event = Event({"specversion": "1.0", "id": "x", "source": "/t", "type": RESPONSE}, b"{}")
        await publisher.outbox.park(event, attempts=1, delay=3600, error="test")
        samples = await scrape(client)
    assert samples[("function_outbox_depth", ())] == 1


async def test_the_dedupe_window_shows_how_far_back_redeliveries_are_recognised() -> None:
    """The TTL while the store holds it; shorter, and the early evictions counted, once the
    in-memory store's memory bound drops replies before their time."""
    settings = suite_settings(dedupe_ttl_seconds=420, dedupe_max_bytes=4096)
    async with app_client(make_app(settings)) as client:
        assert (await scrape(client))[("function_dedupe_window_seconds", ())] == 420
        for _ in range(30):
            assert (await post_query(client)).status_code == 200
        samples = await scrape(client)
    assert samples[("function_dedupe_evicted_early_total", ())] > 0
    assert samples[("function_dedupe_window_seconds", ())] < 420


@pytest.mark.server
async def test_open_websockets_are_counted() -> None:
    """An open WebSocket shows in function_websocket_connections of a real server."""
    with running_server() as server:
        ws_url = server.url.replace("http://", "ws://") + "/api/v1/ws"
        async with websockets.connect(ws_url), httpx.AsyncClient(base_url=server.url) as client:
            samples = await scrape(client)
    assert samples[("function_websocket_connections", ())] == 1


async def test_stored_dead_letters_are_counted(tmp_path: Path) -> None:
    """Each event the broker dead-letters to POST /deadletter counts once."""
    async with suite_client(data_dir=tmp_path) as client:
        response = await client.post(
            "/deadletter", headers=binary_headers(), content=dumps(query())
        )
        assert response.status_code < 300
        samples = await scrape(client)
    assert samples[("function_dead_letters_stored_total", ())] == 1


async def test_publisher_attempts_are_counted_and_carry_the_trace(tmp_path: Path) -> None:
    """Each delivery attempt to K_SINK counts (failures too) and carries the current trace."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    settings = suite_settings(k_sink="http://sink.test/", data_dir=tmp_path, publish_attempts=1)
    app = make_app(settings)
    event = Event({"specversion": "1.0", "id": "p", "source": "/t", "type": RESPONSE}, b"{}")
    with respx.mock(assert_all_called=True) as sink:
        route = sink.post("http://sink.test/").mock(
            side_effect=[httpx.Response(202), httpx.Response(400)]
        )
        async with app_client(app) as client:
            publisher = app.state.runtime.publisher
            with tracing.bound(tracing.parse(traceparent)):
                assert await publisher.publish(event) == "delivered"
            assert await publisher.publish(event) == "rejected"
            samples = await scrape(client)
    assert route.calls[0].request.headers["traceparent"] == traceparent
    assert "traceparent" not in route.calls[1].request.headers
    assert samples[("function_publish_attempts_total", ())] == 2
    assert samples[("function_publish_failures_total", ())] == 1


def feed_event(n: int) -> Event:
    return cloud_event(id=f"f{n}", type=QUERY)


async def test_events_the_feed_pump_could_not_take_are_counted() -> None:
    """Events offered to a full feed queue count in function_feed_events_dropped_total."""
    app = make_app(suite_settings(feed_queue_size=1))
    async with app_client(app) as client:
        feed = app.state.runtime.feed
        feed.subscribe()
        for n in range(5):  # synchronous, as on the ingress: the pump cannot run in between
            feed.offer(feed_event(n))
        samples = await scrape(client)
    assert samples[("function_feed_events_dropped_total", ())] == 4


async def test_slow_feed_subscribers_cut_off_are_counted() -> None:
    """A subscriber whose queue overflows counts in function_feed_subscribers_dropped_total."""
    app = make_app(suite_settings(feed_subscriber_queue=1))
    async with app_client(app) as client:
        feed = app.state.runtime.feed
        before = await scrape(client)
        slow = feed.subscribe()  # never read: the second event overflows its queue
        feed.offer(feed_event(1))
        feed.offer(feed_event(2))
        await until(lambda: not feed.subscribers)  # the pump cuts it off on its next pass
        after = await scrape(client)
    assert slow.dropped
    assert before[("function_feed_subscribers_dropped_total", ())] == 0
    assert after[("function_feed_subscribers_dropped_total", ())] == 1
    assert after[("function_feed_events_dropped_total", ())] == 0


@pytest.mark.server
async def test_websocket_progress_not_delivered_is_counted() -> None:
    """Progress that overflows a socket's queue counts; delivered plus dropped is all of it."""
    reported = 300

    async def chatty(request: Question, progress: Progress) -> Answer:
        for n in range(reported):  # no await: the socket's writer cannot keep up
            progress(n)
        return answer(request)

    async with function_socket(registry_with(chatty)) as (_, address):
        async with socket(address) as ws:
            await send(ws, {"id": "q", "query": "chatty"})
            delivered = 0
            while (message := await receive(ws))["type"] == "progress":
                delivered += 1
            assert message["type"] == "result"
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            samples = await scrape(client)
    dropped = samples[("function_websocket_progress_dropped_total", ())]
    assert dropped > 0
    assert delivered + dropped == reported
