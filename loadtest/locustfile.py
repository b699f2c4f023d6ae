"""Load a deployed function with Locust: binary and structured events, and the sync facade.

Locust is not a dependency of the project: `make locust` installs a pinned Locust into
.tools/locust, and `make loadtest` runs this file headless and bounded against a local
`python -m eventfn` (see loadtest/run.py). Against a deployed function:

    .tools/locust/bin/locust -f loadtest/locustfile.py --host https://my-function.example.com
    .tools/locust/bin/locust -f loadtest/locustfile.py --host http://localhost:8080 \\
        --headless --users 50 --spawn-rate 10 --run-time 1m

Every event has a unique `ce-id`, so the dedupe store never short-circuits the handler. With
facade auth on, set `API_KEY` in the environment (sent as `X-API-Key`). `EVENT_SOURCE` names
the events' source (default `/loadtest`).
"""

from __future__ import annotations

import json
import os
import uuid

from locust import FastHttpUser, between, task  # type: ignore[import-not-found]

QUERY = "com.example.query.request"
SOURCE = os.environ.get("EVENT_SOURCE", "/loadtest")
API_KEY = os.environ.get("API_KEY")
BODY = json.dumps({"query": "What is Knative?"})


class FunctionUser(FastHttpUser):  # type: ignore[misc]
    """One broker-like sender: mostly binary mode, some structured, some facade queries."""

    wait_time = between(0.0, 0.05)

    @task(6)
    def binary_event(self) -> None:
        """POST / in binary mode: attributes in ce- headers, the data as the body."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": SOURCE,
            "ce-type": QUERY,
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
            "type": QUERY,
            "datacontenttype": "application/json",
            "data": {"query": "What is Knative?"},
        }
        headers = {"content-type": "application/cloudevents+json"}
        self.client.post("/", data=json.dumps(event), headers=headers, name="POST / (structured)")

    @task(1)
    def facade_query(self) -> None:
        """POST /api/v1/query: the synchronous facade the Streamlit UI uses."""
        headers = {"content-type": "application/json"}
        if API_KEY:
            headers["x-api-key"] = API_KEY
        self.client.post("/api/v1/query", data=BODY, headers=headers, name="POST /api/v1/query")
