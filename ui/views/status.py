"""Status: what a person on call checks first, from `GET /api/v1/status` (read-only, cheap)."""

from __future__ import annotations

import streamlit as st

from ui.client import Problem
from ui.shared import backend, credentials, show_problem

st.title("Status")
current = backend()
st.caption(f"Function: `{current.url}` · this UI sends: {credentials(current)}")
try:
    status = current.status()
except Problem as problem:
    show_problem(problem)
    st.stop()

readiness = status["readiness"]
if readiness["ready"]:
    st.success(f"**Ready** · {readiness['reason']}")
else:
    st.error(f"**Not ready: {readiness['status']}** · {readiness['reason']}")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


outbox, dedupe, redis, auth = status["outbox"], status["dedupe"], status["redis"], status["auth"]
cells = st.columns(4)
depth = outbox["depth"]
cells[0].metric(
    "Outbox depth",
    "?" if depth is None else depth,
    border=True,
    help="Events waiting for K_SINK (in the outbox until the sink takes them).",
)
cells[1].metric(
    "Oldest waiting",
    age(outbox["oldest_age_seconds"]),
    border=True,
    help="Age of the longest-waiting event in the outbox (its CloudEvents time).",
)
cells[2].metric(
    "Dedupe window",
    age(dedupe["window_seconds"]),
    border=True,
    help=f"How far back a redelivery is recognised ({dedupe['store']} store; "
    f"DEDUPE_TTL_SECONDS is {dedupe['ttl_seconds']:g} s).",
)
cells[3].metric(
    "Redis",
    redis["mode"] if redis["configured"] else "not used",
    border=True,
    help="REDIS_MODE when REDIS_URL is set; embedded stores (memory, SQLite) else.",
)
if outbox["error"]:
    st.error(f"The outbox did not answer: {outbox['error']}")

st.subheader("Details")
NAMES = {"api_keys": "API keys", "oidc": "OIDC tokens"}
facade = " or ".join(NAMES.get(a, a) for a in auth["facade"]) or "open (no credentials asked)"
st.table(
    {
        "setting": [
            "K_SINK",
            "Dedupe store",
            "Dead-letter inbox",
            "Deliveries (POST /)",
            "Facade and WebSocket",
        ],
        "now": [
            outbox["sink"] or "not set: replies go back in responses only; replay is off",
            f"{dedupe['store']}, TTL {dedupe['ttl_seconds']:g} s",
            status["deadletters"],
            "OIDC tokens" if auth["deliveries"] == "oidc" else "open (OIDC_AUDIENCE not set)",
            facade,
        ],
    }
)
