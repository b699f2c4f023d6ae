"""A Knative Broker in a test: Triggers, filters, retries, replies, dead letters, in process.

`eventfn.testing.LocalBroker` (re-exported there) delivers an event the way the MT channel-based
Broker does (knative/eventing `pkg/broker`, `pkg/kncloudevents`):

- every Trigger whose filter passes gets the event, in binary mode with `Prefer: reply`, at its
  subscriber: an ASGI app in process (httpx's ASGITransport) or a URL;
- a failed attempt is retried `delivery.retry` times when Knative retries it (no response, a
  timeout, 5xx, 404, 408, 409, 429; never another 4xx), the n-th retry after the Trigger's
  backoff (`Delivery.backoff`), slept with the injected `sleep` so tests do not wait;
- a 2xx whose body is not a CloudEvent counts as a 502 (the Broker's filter answers so);
- a reply event goes back into the Broker, its `knativebrokerttl` one lower at every pass:
  at 0 it is dropped, which ends reply loops;
- an event that exhausted its attempts goes to the Trigger's dead-letter sink with
  `knativeerrordest` (the subscriber's URL), `knativeerrorcode` (the last status, 500 for no
  response) and `knativeerrordata` (the last response body, base64, at most 1024 characters).

Deliveries to the Triggers an event matches run one after the other, in Trigger-name order, so
a test sees the same order every run (the Broker sends them concurrently).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from eventfn import binding
from eventfn.core.errors import FunctionError
from eventfn.routing import cesql
from eventfn.routing.filters import trigger_filter
from eventfn.routing.triggers import Delivery, Destination, Trigger, load_triggers, triggers_in

if TYPE_CHECKING:
    from eventfn.core.http import ASGIApp
    from eventfn.dispatch.catalogue import Catalogue

TTL = "knativebrokerttl"
DEFAULT_TTL = 255  # what the Broker's ingress sets on an event that has none
RETRIED = frozenset({404, 408, 409, 429})
ERROR_DATA_MAX = 1024

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Attempt:
    """One HTTP attempt: its status (None when no response came) and what went wrong."""

    status: int | None
    error: str | None = None
    waited: float = 0.0  # the backoff slept before it


@dataclass(slots=True)
class Dispatch:
    """What happened to one event at one Trigger."""

    trigger: str
    event: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    dead_letter: dict[str, Any] | None = None  # the event as sent to the dead-letter sink
    dead_letter_status: int | None = None  # the sink's answer (None: no answer)

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and _ok(self.attempts[-1].status)


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _retried(status: int | None) -> bool:
    return status is None or status >= 500 or status in RETRIED


def _as_dict(event: binding.Event) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(binding.to_structured(event))
    return parsed


@dataclass(slots=True)
class _Response:
    status: int | None
    headers: httpx.Headers | None = None
    body: bytes = b""
    error: str | None = None


class LocalBroker:
    """Triggers and their subscribers; `await send(event)` delivers it as the Broker would.

    `subscribers` maps a subscriber's `ref` name (a Service's name) or its `uri` to an ASGI app
    or a base URL; `app` takes every `ref` the mapping does not name. `transport` is the HTTP
    transport of URL subscribers (an `httpx.MockTransport` in tests).
    """

    def __init__(
        self,
        triggers: Sequence[Trigger],
        *,
        app: ASGIApp | None = None,
        subscribers: Mapping[str, ASGIApp | str] | None = None,
        broker: str = "default",
        ttl: int = DEFAULT_TTL,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.triggers = [t for t in triggers if t.broker == broker]
        self.deliveries: list[Dispatch] = []
        self.dropped: list[tuple[dict[str, Any], str]] = []  # (event, why)
        self.slept: list[float] = []
        self._app = app
        self._subscribers = dict(subscribers or {})
        self._ttl = ttl
        self._sleep = sleep
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._http = httpx.AsyncClient(transport=transport)

    @classmethod
    def from_eventing(cls, directory: Path | str = "eventing", **options: Any) -> LocalBroker:
        """The Broker of the Triggers rendered under `directory` (`make manifests`)."""
        return cls(load_triggers(Path(directory)), **options)

    @classmethod
    def from_catalogue(
        cls,
        catalogue: Catalogue,
        *,
        delivery: Mapping[str, Any] | None = None,
        subscriber: str = "function",
        **options: Any,
    ) -> LocalBroker:
        """The Broker of a catalogue's Triggers (one per route, or one per consumed type), all
        delivering to `subscriber` (by default `app`) with `delivery` (Trigger YAML spelling);
        without it, a type's own `EventSpec.delivery`, else no retries and no dead-letter sink."""
        docs = []
        for spec in catalogue.consumed:
            policy = delivery
            if policy is None and spec.delivery is not None:
                policy = {
                    "retry": spec.delivery.retry,
                    "backoffPolicy": "exponential",
                    "backoffDelay": spec.delivery.iso_backoff_delay,
                }
            for route in spec.routes or (None,):
                name = spec.slug if route is None else f"{spec.slug}-{route.name}"
                docs.append(
                    {
                        "apiVersion": "eventing.knative.dev/v1",
                        "kind": "Trigger",
                        "metadata": {"name": name},
                        "spec": {
                            "broker": options.get("broker", "default"),
                            **trigger_filter(spec.type, route),
                            "subscriber": {"ref": {"kind": "Service", "name": subscriber}},
                            "delivery": dict(policy or {}),
                        },
                    }
                )
        return cls(triggers_in(docs), **options)

    async def __aenter__(self) -> LocalBroker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        await self._http.aclose()

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        """Every event sent to a dead-letter sink, with its `knativeerror*` extensions."""
        return [d.dead_letter for d in self.deliveries if d.dead_letter is not None]

    async def send(self, event: Mapping[str, Any]) -> list[Dispatch]:
        """Post `event` (JSON format, as a dict) to the Broker; every delivery it caused, replies'
        included, once all are done."""
        done: list[Dispatch] = []
        queue = [binding.event_from_json(dict(event))]
        while queue:
            current = queue.pop(0)
            ttl = self._ingress(current)
            if ttl is None:
                continue
            attributes = cesql.attributes_of(current.attributes)
            for trigger in self.triggers:
                if not trigger.check(attributes).match:
                    continue
                record, reply = await self._deliver(trigger, current)
                done.append(record)
                if reply is not None:
                    reply.attributes[TTL] = ttl
                    queue.append(reply)
        self.deliveries.extend(done)
        return done

    def _ingress(self, event: binding.Event) -> int | None:
        """The event's TTL as the Broker's ingress leaves it (None: dropped, hop limit reached)."""
        raw = event.attributes.pop(TTL, None)
        try:
            ttl = self._ttl if raw is None else max(int(raw) - 1, 0)
        except ValueError:
            ttl = self._ttl
        if ttl <= 0:
            self.dropped.append((_as_dict(event), f"{TTL} reached 0: too many hops"))
            return None
        return ttl

    async def _deliver(
        self, trigger: Trigger, event: binding.Event
    ) -> tuple[Dispatch, binding.Event | None]:
        record = Dispatch(trigger.name, _as_dict(event))
        delivery = trigger.delivery
        url, client = self._target(trigger.subscriber, trigger.name)
        headers, body = binding.to_binary(event)
        response = _Response(None)
        for n in range(delivery.retry + 1):
            waited = self._wait(delivery, n, response) if n else 0.0
            if waited:
                self.slept.append(waited)
                await self._sleep(waited)
            response = await self._post(
                client, url, [*headers, (b"prefer", b"reply")], body, delivery
            )
            reply: binding.Event | None = None
            if _ok(response.status):
                try:
                    reply = _reply(response)
                except (FunctionError, ValueError) as e:
                    response = _Response(502, response.headers, response.body, f"bad reply: {e}")
            record.attempts.append(Attempt(response.status, response.error, waited))
            if _ok(response.status):
                record.reply = None if reply is None else _as_dict(reply)
                return record, reply
            if not _retried(response.status):
                break
        await self._dead_letter(record, trigger, event, url, response)
        return record, None

    @staticmethod
    def _wait(delivery: Delivery, retry: int, last: _Response) -> float:
        wait = delivery.backoff(retry)
        if delivery.retry_after_max is not None and last.status in (429, 503) and last.headers:
            with contextlib.suppress(ValueError):
                asked = float(last.headers.get("retry-after", ""))
                wait = max(wait, min(asked, delivery.retry_after_max))
        return wait

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        delivery: Delivery,
    ) -> _Response:
        try:
            async with asyncio.timeout(delivery.timeout):
                answer = await client.post(url, headers=headers, content=body)
        except (TimeoutError, httpx.TimeoutException) as e:
            return _Response(None, error=f"timeout: {e!r}")
        except httpx.TransportError as e:
            return _Response(None, error=f"no response: {e!r}")
        return _Response(answer.status_code, answer.headers, answer.content)

    async def _dead_letter(
        self, record: Dispatch, trigger: Trigger, event: binding.Event, url: str, last: _Response
    ) -> None:
        sink = trigger.delivery.dead_letter_sink
        if sink is None:
            self.dropped.append((_as_dict(event), f"{trigger.name}: failed, no dead-letter sink"))
            return
        body = last.body if last.status is not None else f"dispatch error: {last.error}".encode()
        failed = binding.Event(
            {
                **event.attributes,
                "knativeerrordest": url,
                "knativeerrorcode": last.status if last.status is not None else 500,
                "knativeerrordata": base64.b64encode(body).decode("ascii")[:ERROR_DATA_MAX],
            },
            event.data,
            event.json_data,
        )
        sink_url, client = self._target(sink, trigger.name)
        headers, payload = binding.to_binary(failed)
        answer = await self._post(client, sink_url, headers, payload, trigger.delivery)
        record.dead_letter, record.dead_letter_status = _as_dict(failed), answer.status

    def _target(self, destination: Destination, trigger: str) -> tuple[str, httpx.AsyncClient]:
        """The URL to post to and the client that reaches it."""
        name, uri = destination.name, destination.uri
        target: ASGIApp | str | None = None
        if name is not None:
            target = self._subscribers.get(name, self._app)
        elif uri is not None:
            target = self._subscribers.get(uri, uri)
        if target is None:
            raise LookupError(
                f"Trigger {trigger}: no subscriber for {name or uri!r} "
                "(give LocalBroker app= or subscribers={name: app or URL})"
            )
        path = uri if name is not None and uri else ""
        if isinstance(target, str):
            return target.rstrip("/") + path if path else target, self._http
        client = self._clients.get(id(target))
        if client is None:
            base = f"http://{name or 'subscriber'}"
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=target), base_url=base)
            self._clients[id(target)] = client
        return f"{client.base_url}".rstrip("/") + (path or "/"), client


def _reply(response: _Response) -> binding.Event | None:
    """The reply event in a 2xx response, None for an empty body (MalformedEvent: not an event)."""
    headers = response.headers or httpx.Headers()
    if not response.body and "ce-specversion" not in headers:
        return None
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.multi_items()]
    events = binding.decode(raw, response.body).events
    if len(events) != 1:
        raise ValueError("a reply must be one event")
    return events[0]
