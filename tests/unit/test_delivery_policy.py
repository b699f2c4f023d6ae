"""A consumed type's own delivery policy: rendered into its Triggers, followed by the dedupe
window (the longest redelivery span) and the claim lease (the shortest last retry)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import manifests
from eventfn import Catalogue, Delivery, EventSpec, Registry, create_app
from eventfn.core import policy
from eventfn.testing import isolated_settings
from manifests.objects import code_defaults
from tests.repo.test_manifests import needs_crds, validate


class Payload(BaseModel):
    text: str


PATIENT = Delivery(retry=8, backoff_delay=2.0, timeout=20.0)
HASTY = Delivery(retry=2, backoff_delay=0.5, backoff_policy="linear")
SLOW = EventSpec("com.acme.slow", Payload, "Retried long.", consumes=True, delivery=PATIENT)
FAST = EventSpec("com.acme.fast", Payload, "Retried little.", consumes=True, delivery=HASTY)
PLAIN = EventSpec("com.acme.plain", Payload, "The default policy.", consumes=True)
CATALOGUE = Catalogue((SLOW, FAST, PLAIN))


def trigger(spec: EventSpec) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(manifests.render(CATALOGUE)[f"trigger-{spec.slug}.yaml"])
    return doc


def registry() -> Registry:
    functions = Registry(CATALOGUE)
    for spec in CATALOGUE.consumed:

        @functions.handles(spec)
        async def handle(payload: Payload) -> None: ...

    return functions


def test_a_types_policy_is_rendered_into_its_trigger() -> None:
    """retry, backoffPolicy, backoffDelay and timeout come from the type's Delivery."""
    assert trigger(SLOW)["spec"]["delivery"] | {"deadLetterSink": None} == {
        "retry": 8,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT2S",
        "timeout": "PT20S",
        "deadLetterSink": None,
    }
    assert trigger(FAST)["spec"]["delivery"]["backoffPolicy"] == "linear"


def test_a_type_without_a_policy_keeps_the_default() -> None:
    """The default policy, and no timeout, for a type that declares none."""
    delivery = trigger(PLAIN)["spec"]["delivery"]
    assert (delivery["retry"], delivery["backoffDelay"]) == (policy.RETRY, policy.backoff_delay())
    assert "timeout" not in delivery


@needs_crds
def test_the_rendered_policies_are_valid_against_the_trigger_crd() -> None:
    """Each Trigger with its own delivery validates against the upstream CRD."""
    for spec in CATALOGUE.consumed:
        validate(trigger(spec))


def test_the_window_follows_the_longest_span_and_the_lease_the_shortest() -> None:
    """The ConfigMap's window covers the patient type's retries; its lease expires before the
    hasty type's last retry."""
    settings = code_defaults(CATALOGUE)
    assert settings.dedupe_ttl_seconds >= policy.MARGIN * PATIENT.span(30.0)
    assert settings.dedupe_lease_seconds == HASTY.claim_lease()
    assert HASTY.claim_lease() < HASTY.retry_offsets()[-1]
    data = yaml.safe_load(manifests.render(CATALOGUE)["configmap.yaml"])["data"]
    assert float(data["DEDUPE_TTL_SECONDS"]) == settings.dedupe_ttl_seconds


def test_the_running_function_follows_its_catalogues_policies() -> None:
    """Built on the catalogue, the runtime's dedupe numbers are the derived ones."""
    runtime = create_app(isolated_settings(), registry=registry()).state.runtime
    assert runtime.settings.dedupe_ttl_seconds == policy.window_for(CATALOGUE.deliveries, 30.0)
    assert runtime.settings.dedupe_lease_seconds == HASTY.claim_lease()


def test_an_explicit_setting_wins_over_the_derivation() -> None:
    """DEDUPE_TTL_SECONDS set by the operator is kept as it is."""
    settings = isolated_settings(dedupe_ttl_seconds=99.0)
    runtime = create_app(settings, registry=registry()).state.runtime
    assert runtime.settings.dedupe_ttl_seconds == 99.0


def test_linear_backoff_waits_the_delay_times_the_retry() -> None:
    """Knative's linear policy: the n-th retry waits backoff_delay * n."""
    assert HASTY.retry_offsets() == [0.5, 1.5]
    assert Delivery(retry=3, backoff_delay=1.0).retry_offsets() == [1.0, 3.0, 7.0]


@pytest.mark.parametrize(
    "options",
    [{"retry": 0}, {"backoff_delay": 0}, {"timeout": -1}, {"backoff_policy": "random"}],
)
def test_a_policy_that_cannot_be_followed_is_refused(options: dict[str, Any]) -> None:
    """No retries, a zero delay, a negative timeout or an unknown backoff fail at import."""
    with pytest.raises(ValueError, match=r"retry|positive|backoff_policy"):
        Delivery(**{"retry": 3, "backoff_delay": 1.0, **options})


def test_only_a_consumed_type_has_a_policy() -> None:
    """A produced type is not delivered by a Trigger: a policy on it is an error."""
    with pytest.raises(ValueError, match="only a consumed type has a delivery policy"):
        EventSpec("com.acme.out", Payload, "Produced.", delivery=HASTY)
