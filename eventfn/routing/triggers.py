"""Triggers as the cluster holds them: read from the YAML of `eventing/`, their filter compiled.

    for trigger in load_triggers(Path("eventing")):
        verdict = trigger.check(attributes)           # Verdict(match, why)

A `Trigger` keeps what a Broker needs to deliver: its broker, filter, subscriber and `delivery`
(retry count, backoff policy and delay, per-attempt timeout, the dead-letter sink). Durations are
ISO 8601 (`PT0.5S`), as Knative spells them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from eventfn.routing.filters import Check, compile_trigger

_DURATION: Final = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_SECONDS: Final = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def duration(text: str) -> float:
    """Seconds of an ISO 8601 duration (days, hours, minutes, seconds: what Triggers use)."""
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (like PT0.5S)")
    return sum(float(v) * _SECONDS[k] for k, v in match.groupdict().items() if v)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where events go: a `ref`'s name (a Service, a Broker...), a `uri`, or both (a path on it)."""

    ref: Mapping[str, Any] | None = None
    uri: str | None = None

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Destination:
        return cls(ref=spec.get("ref"), uri=spec.get("uri"))

    @property
    def name(self) -> str | None:
        return None if self.ref is None else str(self.ref.get("name"))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A Trigger's `delivery`: retries after the first attempt, their backoff, the attempt timeout.

    Knative's dispatcher waits `backoff_delay * 2**(n - 1)` before the n-th retry (exponential)
    or `backoff_delay * (n - 1)` (linear: it counts attempts from 0, so the first retry is at
    once); with `retry_after_max`, a 429 or 503 waits for its Retry-After up to that bound.
    """

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.0
    timeout: float | None = None
    retry_after_max: float | None = None
    dead_letter_sink: Destination | None = None

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None) -> Delivery:
        spec = spec or {}
        policy = str(spec.get("backoffPolicy", "exponential"))
        if policy not in ("exponential", "linear"):
            raise ValueError(f"backoffPolicy {policy!r}: exponential or linear")
        sink = spec.get("deadLetterSink")

        def seconds(key: str) -> float | None:
            return None if spec.get(key) is None else duration(str(spec[key]))

        return cls(
            retry=int(spec.get("retry", 0)),
            backoff_policy=policy,
            backoff_delay=seconds("backoffDelay") or 0.0,
            timeout=seconds("timeout"),
            retry_after_max=seconds("retryAfterMax"),
            dead_letter_sink=None if sink is None else Destination.from_dict(sink),
        )

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * (retry - 1)
        return float(self.backoff_delay * 2 ** (retry - 1))


@dataclass(frozen=True, slots=True)
class Trigger:
    """One Trigger: its name, broker, compiled filter, subscriber and delivery."""

    name: str
    broker: str
    subscriber: Destination
    delivery: Delivery
    spec: Mapping[str, Any] = field(repr=False)
    check: Check = field(repr=False)

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any]) -> Trigger:
        spec = doc.get("spec") or {}
        return cls(
            name=str(doc["metadata"]["name"]),
            broker=str(spec.get("broker", "default")),
            subscriber=Destination.from_dict(spec.get("subscriber") or {}),
            delivery=Delivery.from_dict(spec.get("delivery")),
            spec=spec,
            check=compile_trigger(spec),
        )


def triggers_in(docs: Iterable[Any]) -> list[Trigger]:
    """The Triggers among parsed manifests (other kinds, and empty documents, skipped)."""
    return [
        Trigger.from_manifest(doc)
        for doc in docs
        if isinstance(doc, Mapping)
        and doc.get("kind") == "Trigger"
        and str(doc.get("apiVersion", "")).startswith("eventing.knative.dev/")
    ]


def load_triggers(directory: Path) -> list[Trigger]:
    """Every Trigger in the YAML files under `directory`, sorted by name."""
    import yaml  # PyYAML, already there with uvicorn[standard]; only this reader needs it

    found: list[Trigger] = []
    for path in sorted(directory.rglob("*.y*ml")):
        found.extend(triggers_in(yaml.safe_load_all(path.read_text(encoding="utf-8"))))
    return sorted(found, key=lambda t: t.name)
