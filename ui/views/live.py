"""Live: the events the function handles as they come, and how fast and how well it handles them.

Both halves read what background threads of the UI process keep (`ui.shared.feed` and
`ui.shared.sampler`), so drawing the page never waits on the WebSocket or on `/metrics`; each
half redraws itself every two seconds as a fragment, without rerunning the page.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from ui import metrics
from ui.client import Problem
from ui.shared import backend, feed, sampler, show_problem, types

st.title("Live")
current = backend()
try:
    listed = types(current.url, current.api_key, current.token)["types"]
except Problem as problem:
    show_problem(problem)
    st.stop()

# Outcomes of the feed's events: it carries what was handled (the request) and what the function
# answered or published (the reply); refusals and failures never reach it and are counted in the
# events/s chart below.
REQUEST, REPLY = "handled", "replied / published"
consumed = [t["type"] for t in listed]
every_type = [*consumed, *sorted({t["reply"] for t in listed if t["reply"]} - set(consumed))]

left, right = st.columns(2)
with left:
    wanted = st.multiselect("Types", every_type, placeholder="every type", key="live_types")
with right:
    outcomes = st.multiselect("Outcome", [REQUEST, REPLY], placeholder="any", key="live_outcomes")


def rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in events:
        event = item["event"]
        outcome = REQUEST if event.get("type") in consumed else REPLY
        if wanted and event.get("type") not in wanted:
            continue
        if outcomes and outcome not in outcomes:
            continue
        found.append(
            {
                "received": datetime.fromtimestamp(item["received"], UTC).strftime("%H:%M:%S"),
                "outcome": outcome,
                "type": event.get("type"),
                "id": event.get("id"),
                "source": event.get("source"),
                "data": event.get("data", event.get("data_base64")),
            }
        )
    return found


@st.fragment(run_every="2s")
def event_feed() -> None:
    listener = feed(current.url, current.api_key, current.token)
    events = listener.recent()
    shown = rows(events)
    st.caption(f"Event feed: {listener.status} · {len(shown)} of the last {len(events)}")
    if shown:
        st.dataframe(pd.DataFrame(shown), hide_index=True, width="stretch", height=300)
    else:
        st.write("No events yet.")


WINDOW_SECONDS = 300


@st.fragment(run_every="2s")
def charts() -> None:
    thread = sampler(current.url, current.api_key, current.token)
    if thread.error:
        st.warning(f"/metrics: {thread.error}")
    now = time.time()
    samples = [
        s
        for s in thread.samples([t for t in wanted if t in consumed])
        if s.at >= now - WINDOW_SECONDS
    ]
    table = pd.DataFrame(metrics.series(samples))
    if table.empty:
        st.caption("Charts start after two scrapes of /metrics (every 2 s).")
        return
    table["at"] = pd.to_datetime(table["at"], unit="s")
    table = table.set_index("at")
    latency = table[["p50 ms", "p99 ms"]]
    rates = table.drop(columns=["p50 ms", "p99 ms"]).fillna(0.0)
    first, second = st.columns(2)
    with first:
        st.markdown("**Events/s by outcome** (ingress, last 5 minutes)")
        st.line_chart(rates, height=220)
    with second:
        st.markdown("**Handler latency, ms** (p50, p99)")
        st.line_chart(latency, height=220)


st.subheader("Feed")
event_feed()
st.subheader("Rates and latency")
charts()
