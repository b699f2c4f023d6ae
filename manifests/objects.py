"""The resources of `eventing/`, as plain dicts built from the catalogue and the settings."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretBytes, SecretStr
from pydantic_settings import BaseSettings

from eventfn import Catalogue, EventSpec, Route
from eventfn.core import policy
from eventfn.core.config import Settings, following_deliveries
from eventfn.core.policy import BROKER_DELIVERY, BrokerDelivery
from eventfn.routing.filters import trigger_filter
from manifests.deployment import DEPLOYMENT, Deployment

ROOT = Path(__file__).resolve().parent.parent

NAME = "knative-python-backend"  # the same as manifests.deployment.NAME
NAMESPACE = NAME
BROKER = "default"
IMAGE = NAME  # a placeholder the kustomization's `images:` entry replaces
REGISTRY_IMAGE = f"ghcr.io/example/{NAME}"
REPO_URL = f"https://github.com/example/{NAME}.git"
HOST = f"{NAME}.{NAMESPACE}.svc.cluster.local"
# Knative names audiences `<group>/<kind>/<namespace>/<name>`; a Service has none of its own, so
# Triggers name it explicitly and the function expects exactly this `aud` (OIDC_AUDIENCE).
AUDIENCE = f"serving.knative.dev/service/{NAMESPACE}/{NAME}"
SERVICE_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": NAME}
BROKER_REF = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker", "name": BROKER}
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": NAME}

# Broker redelivery (eventfn.core.policy): the claim lease and the dedupe window derive from it.
RETRY = policy.RETRY
BACKOFF_DELAY = policy.backoff_delay()
# Scale and resources of the Service as `eventing/` ships them (manifests.deployment).
MIN_SCALE, MAX_SCALE, TARGET = DEPLOYMENT.min_scale, DEPLOYMENT.max_scale, DEPLOYMENT.target
CONTAINER_CONCURRENCY = DEPLOYMENT.container_concurrency
RESOURCES = DEPLOYMENT.resources
CONFIG_PREFIX = f"{NAME}-config"
# What Argo CD must not delete when a sync no longer renders it: a ConfigMap an earlier Revision
# still reads (so that Revision can start again: a rollback by traffic, a scale from zero), and
# not count as drift either (IgnoreExtraneous), or every config change would leave the
# Application OutOfSync. `python -m manifests.prune` deletes the ones no Revision reads.
KEPT = {
    "argocd.argoproj.io/sync-options": "Prune=false",
    "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
}
CONFIG_LABELS = {**LABELS, "app.kubernetes.io/component": "config"}

# Settings Knative or the SinkBinding provide, or that make no sense in a cluster-wide ConfigMap.
NOT_CONFIGURED = frozenset({"host", "port", "k_sink", "k_ce_overrides"})
# Settings that are credentials (or may embed one): the Secret, never the ConfigMap.
SECRET_FIELDS = frozenset({"api_keys", "redis_url"})
SECRET_SUFFIXES = ("_key", "_keys", "_password", "_secret", "_token")
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# Production differs from the laptop defaults here: JSON logs, and OIDC on (delivery tokens are
# projected service-account tokens the cluster's API server issues and signs).
PRODUCTION: dict[str, str] = {
    "log_format": "json",
    "oidc_audience": AUDIENCE,
    "oidc_issuer": "https://kubernetes.default.svc.cluster.local",
    "oidc_ca_file": f"{SERVICE_ACCOUNT}/ca.crt",
    "oidc_jwks_token_file": f"{SERVICE_ACCOUNT}/token",
}


def code_defaults(catalogue: Catalogue | None = None) -> Settings:
    """The settings the code declares, whatever this shell's environment says (deterministic),
    with the dedupe window and lease that `catalogue`'s delivery policies call for."""
    # A BaseSettings reads the environment even in model_validate, but what it is given
    # explicitly wins: so give it every default (model_construct reads no environment).
    defaults = Settings.model_construct()
    if catalogue is None:
        from schemas import CATALOGUE as catalogue  # the function's own, by default
    deliveries = catalogue.deliveries
    derived = following_deliveries(defaults, deliveries)
    return Settings.model_validate(derived.model_dump())


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "labels": dict(LABELS), **extra}


def _env_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _is_secret(field: str) -> bool:
    return field in SECRET_FIELDS or field.endswith(SECRET_SUFFIXES)


def config_data(settings: Settings, own: type[BaseSettings] | None = None) -> dict[str, str]:
    """The ConfigMap's data: every non-secret setting, production overrides over code defaults,
    and the defaults of the function's own settings model `own` (`Registry(settings=...)`)."""
    data: dict[str, str] = {}
    values = {**settings.model_dump(), **PRODUCTION}
    for field in sorted(type(settings).model_fields):
        if field in NOT_CONFIGURED or _is_secret(field):
            continue
        text = _env_value(values.get(field))
        if text is not None:
            data[field.upper()] = text
    if own is not None:
        data.update(own_config(own)[0])
    return data


def secret_keys(settings: Settings, own: type[BaseSettings] | None = None) -> list[str]:
    """The environment variables the Secret must provide (the function's own secrets too)."""
    keys = [f.upper() for f in type(settings).model_fields if _is_secret(f)]
    if own is not None:
        keys.extend(own_config(own)[1])
    return sorted(keys)


def own_config(model: type[BaseSettings]) -> tuple[dict[str, str], list[str]]:
    """The function's own settings: (ConfigMap entries from their defaults, Secret keys).

    A field is a secret when it is typed `SecretStr`/`SecretBytes` or named like one (`_token`,
    `_password`...); its value never goes into the ConfigMap. A non-secret field without a
    default cannot be rendered: it fails here, naming it, rather than in the pod.
    """
    prefix = str(model.model_config.get("env_prefix", ""))
    data: dict[str, str] = {}
    secrets: list[str] = []
    for name, field in sorted(model.model_fields.items()):
        env = (prefix + name).upper()
        if field.annotation in (SecretStr, SecretBytes) or _is_secret(name):
            secrets.append(env)
            continue
        if field.is_required():
            raise ValueError(
                f"{model.__name__}.{name} ({env}) has no default, so the ConfigMap cannot carry "
                "it: give it a default, or make it a secret (SecretStr) set in the Secret"
            )
        text = _env_value(field.get_default(call_default_factory=True))
        if text is not None:
            data[env] = text
    return data, secrets


def configmap_name(data: Mapping[str, str]) -> str:
    """The ConfigMap's name: the prefix and a hash of its content.

    Knative makes a Revision only when the Service's template changes, and a ConfigMap edited in
    place changes nothing there: the pods keep the environment they started with, and an older
    Revision started again (a rollback by traffic, a scale from zero) would read the newer
    settings. Named after its content, the ConfigMap is immutable in effect: a changed setting is
    a new name, the template's `configMapRef` follows, and that is a new Revision, each reading
    its own. The renderer computes the hash (rather than kustomize's configMapGenerator) so the
    committed files are what the cluster gets: the name shows in the diff of a config change,
    `kubectl apply -f` works as `kubectl kustomize` does, and no kustomize name-reference
    configuration for Knative's CRD is needed.
    """
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{CONFIG_PREFIX}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def configmap(settings: Settings, own: type[BaseSettings] | None = None) -> dict[str, Any]:
    data = config_data(settings, own)
    metadata = {
        "name": configmap_name(data),
        "labels": dict(CONFIG_LABELS),
        "annotations": dict(KEPT),
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def secret_example(
    settings: Settings, deployment: Deployment = DEPLOYMENT, own: type[BaseSettings] | None = None
) -> dict[str, Any]:
    """A placeholder Secret: documents the keys; never applied by kustomize or Argo CD."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(
            deployment.secret_name,
            annotations={"example": "placeholder values: create the real Secret out of band"},
        ),
        "type": "Opaque",
        "stringData": dict.fromkeys(secret_keys(settings, own), "CHANGE-ME"),
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path}, "periodSeconds": period, "failureThreshold": failures}


def _autoscaling(deployment: Deployment) -> dict[str, str]:
    """The Revision's KPA annotations; with scale to zero, min-scale 0 and the last pod's stay."""
    annotations = {
        "autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/min-scale": str(deployment.rendered_min_scale),
        "autoscaling.knative.dev/max-scale": str(deployment.max_scale),
        "autoscaling.knative.dev/target": str(deployment.target),
    }
    if deployment.scale_to_zero:
        retention = f"{deployment.scale_to_zero_retention_seconds}s"
        annotations["autoscaling.knative.dev/scale-to-zero-pod-retention-period"] = retention
    return annotations


def service(
    settings: Settings, deployment: Deployment = DEPLOYMENT, own: type[BaseSettings] | None = None
) -> dict[str, Any]:
    """The Knative Service: autoscaling, probes, limits, configuration from ConfigMap + Secret."""
    # The queue-proxy must outlast the handler's own budget, so a slow handler is answered by the
    # function (504 problem+json, retried by the broker) rather than cut off mid-response.
    timeout = math.ceil(settings.handler_timeout_seconds) + 30
    annotations = {
        **_autoscaling(deployment),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(settings.port),
        "prometheus.io/path": "/metrics",
    }
    container = {
        "name": "function",
        "image": IMAGE,
        "ports": [{"name": "http1", "containerPort": settings.port}],
        # The ConfigMap by its content's name (configmap_name): a changed setting changes this
        # template, so Knative makes a Revision and the new pods get the new environment.
        "envFrom": [
            {"configMapRef": {"name": configmap_name(config_data(settings, own))}},
            {"secretRef": {"name": deployment.secret_name}},
        ],
        "resources": deployment.resources,
        "livenessProbe": _probe("/health/liveness", period=10, failures=3),
        "readinessProbe": _probe("/health/readiness", period=2, failures=3),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": dict(LABELS), "annotations": annotations},
            "spec": {
                "containerConcurrency": deployment.container_concurrency,
                "timeoutSeconds": timeout,
                "containers": [container],
            },
        }
    }
    if deployment.traffic_to_revision:
        # A rollback that makes no Revision: the earlier one gets every request at once; the
        # latest stays reachable at its `latest-` tag URL, to try it before moving back.
        spec["traffic"] = [
            {"revisionName": deployment.traffic_to_revision, "percent": 100},
            {"latestRevision": True, "percent": 0, "tag": "latest"},
        ]
    metadata = _meta(NAME)
    if deployment.rollout_duration_seconds:
        # On the Service, not the template: how traffic moves between Revisions is the Route's.
        duration = f"{deployment.rollout_duration_seconds}s"
        metadata["annotations"] = {"serving.knative.dev/rollout-duration": duration}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": spec,
    }


def broker() -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": _meta(
            BROKER, annotations={"eventing.knative.dev/broker.class": "MTChannelBasedBroker"}
        ),
        "spec": {"delivery": _delivery()},
    }


def _delivery(delivery: BrokerDelivery = BROKER_DELIVERY) -> dict[str, Any]:
    """A `delivery` block: the policy's retries, backoff (and timeout), then the function's DLS."""
    return {
        **delivery.to_trigger(),
        "deadLetterSink": {"ref": dict(SERVICE_REF), "uri": "/deadletter", "audience": AUDIENCE},
    }


def trigger_name(spec: EventSpec, route: Route | None = None) -> str:
    return f"{NAME}-{spec.slug}" if route is None else f"{NAME}-{spec.slug}-{route.name}"


def trigger(spec: EventSpec, route: Route | None = None) -> dict[str, Any]:
    """A Trigger of a consumed type: its filter, retries, then the function's DLS.

    Without a route it matches the type alone (`filter.attributes`). A route's Trigger has the
    Subscriptions API `filters:` instead (Knative reads them first), the type match kept as
    their first, `exact`, filter and the route's filters after it (all must pass).
    """
    match = trigger_filter(spec.type, route)
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": _meta(trigger_name(spec, route)),
        "spec": {
            "broker": BROKER,
            **match,
            "subscriber": {"ref": dict(SERVICE_REF), "audience": AUDIENCE},
            "delivery": _delivery(spec.delivery or BROKER_DELIVERY),
        },
    }


def triggers(spec: EventSpec) -> dict[str, dict[str, Any]]:
    """A consumed type's Triggers by file name: one per route, or one on the type alone."""
    if not spec.routes:
        return {f"trigger-{spec.slug}.yaml": trigger(spec)}
    return {f"trigger-{spec.slug}-{r.name}.yaml": trigger(spec, r) for r in spec.routes}


def schema_url(spec: EventSpec) -> str:
    """Where the function serves the type's JSON Schema inside the cluster."""
    return f"http://{HOST}/api/v1/schemas/{spec.type}"


def event_type(spec: EventSpec, settings: Settings, *, produced: bool) -> dict[str, Any]:
    """The EventType of a consumed or produced type, pointing at (and carrying) its schema."""
    body: dict[str, Any] = {
        "reference": dict(BROKER_REF),
        "type": spec.type,
        "description": spec.description,
        "schema": schema_url(spec),
        "schemaData": json.dumps(spec.json_schema(), sort_keys=True, separators=(",", ":")),
    }
    if produced:
        body["source"] = settings.event_source
    return {
        "apiVersion": "eventing.knative.dev/v1beta2",
        "kind": "EventType",
        "metadata": _meta(spec.slug),
        "spec": body,
    }


def sink_binding() -> dict[str, Any]:
    """K_SINK (and K_CE_OVERRIDES) for events the function publishes on its own: to the Broker."""
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "SinkBinding",
        "metadata": _meta(f"{NAME}-sink"),
        "spec": {"subject": dict(SERVICE_REF), "sink": {"ref": dict(BROKER_REF)}},
    }


def event_policy(consumed: Sequence[EventSpec]) -> dict[str, Any]:
    """Who may post to the Broker when authorization is on: the function's own identities only.

    With Knative's `authentication-oidc` feature the SinkBinding gets an OIDC identity of its
    own (the token the publisher sends), and the Broker's filter sends a reply event back to the
    Broker under the identity of the Trigger that delivered the request: both must be let in, or
    every publish and every reply is a 403. With the namespace's default authorization mode
    `allow-same-namespace` or stricter, an EventPolicy names who may post to a target. Other
    producers of the consumed types need policies of their own (or a `from` entry here).
    """

    def ref(api_version: str, kind: str, name: str) -> dict[str, Any]:
        return {
            "ref": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": NAMESPACE}
        }

    names = [t["metadata"]["name"] for s in consumed for t in triggers(s).values()]
    triggers_ = [ref("eventing.knative.dev/v1", "Trigger", name) for name in names]
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "EventPolicy",
        "metadata": _meta(f"{NAME}-publishes-to-broker"),
        "spec": {
            "to": [{"ref": dict(BROKER_REF)}],
            "from": [ref("sources.knative.dev/v1", "SinkBinding", f"{NAME}-sink"), *triggers_],
        },
    }


def namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE)}


def _version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def kustomization(resources: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": list(resources),
        "images": [{"name": IMAGE, "newName": REGISTRY_IMAGE, "newTag": _version()}],
    }
