"""Dead letters: the inbox a page at a time (the API's cursor), inspect, replay, delete.

Only the page shown is read: an inbox of thousands costs one page per look. Replaying publishes
the original event to K_SINK (without the broker's `knativeerror*` extensions); the letter then
leaves the inbox unless "keep after replay" is on. Replay all and delete act only after a second
click that confirms them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui.client import Backend, Problem
from ui.shared import backend, show_problem

st.title("Dead letters")
current = backend()
state = st.session_state
state.setdefault("dl_cursors", [None])  # the cursor of each page seen, the first page's None
state.setdefault("dl_confirm", None)


def go(cursors: list[str | None]) -> None:
    state["dl_cursors"] = cursors
    state["dl_confirm"] = None


top = st.columns([1, 1, 2, 2])
with top[0]:
    size = st.selectbox("Per page", [25, 50, 100, 200], key="dl_size", on_change=lambda: go([None]))
with top[2]:
    keep = st.toggle(
        "Keep after replay",
        key="dl_keep",
        help="Replayed letters stay in the inbox (delete them once downstream "
        "confirms). Off: a replayed letter leaves the inbox.",
    )

try:
    page = current.deadletters(size, state["dl_cursors"][-1])
except Problem as problem:
    show_problem(problem)
    st.stop()
letters: list[dict[str, Any]] = page["items"]
number = len(state["dl_cursors"])


# Narrow enough for the seven columns to fit a laptop screen; the reason gets what is left.
COLUMNS = {
    "received": st.column_config.DatetimeColumn("received", format="MM-DD HH:mm:ss", width=110),
    "event id": st.column_config.TextColumn("event id", width=150),
    "type": st.column_config.TextColumn("type", width=170),
    "knativeerrorcode": st.column_config.NumberColumn("knativeerrorcode", width=115),
    "reason": st.column_config.TextColumn("reason", width=180),
    "knativeerrordest": st.column_config.TextColumn("knativeerrordest", width=150),
    "source": st.column_config.TextColumn("source", width=110),
}


def table(items: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "received": letter["received"],
                "event id": letter["event_id"],
                "type": letter["type"],
                "knativeerrorcode": letter["error"]["code"],
                "reason": letter["error"]["data"],
                "knativeerrordest": letter["error"]["destination"],
                "source": letter["source"],
            }
            for letter in items
        ],
        columns=list(COLUMNS),
    )
    frame["received"] = pd.to_datetime(frame["received"], utc=True)
    return frame


nav = st.columns([1, 1, 6])
nav[0].button("← Newer", disabled=number == 1, on_click=go, args=(state["dl_cursors"][:-1],))
nav[1].button(
    "Older →",
    disabled=page["next"] is None,
    on_click=go,
    args=([*state["dl_cursors"], page["next"]],),
)
nav[2].caption(f"Page {number} · {len(letters)} letters · newest first")

message = state.pop("dl_message", None)
if message is not None:
    kind, text, body = message
    if kind == "ok":
        st.success(text)
    else:
        show_problem(Problem(body))

if not letters:
    st.info("The inbox is empty." if number == 1 else "No more letters.")
    st.stop()

picked = st.dataframe(
    table(letters),
    column_config=COLUMNS,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="multi-row",
    key=f"dl_table:{number}:{state['dl_cursors'][-1]}",
)
by_event = {letter["event_id"]: letter for letter in letters}
# Rows picked in the table, or event ids chosen here (typed, pasted, from the keyboard).
chosen_ids = st.multiselect(
    "Or choose by event id", list(by_event), key=f"dl_ids:{number}:{state['dl_cursors'][-1]}"
)
rows = [letters[i] for i in picked.selection.rows if i < len(letters)]
selected = [*rows, *(by_event[i] for i in chosen_ids if by_event[i] not in rows)]


def replay(client: Backend, letter: dict[str, Any]) -> str:
    outcome = client.replay(letter["id"])["outcome"]
    if not keep:
        client.delete(letter["id"])
    return str(outcome)


def act(kind: str, chosen: list[dict[str, Any]]) -> None:
    """Run an action on the letters chosen; a message says what happened."""
    done: list[str] = []
    try:
        for letter in chosen:
            if kind == "delete":
                current.delete(letter["id"])
                done.append("deleted")
            else:
                done.append(replay(current, letter))
    except Problem as problem:
        state["dl_message"] = ("error", f"after {len(done)}: {problem}", problem.problem)
    else:
        verb = "Deleted" if kind == "delete" else "Replayed"
        detail = ", ".join(f"{done.count(o)} {o}" for o in sorted(set(done)))
        state["dl_message"] = ("ok", f"{verb} {len(done)} ({detail}).", None)
    go([None] if not keep or kind == "delete" else state["dl_cursors"])


def replay_all() -> None:
    """Every letter that was in the inbox when asked, a page at a time, following the cursor:
    it points below the letters already seen, so letters arriving meanwhile (a replay refused
    again comes back as a new one) are not replayed in the same pass, and the pass ends."""
    done = 0
    cursor: str | None = None
    try:
        while True:
            batch = current.deadletters(100, cursor)
            for letter in batch["items"]:
                replay(current, letter)
                done += 1
            cursor = batch["next"]
            if cursor is None:
                break
    except Problem as problem:
        state["dl_message"] = ("error", f"after {done}: {problem}", problem.problem)
    else:
        state["dl_message"] = ("ok", f"Replayed all {done}.", None)
    go([None])


actions = st.columns(4)
count = len(selected)
if actions[0].button(f"Replay selected ({count})", disabled=not count, type="primary"):
    act("replay", selected)
    st.rerun()
if actions[1].button(f"Delete selected ({count})", disabled=not count):
    state["dl_confirm"] = "delete"
if actions[2].button("Replay all…"):
    state["dl_confirm"] = "replay-all"

confirm = state["dl_confirm"]
if confirm is not None:
    what = (
        f"delete {count} letters for good"
        if confirm == "delete"
        else "replay every letter in the inbox, page after page"
    )
    st.warning(f"Sure? This will {what}.")
    yes, no = st.columns([1, 6])
    if yes.button("Confirm", type="primary", key="dl_yes"):
        if confirm == "delete":
            act("delete", selected)
        else:
            replay_all()
        st.rerun()
    if no.button("Cancel", key="dl_no"):
        go(state["dl_cursors"])
        st.rerun()

st.subheader("Inspect")
focus = selected[0] if selected else letters[0]
st.caption(f"{'The first selected' if selected else 'The newest'} letter: `{focus['event_id']}`")
attributes = {k: v for k, v in focus["event"].items() if k not in ("data", "data_base64")}
first, second = st.columns(2)
with first:
    st.markdown("**Attributes**")
    st.json(attributes)
with second:
    st.markdown("**Data**")
    data = focus["event"].get("data", focus["event"].get("data_base64"))
    if data is None:
        st.write("No data.")
    elif isinstance(data, str):
        st.code(data, language=None)
    else:
        st.json(data)
