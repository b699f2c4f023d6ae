"""Trigger filters: Knative's semantics, declared on a consumed type, rendered as valid Triggers."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

import manifests
from eventfn import CESQL, AllOf, AnyOf, Catalogue, EventSpec, Exact, Not, Prefix, Route, Suffix
from eventfn.routing import cesql
from eventfn.routing.filters import compile_trigger, filter_from_dict
from tests.repo.test_manifests import needs_crds, validate

ORDER_TYPE = "com.acme.order.placed"


class Order(BaseModel):
    sku: str


# --8<-- [start:routes]
EU_URGENT = Route("eu-urgent", Exact("region", "eu"), CESQL("priority > 3"))
ELSEWHERE = Route("elsewhere", Not(Exact("region", "eu")))
ORDER = EventSpec(ORDER_TYPE, Order, "An order", consumes=True, routes=(EU_URGENT, ELSEWHERE))
PLAIN = EventSpec("com.acme.order.cancelled", Order, "A cancellation", consumes=True)
# --8<-- [end:routes]


def event(**attributes: Any) -> dict[str, Any]:
    """The attributes of an order event, with `attributes` over them."""
    return {"specversion": "1.0", "id": "1", "source": "/shop", "type": ORDER_TYPE, **attributes}


def passes(spec: dict[str, Any], **attributes: Any) -> bool:
    return compile_trigger(spec)(event(**attributes)).match


def routed(*filters: Any) -> dict[str, Any]:
    """A Trigger spec whose `filters:` are `filters` (as dicts)."""
    return {"filters": [f.to_dict() for f in filters]}


# --- Knative's semantics ---------------------------------------------------------------------


def test_filters_take_precedence_over_filter() -> None:
    """With both set, `filters` decides and `filter.attributes` is ignored."""
    spec = {"filter": {"attributes": {"type": "other"}}, **routed(Exact("type", ORDER_TYPE))}
    assert passes(spec)


def test_a_filters_list_is_an_and() -> None:
    """Every item of `filters` must pass."""
    spec = routed(Exact("region", "eu"), Prefix("source", "/shop"))
    assert passes(spec, region="eu")
    assert not passes(spec, region="us")


def test_no_filter_at_all_lets_every_event_through() -> None:
    """A Trigger without `filter` or `filters` delivers everything."""
    assert passes({})
    assert passes({"filters": [], "filter": {}})


def test_an_empty_attribute_value_means_set_with_any_value() -> None:
    """`filter.attributes` with `""` passes any value of a present attribute, not an absent one."""
    spec = {"filter": {"attributes": {"region": ""}}}
    assert passes(spec, region="anything")
    assert not passes(spec)
    assert not passes(spec, region="")


def test_filter_attributes_match_exactly() -> None:
    """`filter.attributes` compares whole values."""
    spec = {"filter": {"attributes": {"type": ORDER_TYPE, "region": "eu"}}}
    assert passes(spec, region="eu")
    assert not passes(spec, region="eu-west")


@pytest.mark.parametrize("dialect", [Exact, Prefix, Suffix])
def test_an_absent_attribute_fails_exact_prefix_and_suffix(dialect: type[Exact]) -> None:
    """No attribute, no match, whatever the dialect."""
    assert not passes(routed(dialect("region", "eu")))


def test_prefix_and_suffix_compare_the_ends() -> None:
    """`prefix` and `suffix` test the start and the end of the value."""
    assert passes(routed(Prefix("source", "/sh"), Suffix("source", "op")))
    assert not passes(routed(Suffix("source", "/sh")))


def test_a_non_string_extension_is_compared_as_its_text() -> None:
    """An Integer or Boolean extension matches the text of its value."""
    assert passes(routed(Exact("priority", "5"), Exact("vip", "true")), priority=5, vip=True)


def test_a_cesql_error_is_no_match() -> None:
    """An expression that errs (here a missing attribute) does not pass, whatever its value."""
    spec = routed(CESQL("NOT (priority > 3)"))
    assert passes(spec, priority=1)
    assert not passes(spec)


def test_a_cesql_expression_that_is_not_true_is_no_match() -> None:
    """Only a Boolean true passes: an Integer or a String result does not."""
    assert not passes(routed(CESQL("priority")), priority=1)
    assert passes(routed(CESQL("priority")), priority=True)


def test_any_passes_when_one_passes_and_not_inverts() -> None:
    """`any` needs one passing filter; `not` passes when its filter fails."""
    spec = routed(AnyOf(Exact("region", "eu"), Exact("region", "us")), Not(Exact("tier", "free")))
    assert passes(spec, region="us", tier="gold")
    assert not passes(spec, region="apac", tier="gold")
    assert not passes(spec, region="eu", tier="free")


@pytest.mark.parametrize("group", [AllOf, AnyOf])
def test_all_and_any_hold_at_least_one_filter(group: type[AllOf]) -> None:
    """An empty `all` or `any` is rejected, as Knative's webhook rejects it."""
    with pytest.raises(ValueError, match="at least one filter"):
        group()


def test_a_failed_filter_says_why() -> None:
    """The verdict names the dialect, the attribute and what it held."""
    verdict = compile_trigger(routed(Exact("region", "eu")))(event(region="us"))
    assert verdict.why == "exact region: 'us' against 'eu'"


@pytest.mark.parametrize(
    "item",
    [
        {"exact": {"region": "eu"}, "prefix": {"source": "/"}},
        {"exact": {"region": "eu", "tier": "gold"}},
        {"exact": {"region": ""}},
        {"regex": "x"},
        {},
    ],
)
def test_a_filter_item_has_exactly_one_dialect_with_one_attribute(item: dict[str, Any]) -> None:
    """What Knative's webhook rejects is rejected when read."""
    with pytest.raises(ValueError, match=r"filter|attribute|empty"):
        filter_from_dict(item)


# --- Declared on a consumed type -------------------------------------------------------------


def test_a_cesql_filter_that_does_not_parse_fails_where_it_is_declared() -> None:
    """The error names the expression and the position (line and column)."""
    with pytest.raises(cesql.ParseError, match=r"'priority >'.* line 1 column 11") as raised:
        CESQL("priority >")
    assert raised.value.column == 11


def test_a_cesql_filter_calling_no_function_fails_where_it_is_declared() -> None:
    """A call no function answers would fail on every event: it fails at import instead."""
    with pytest.raises(ValueError, match="no function NOPE"):
        CESQL("NOPE(region)")


def test_only_a_consumed_type_has_routes() -> None:
    """A produced type has no Trigger to route with."""
    with pytest.raises(ValueError, match="only a consumed type has routes"):
        EventSpec("com.acme.x", Order, "x", routes=(EU_URGENT,))


def test_route_names_are_unique_per_type() -> None:
    """Two routes of one type would render one Trigger name twice."""
    with pytest.raises(ValueError, match="two routes share a name"):
        EventSpec("com.acme.x", Order, "x", consumes=True, routes=(EU_URGENT, EU_URGENT))


def test_a_route_name_is_a_dns_label() -> None:
    """The route's name ends the Trigger's name, a Kubernetes name."""
    with pytest.raises(ValueError, match="route name"):
        Route("EU Urgent")


# --- Rendered into Triggers ------------------------------------------------------------------


def rendered() -> dict[str, dict[str, Any]]:
    files = manifests.render(Catalogue((ORDER, PLAIN)))
    return {p: yaml.safe_load(t) for p, t in files.items() if p.startswith("trigger-")}


def test_one_trigger_per_route_with_the_type_kept_as_an_exact_filter() -> None:
    """Each route is a Trigger whose `filters:` start with the type match, then its own."""
    triggers = rendered()
    eu = triggers["trigger-com-acme-order-placed-eu-urgent.yaml"]
    assert eu["metadata"]["name"] == f"{manifests.NAME}-com-acme-order-placed-eu-urgent"
    assert "filter" not in eu["spec"]
    assert eu["spec"]["filters"] == [
        {"exact": {"type": ORDER_TYPE}},
        {"exact": {"region": "eu"}},
        {"cesql": "priority > 3"},
    ]
    elsewhere = triggers["trigger-com-acme-order-placed-elsewhere.yaml"]
    assert elsewhere["spec"]["filters"][1] == {"not": {"exact": {"region": "eu"}}}


def test_a_type_without_routes_keeps_its_one_trigger_on_the_type() -> None:
    """No routes: `filter.attributes.type`, exactly as before routes existed."""
    plain = rendered()["trigger-com-acme-order-cancelled.yaml"]
    assert plain["spec"]["filter"] == {"attributes": {"type": PLAIN.type}}
    assert "filters" not in plain["spec"]


def test_every_routed_trigger_may_post_replies_to_the_broker() -> None:
    """The EventPolicy lets each route's Trigger in (it sends the replies back)."""
    policy = yaml.safe_load(manifests.render(Catalogue((ORDER, PLAIN)))["eventpolicy.yaml"])
    names = {f["ref"]["name"] for f in policy["spec"]["from"] if f["ref"]["kind"] == "Trigger"}
    assert names == {doc["metadata"]["name"] for doc in rendered().values()}


@needs_crds
def test_routed_triggers_are_valid_against_the_upstream_trigger_crd() -> None:
    """Every rendered Trigger validates against the Trigger CRD's openAPIV3Schema."""
    for doc in rendered().values():
        validate(doc)


@needs_crds
def test_the_crd_rejects_a_misspelt_dialect() -> None:
    """The validation used above does catch a filter the CRD does not know."""
    doc = rendered()["trigger-com-acme-order-placed-eu-urgent.yaml"]
    doc["spec"]["filters"].append({"cesqll": "true"})
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_rendered_filters_read_back_as_declared() -> None:
    """What is rendered is what Knative's rules read: the route's filters, one dialect each."""
    spec = rendered()["trigger-com-acme-order-placed-eu-urgent.yaml"]["spec"]
    assert tuple(filter_from_dict(f) for f in spec["filters"][1:]) == EU_URGENT.filters
    assert compile_trigger(spec)(event(region="eu", priority=4)).match
    assert not compile_trigger(spec)(event(region="eu", priority=2)).match


def test_the_filter_benchmark_runs() -> None:
    """`make bench-filters` measures every step on an event its filters pass (untimed here)."""
    from bench import filters

    assert set(filters.measure(number=100)) >= {"decode", "trigger filters"}
