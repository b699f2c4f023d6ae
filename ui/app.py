"""The Streamlit console of the function: send every event type, watch it live, mend what failed.

    Send          every consumed type, a form from its JSON Schema or raw JSON, over the facade
                  or the WebSocket; the reply, or the refusal beside the fields it is about
    Live          the feed of handled events; events/s by outcome and handler latency p50/p99
    Dead letters  the inbox, a page at a time: inspect, replay, delete
    Status        readiness and why, the outbox, the dedupe window, Redis, authentication

A thin client: what the function serves is read from it at run time (`GET /api/v1/types`), so a
type added to `schemas/` appears here with nothing to edit.

    BACKEND_URL       the function (default http://localhost:8080)
    BACKEND_API_KEY   sent as X-API-Key (the sidebar can change it)
    BACKEND_TOKEN     sent as Authorization: Bearer

Run it with `make ui` (UI_PORT, default 8501).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run ui/app.py` puts ui/ on the path, not the project: the pages import `ui.*`.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ui.shared import sidebar  # noqa: E402 - needs the path above

st.set_page_config(page_title="knative-python-backend", page_icon=":material/bolt:", layout="wide")
VIEWS = Path(__file__).resolve().parent / "views"
navigation = st.navigation(
    [
        st.Page(VIEWS / "send.py", title="Send", icon=":material/send:", default=True),
        st.Page(VIEWS / "live.py", title="Live", icon=":material/monitoring:"),
        st.Page(VIEWS / "dead_letters.py", title="Dead letters", icon=":material/inbox:"),
        st.Page(VIEWS / "status.py", title="Status", icon=":material/health_and_safety:"),
    ]
)
sidebar()
navigation.run()
