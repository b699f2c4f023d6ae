"""Send: any consumed type, from a form its JSON Schema makes or as raw JSON.

`?type=<type or name>&data=<JSON>` opens a type with its payload filled in (a link to share);
the page keeps both in the URL as they change.
"""

from __future__ import annotations

import json
import time
from typing import Any

import streamlit as st

from ui import forms
from ui.client import Problem
from ui.shared import backend, show_problem, types

st.title("Send an event")
current = backend()
try:
    catalogue = types(current.url, current.api_key, current.token)
except Problem as problem:
    show_problem(problem)
    st.stop()

consumed: list[dict[str, Any]] = catalogue["types"]
if not consumed:
    st.info("This function consumes no event type.")
    st.stop()
by_type = {t["type"]: t for t in consumed}
asked = st.query_params.get("type")
default = next(
    (i for i, t in enumerate(consumed) if asked and asked in (t["type"], t["name"])),
    0,
)


def label(event_type: str) -> str:
    spec = by_type[event_type]
    return f"{spec['name']} · {event_type}" if spec["name"] else event_type


chosen = st.selectbox("Event type", list(by_type), index=default, format_func=label)
spec = by_type[chosen]
st.query_params["type"] = spec["name"] or chosen
reply = f"answered by `{spec['reply']}`" if spec["reply"] else "fire-and-forget (202, no reply)"
st.caption(
    f"{spec['description']} · {reply} · facade `POST {spec['facade_path']}` · "
    f'WebSocket `{{"type": "{spec["message_type"]}"}}`'
)

schema = spec["json_schema"]
form = forms.fields(schema)
prefix = f"send:{chosen}:"
outcome_key = f"outcome:{chosen}"


def _leaves(fields: tuple[forms.Field, ...]) -> list[forms.Field]:
    found: list[forms.Field] = []
    for f in fields:
        found.extend(_leaves(f.children) if f.kind == "object" else [f])
    return found


values_key = f"values:{chosen}"
RAW = "#raw"  # the raw JSON editor's key: no property path starts with '#'
if values_key not in st.session_state:
    # First visit of this type in the session: a shared link's data, else the schema's example.
    linked = bool(asked) and asked in (chosen, spec["name"])
    start = (forms.shared_data(st.query_params.get("data")) if linked else {}) or forms.example(
        schema
    )
    st.session_state[values_key] = {
        **forms.initial(form, start),
        RAW: json.dumps(start, indent=2),
    }
values: dict[str, Any] = st.session_state[values_key]
for name, value in values.items():
    # Streamlit forgets a widget's value on a run that does not draw it (another type or page,
    # the other editor): the copy kept here brings it back.
    st.session_state.setdefault(prefix + name, value)


def switch_editor() -> None:
    """Carry the payload across: the form's values into the JSON, the JSON into the form."""
    state = st.session_state
    if state[f"{prefix}editor"] == "raw JSON":
        data, _ = forms.collect(form, {f.key: state.get(prefix + f.key) for f in _leaves(form)})
        state[prefix + RAW] = values[RAW] = json.dumps(data, indent=2)
        return
    parsed = forms.shared_data(state.get(prefix + RAW))
    for name, value in forms.initial(form, parsed).items():
        state[prefix + name] = values[name] = value


left, right = st.columns([3, 1])
with right:
    transport = st.radio("Send over", ["facade", "WebSocket"], key="transport")
    editor = st.radio(
        "Edit as", ["form", "raw JSON"], key=f"{prefix}editor", on_change=switch_editor
    )
outcome: dict[str, Any] = st.session_state.get(outcome_key, {})
placed: dict[str, list[str]] = outcome.get("placed", {})


def widget(f: forms.Field) -> None:
    """One field's widget, its errors from the last send right under it."""
    key = prefix + f.key
    name = f.title + ("" if f.required or f.checkbox else " (optional)")
    if f.kind == "object":
        with st.container(border=True):
            st.markdown(f"**{name}**")
            for child in f.children:
                widget(child)
        return
    if f.checkbox:
        st.checkbox(name, key=key, help=f.description or None)
    elif f.kind in ("boolean", "enum"):
        options = [forms.UNSET, True, False] if f.kind == "boolean" else [forms.UNSET, *f.options]
        st.selectbox(name, options, key=key, help=f.description or None)
    elif f.kind == "array":
        st.text_area(f"{name}: one item per line", key=key, help=f.description or None)
    elif f.kind == "json":
        st.text_area(f"{name} (JSON)", key=key, help=f.description or None)
    else:
        placeholder = {"integer": "a whole number", "number": "a number"}.get(f.kind)
        st.text_input(name, key=key, placeholder=placeholder, help=f.description or None)
    for message in placed.get(f.key, []):
        st.error(f"{f.title}: {message}", icon=":material/error:")


with left, st.form(f"form:{chosen}", border=False):
    if editor == "form":
        for f in form:
            widget(f)
    else:
        st.text_area("Payload (JSON)", key=prefix + RAW, height=240)
    submitted = st.form_submit_button("Send", type="primary")
for name in values:
    if prefix + name in st.session_state:
        values[name] = st.session_state[prefix + name]


def payload() -> tuple[Any, dict[str, str]]:
    if editor == "form":
        raw = {f.key: st.session_state.get(prefix + f.key) for f in _leaves(form)}
        return forms.collect(form, raw)
    try:
        return json.loads(st.session_state.get(prefix + RAW) or "null"), {}
    except json.JSONDecodeError as exc:
        return None, {"": f"not JSON: {exc.msg} (line {exc.lineno})"}


def send(data: Any) -> dict[str, Any]:
    """Send `data` and say what came of it (kept in the session until the next send)."""
    started = time.perf_counter()
    progress: list[Any] = []
    try:
        if transport == "WebSocket":
            with st.status("Sent over the WebSocket…", expanded=True) as status:

                def shown(item: Any) -> None:
                    progress.append(item)
                    st.write(item)

                answer = current.stream(spec["message_type"], data, shown)
                status.update(
                    label=f"Answered ({len(progress)} progress messages)",
                    state="complete",
                    expanded=False,
                )
        else:
            answer = current.send(spec["facade_path"], data)
    except Problem as problem:
        placed, general = forms.place_errors(form, problem.errors)
        return {
            "problem": problem.problem,
            "placed": placed,
            "general": general,
            "progress": progress,
        }
    elapsed = (time.perf_counter() - started) * 1000
    return {"answer": answer, "ms": elapsed, "progress": progress, "via": transport}


if submitted:
    data, unreadable = payload()
    if unreadable:
        outcome = {
            "placed": {k: [v] for k, v in unreadable.items() if k},
            "local": [v for k, v in unreadable.items() if not k]
            or ["Some fields could not be read: see the messages beside them."],
        }
    else:
        outcome = send(data)
        st.query_params["data"] = json.dumps(data, separators=(",", ":"))
    st.session_state[outcome_key] = outcome
    st.rerun()  # the form again, with each field's errors beside it

with left:
    if "local" in outcome:
        for line in outcome["local"]:
            st.warning(line)
    elif "problem" in outcome:
        general = list(outcome["general"])
        if editor == "raw JSON":  # no field to show them beside: listed with the problem
            general += [f"{k}: {m}" for k, ms in outcome["placed"].items() for m in ms]
        show_problem(Problem(outcome["problem"]), general=general)
        if outcome["placed"] and editor == "form":
            st.caption("The fields it is about say why, above.")
    elif "answer" in outcome:
        st.subheader("Reply")
        if outcome["answer"] is None:
            st.success("Handled: the type has nothing to say back.")
        else:
            st.success(f"Answered over the {outcome['via']} in {outcome['ms']:.0f} ms")
            st.json(outcome["answer"])
        if outcome["progress"]:
            with st.expander(f"Progress ({len(outcome['progress'])} messages)"):
                for item in outcome["progress"]:
                    st.write(item)
    st.caption(
        "Share: this page's URL opens this type with this payload "
        f"(`?type={st.query_params.get('type')}&data=...`)."
    )
