"""Load a deployed function with Locust: binary and structured events, and the sync facade.

Locust is not a dependency of the project: `make locust` installs a pinned Locust into
.tools/locust, and `make loadtest` runs this file headless and bounded against a local
`python -m eventfn` (see loadtest/run.py). Against a deployed function, the same runner:

    python -m loadtest.run --host https://my-function.example.com --run-time 1m --users 50

The events are of the function's default type, with the first example of its schema: this file
runs on Locust's interpreter, which cannot import the function, so loadtest/run.py reads them
off `FUNCTION_REGISTRY` (bench/target.py) and hands them over as BENCH_TYPE, BENCH_BODY and
BENCH_FACADE_PATH. To run Locust by hand, take them from `python -m loadtest.run --print-env`:

    eval "$(python -m loadtest.run --print-env)"
    .tools/locust/bin/locust -f loadtest/locustfile.py --host http://localhost:8080

Every event has a unique `ce-id`, so the dedupe store never short-circuits the handler. With
facade auth on, set `API_KEY` in the environment (sent as `X-API-Key`). `EVENT_SOURCE` names
the events' source (default `/loadtest`).
"""

from __future__ import annotations

import json
import os
import uuid

from locust import FastHttpUser, between, task  # type: ignore[import-not-found]


def _given(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(
            f"{name} is not set: run through `python -m loadtest.run`, or "
            'eval "$(python -m loadtest.run --print-env)" first'
        )
    return value


EVENT_TYPE = _given("BENCH_TYPE")
BODY = _given("BENCH_BODY")
DATA = json.loads(BODY)
FACADE_PATH = _given("BENCH_FACADE_PATH")
SOURCE = os.environ.get("EVENT_SOURCE", "/loadtest")
API_KEY = os.environ.get("API_KEY")


class FunctionUser(FastHttpUser):  # type: ignore[misc]
    """One broker-like sender: mostly binary mode, some structured, some facade calls."""

    wait_time = between(0.0, 0.05)

    @task(6)
    def binary_event(self) -> None:
        """POST / in binary mode: attributes in ce- headers, the data as the body."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": SOURCE,
            "ce-type": EVENT_TYPE,
            "content-type": "application/json",
        }
        self.client.post("/", data=BODY, headers=headers, name="POST / (binary)")

    @task(3)
    def structured_event(self) -> None:
        """POST / in structured mode: the whole event as application/cloudevents+json."""
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": SOURCE,
            "type": EVENT_TYPE,
            "datacontenttype": "application/json",
            "data": DATA,
        }
        headers = {"content-type": "application/cloudevents+json"}
        self.client.post("/", data=json.dumps(event), headers=headers, name="POST / (structured)")

    @task(1)
    def facade_call(self) -> None:
        """POST the data to the type's facade route: the synchronous call the UI makes."""
        headers = {"content-type": "application/json"}
        if API_KEY:
            headers["x-api-key"] = API_KEY
        self.client.post(FACADE_PATH, data=BODY, headers=headers, name=f"POST {FACADE_PATH}")
