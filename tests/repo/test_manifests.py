"""eventing/: rendered from the code, committed fresh, complete, and valid against upstream CRDs."""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import jsonschema
import pytest
import yaml
from pydantic import BaseModel

import eventfn.testing
import manifests
from eventfn import Catalogue, EventSpec
from handler.functions import registry as function_registry
from schemas import CATALOGUE
from tests.helpers.support import SHARED, suite_settings

CRDS = SHARED / "knative-crds"
needs_crds = pytest.mark.skipif(
    not CRDS.is_dir(), reason=f"upstream CRDs not present at {CRDS} (shared/knative-crds)"
)
# Kinds Kubernetes itself defines: no CRD to validate them against.
CORE = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret")}
FILES = manifests.render()
YAML_FILES = sorted(p for p in FILES if p.endswith(".yaml") and p != "kustomization.yaml")


def load(path: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(FILES[path])
    return doc


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for path in YAML_FILES if (doc := load(path))["kind"] == kind]


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with unknown fields rejected wherever it lists properties and keeps no unknowns."""
    schema = dict(schema)
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    if "properties" in schema:
        schema["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [strict(s) for s in schema[key]]
    return schema


STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
# The part of ObjectMeta that manifests set: the API server defines it for every kind, so CRDs
# leave it out (or say only `type: object`); strict here too, to catch a misplaced field.
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": STRINGS,
        "annotations": STRINGS,
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name"],
}
TYPE_META = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}


def with_object_meta(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's root schema plus the type and object metadata Kubernetes adds to every kind."""
    properties = {**schema.get("properties", {}), **TYPE_META, "metadata": OBJECT_META}
    return {**schema, "properties": properties, "required": ["apiVersion", "kind", "metadata"]}


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict openAPIV3Schema of every served version of every CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = version["schema"]["openAPIV3Schema"]
                    key = (f"{group}/{version['name']}", kind)
                    found[key] = strict(with_object_meta(schema))
    return found


def validate(doc: dict[str, Any]) -> None:
    schema = crd_schemas()[(doc["apiVersion"], doc["kind"])]
    jsonschema.Draft7Validator(schema).validate(doc)


def test_committed_eventing_is_what_make_manifests_renders() -> None:
    """eventing/ in git is exactly the renderer's output (run `make manifests` after a change)."""
    assert manifests.differences(manifests.OUT, FILES) == []


def test_rendering_is_deterministic() -> None:
    """Two renders are byte-identical, so the drift check never flaps."""
    assert manifests.render() == FILES


def test_check_reports_changed_missing_and_stale_files(tmp_path: Path) -> None:
    """--check's comparison names edited, deleted and no-longer-rendered files; write fixes all."""
    manifests.write(tmp_path, FILES)
    (tmp_path / "broker.yaml").write_text("edited\n")
    (tmp_path / "service.yaml").unlink()
    (tmp_path / "trigger-gone.yaml").write_text("stale\n")
    assert manifests.differences(tmp_path, FILES) == [
        "broker.yaml",
        "service.yaml",
        "trigger-gone.yaml",
    ]
    manifests.write(tmp_path, FILES)
    assert manifests.differences(tmp_path, FILES) == []


def test_main_check_fails_on_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m manifests --check` exits 1 and names the stale file."""
    monkeypatch.setattr(manifests, "OUT", tmp_path)
    monkeypatch.setattr(manifests, "FUNC_YAML", tmp_path / "no-func.yaml")
    assert manifests.main([]) == 0
    assert manifests.main(["--check"]) == 0
    (tmp_path / "broker.yaml").write_text("edited\n")
    assert manifests.main(["--check"]) == 1
    assert "eventing/broker.yaml" in capsys.readouterr().err


def test_make_manifests_keeps_func_yamls_configmap_import_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """func.yaml imports the ConfigMap by its content's name: --check fails on an old one,
    `make manifests` rewrites that reference and nothing else of the file."""
    func = tmp_path / "func.yaml"
    current = manifests.func_yaml(manifests.FUNC_YAML.read_text(), FILES)
    stale = current.replace(
        load("configmap.yaml")["metadata"]["name"], f"{manifests.NAME}-config-0123456789"
    )
    assert stale != current
    func.write_text(stale)
    monkeypatch.setattr(manifests, "OUT", tmp_path / "eventing")
    monkeypatch.setattr(manifests, "FUNC_YAML", func)
    (tmp_path / "eventing").mkdir()
    manifests.write(tmp_path / "eventing", FILES)
    assert manifests.main(["--check"]) == 1
    assert "func.yaml differs" in capsys.readouterr().err
    assert manifests.main([]) == 0
    assert func.read_text() == current


@needs_crds
@pytest.mark.parametrize("path", YAML_FILES)
def test_every_resource_is_valid_against_its_upstream_crd(path: str) -> None:
    """Each custom resource validates against its CRD's schema, unknown fields rejected."""
    doc = load(path)
    if (doc["apiVersion"], doc["kind"]) in CORE:
        assert doc["metadata"]["name"]
        return
    assert (doc["apiVersion"], doc["kind"]) in crd_schemas(), f"no upstream CRD for {path}"
    validate(doc)


@needs_crds
def test_an_unknown_field_is_rejected() -> None:
    """The strict schemas catch a misspelt field (so the test above means something)."""
    trigger = copy.deepcopy(of_kind("Trigger")[0])
    trigger["spec"]["subscriber"]["audiences"] = "typo"
    with pytest.raises(jsonschema.ValidationError, match="audiences"):
        validate(trigger)


def test_one_trigger_per_consumed_type_with_retries_and_the_dead_letter_sink() -> None:
    """Each consumed type has its Trigger: type filter, exponential retries, DLS at /deadletter."""
    triggers = of_kind("Trigger")
    assert sorted(t["spec"]["filter"]["attributes"]["type"] for t in triggers) == sorted(
        s.type for s in CATALOGUE.consumed
    )
    audience = load("configmap.yaml")["data"]["OIDC_AUDIENCE"]
    for trigger in triggers:
        spec = trigger["spec"]
        assert spec["filter"]["attributes"].keys() == {"type"}
        assert spec["subscriber"] == {"ref": manifests.SERVICE_REF, "audience": audience}
        delivery = spec["delivery"]
        assert delivery["backoffPolicy"] == "exponential"
        assert delivery["retry"] >= 1
        assert delivery["backoffDelay"].startswith("PT")
        assert delivery["deadLetterSink"] == {
            "ref": manifests.SERVICE_REF,
            "uri": "/deadletter",
            "audience": audience,
        }


def test_event_types_for_every_consumed_and_produced_type() -> None:
    """An EventType per type the function consumes or produces, carrying and locating its schema."""
    event_types = {e["spec"]["type"]: e for e in of_kind("EventType")}
    expected = {s.type for s in (*CATALOGUE.consumed, *CATALOGUE.produced)}
    assert set(event_types) == expected
    for type_, event_type in event_types.items():
        spec = event_type["spec"]
        assert event_type["apiVersion"] == "eventing.knative.dev/v1beta2"
        assert spec["schema"].endswith(f"/api/v1/schemas/{type_}")
        assert json.loads(spec["schemaData"]) == CATALOGUE[type_].json_schema()
        assert spec["reference"] == manifests.BROKER_REF


async def test_event_type_schema_urls_are_served_by_the_function() -> None:
    """The path each EventType's `schema` names answers with that type's JSON Schema."""
    async with eventfn.testing.function_client(function_registry) as client:
        for event_type in of_kind("EventType"):
            path = urlparse(event_type["spec"]["schema"]).path
            response = await client.get(path)
            assert response.status_code == httpx.codes.OK
            assert response.json() == CATALOGUE[event_type["spec"]["type"]].json_schema()


def test_exported_json_schemas_equal_the_pydantic_models() -> None:
    """eventing/schemas/<slug>.json is each type's model JSON Schema."""
    for spec in CATALOGUE.values():
        assert json.loads(FILES[f"schemas/{spec.slug}.json"]) == spec.json_schema()


def test_service_autoscaling_uses_kebab_case_annotations() -> None:
    """min-scale 1, max-scale 10, the measured target on concurrency; no camelCase keys."""
    template = load("service.yaml")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "1"
    assert annotations["autoscaling.knative.dev/max-scale"] == "10"
    assert annotations["autoscaling.knative.dev/target"] == str(manifests.TARGET)
    assert annotations["autoscaling.knative.dev/metric"] == "concurrency"
    assert not any(k.endswith(("minScale", "maxScale")) for k in annotations)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert template["spec"]["containerConcurrency"] >= manifests.TARGET
    assert template["spec"]["timeoutSeconds"] > suite_settings().handler_timeout_seconds


def test_scale_to_zero_is_off_by_default_and_renders_min_scale_0_with_a_retention() -> None:
    """Default min-scale 1 and no retention; scale_to_zero: min-scale 0 and the last pod's stay."""
    annotations = load("service.yaml")["spec"]["template"]["metadata"]["annotations"]
    retention = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
    assert annotations["autoscaling.knative.dev/min-scale"] == "1"
    assert retention not in annotations
    deployment = manifests.Deployment(scale_to_zero=True, scale_to_zero_retention_seconds=900)
    service = manifests.resources(CATALOGUE, suite_settings(), deployment)["service.yaml"]
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations[retention] == "900s"


def test_a_container_concurrency_below_the_target_is_refused() -> None:
    """A hard cap under the soft target could never be reached: the Deployment refuses it."""
    with pytest.raises(ValueError, match="below the target"):
        manifests.Deployment(target=50, container_concurrency=40)


def test_the_configmap_is_named_after_its_content_and_kept_by_argo_cd() -> None:
    """ConfigMap name = prefix + content hash (the Service reads that name); Prune=false."""
    configmap = load("configmap.yaml")
    assert configmap["metadata"]["name"] == manifests.configmap_name(configmap["data"])
    assert configmap["metadata"]["annotations"] == {
        "argocd.argoproj.io/sync-options": "Prune=false",
        "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
    }
    assert configmap["metadata"]["labels"]["app.kubernetes.io/component"] == "config"


def test_service_probes_resources_and_configuration() -> None:
    """Probes on the health paths, limits, and env from the ConfigMap and the Secret."""
    container = load("service.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert container["resources"] == manifests.RESOURCES
    assert container["envFrom"] == [
        {"configMapRef": {"name": load("configmap.yaml")["metadata"]["name"]}},
        {"secretRef": {"name": load("secret.example.yaml")["metadata"]["name"]}},
    ]
    assert container["securityContext"]["runAsNonRoot"] is True


def test_configmap_holds_settings_defaults_with_auth_on_and_no_secrets() -> None:
    """Production config: code defaults, JSON logs, OIDC on; credentials only in the Secret."""
    data = load("configmap.yaml")["data"]
    defaults = suite_settings()
    assert data["HANDLER_TIMEOUT_SECONDS"] == str(defaults.handler_timeout_seconds)
    assert data["EVENT_SOURCE"] == defaults.event_source
    assert data["LOG_FORMAT"] == "json"
    assert data["OIDC_AUDIENCE"] == manifests.AUDIENCE
    assert not {"API_KEYS", "REDIS_URL", "PORT", "K_SINK"} & data.keys()
    assert {"API_KEYS", "REDIS_URL"} <= load("secret.example.yaml")["stringData"].keys()


def test_configmap_follows_the_settings_it_is_given() -> None:
    """A setting's value flows into the ConfigMap, lists comma-joined."""
    data = manifests.config_data(suite_settings(max_batch_events=7, cors_origins=["a", "b"]))
    assert data["MAX_BATCH_EVENTS"] == "7"
    assert data["CORS_ORIGINS"] == "a,b"


def test_kustomization_applies_every_manifest_but_never_the_example_secret() -> None:
    """kustomize applies all resources; the placeholder Secret and the Argo CD app stay out."""
    kustomization = load_kustomization()
    assert sorted(kustomization["resources"]) == sorted(
        p for p in YAML_FILES if p != "secret.example.yaml" and not p.startswith("argocd/")
    )
    assert kustomization["images"][0]["name"] == manifests.IMAGE


def load_kustomization() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(FILES["kustomization.yaml"])
    return doc


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_committed_directory() -> None:
    """`kubectl kustomize eventing/` builds, with the image and namespace set."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(manifests.OUT)],  # noqa: S607 - found on PATH above
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert len(docs) == len(load_kustomization()["resources"])
    assert f"image: {manifests.REGISTRY_IMAGE}:" in out
    assert all(d["metadata"].get("namespace") == manifests.NAMESPACE for d in docs[1:])


def test_sink_binding_points_k_sink_of_the_service_at_the_broker() -> None:
    """The SinkBinding's subject is the function's Service and its sink the Broker."""
    (binding,) = of_kind("SinkBinding")
    assert binding["spec"] == {
        "subject": manifests.SERVICE_REF,
        "sink": {"ref": manifests.BROKER_REF},
    }


def test_argocd_application_syncs_eventing_and_ignores_webhook_defaults() -> None:
    """Automated prune + self-heal of eventing/, blind to what Knative's webhooks add."""
    app = load("argocd/application.yaml")
    assert app["spec"]["source"]["path"] == "eventing"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    trigger = next(i for i in app["spec"]["ignoreDifferences"] if i["kind"] == "Trigger")
    assert '.metadata.labels["eventing.knative.dev/broker"]' in trigger["jqPathExpressions"]
    assert ".spec.filter | select(. == {})" in trigger["jqPathExpressions"]


class Ping(BaseModel):
    """A payload for a type added in the test only."""

    n: int


def test_adding_an_event_type_adds_its_trigger_event_types_and_schemas() -> None:
    """A new consumed type in the catalogue is a new Trigger, EventTypes and schema files."""
    pong = EventSpec(type="com.example.pong", model=Ping, description="A pong.")
    ping = EventSpec(
        type="com.example.ping", model=Ping, description="A ping.", consumes=True, reply=pong
    )
    files = manifests.render(Catalogue((*CATALOGUE.specs, ping)), suite_settings())
    added = set(files) - set(FILES)
    assert added == {
        "trigger-com-example-ping.yaml",
        "eventtype-com-example-ping.yaml",
        "eventtype-com-example-pong.yaml",
        "schemas/com-example-ping.json",
        "schemas/com-example-pong.json",
    }
    assert "trigger-com-example-ping.yaml" in files["kustomization.yaml"]


def normalized(doc: dict[str, Any], expressions: list[str]) -> dict[str, Any]:
    """`doc` with each jq path expression deleted in turn, as Argo CD's ignoreDifferences does."""
    program = " | ".join(f"del({e})" for e in expressions)
    out = subprocess.run(
        ["jq", "-c", program],  # noqa: S607 - found on PATH by the skip condition
        input=json.dumps(doc),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def webhook_defaulted(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as Knative's webhooks leave it in the cluster (labels, annotations, defaults)."""
    live = copy.deepcopy(doc)
    group = live["apiVersion"].split("/")[0]
    live["metadata"]["annotations"] = {
        **live["metadata"].get("annotations", {}),
        f"{group}/creator": "admin",
        f"{group}/lastModifier": "admin",
    }
    spec = live["spec"]
    if live["kind"] == "Trigger":
        live["metadata"]["labels"]["eventing.knative.dev/broker"] = spec["broker"]
        spec["subscriber"]["ref"]["namespace"] = manifests.NAMESPACE
        spec["delivery"]["deadLetterSink"]["ref"]["namespace"] = manifests.NAMESPACE
    elif live["kind"] == "Broker":
        spec["config"] = {"apiVersion": "v1", "kind": "ConfigMap", "name": "config-br-default"}
    elif live["kind"] == "SinkBinding":
        spec["subject"]["namespace"] = spec["sink"]["ref"]["namespace"] = manifests.NAMESPACE
    elif live["kind"] == "EventType":
        spec["reference"]["namespace"] = manifests.NAMESPACE
    elif live["kind"] == "Service":
        # What the SinkBinding adds, with authentication-oidc and transport-encryption on.
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        container["env"] = [
            {"name": "K_SINK", "value": "https://broker"},
            {"name": "K_CA_CERTS", "value": "-----BEGIN CERTIFICATE-----..."},
        ]
        pod["volumes"] = [
            {"name": "oidc-token", "projected": {"sources": [{"secret": {"name": "sb-oidc"}}]}},
            {"name": "kne-bundle-knative-eventing-bundle", "projected": {"sources": []}},
        ]
        container["volumeMounts"] = [
            {"name": "oidc-token", "mountPath": "/oidc", "readOnly": True},
            {
                "name": "kne-bundle-knative-eventing-bundle",
                "mountPath": "/knative-custom-certs/knative-eventing-bundle",
                "readOnly": True,
            },
        ]
    return live


def ignore_rules(kind: str) -> list[str]:
    app = load("argocd/application.yaml")
    (rule,) = [r for r in app["spec"]["ignoreDifferences"] if r["kind"] == kind]
    expressions: list[str] = rule["jqPathExpressions"]
    return expressions


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize("kind", ["Trigger", "Broker", "SinkBinding", "EventType", "Service"])
def test_ignore_differences_cancel_exactly_what_the_webhooks_write(kind: str) -> None:
    """Normalized, the webhook-defaulted live object equals the desired one; a real edit stays."""
    desired = of_kind(kind)[0]
    rules = ignore_rules(kind)
    assert normalized(webhook_defaulted(desired), rules) == normalized(desired, rules) == desired
    edited = copy.deepcopy(desired)
    edited["metadata"]["labels"]["drift"] = "yes"
    assert normalized(webhook_defaulted(edited), rules) != desired


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_a_defaulted_empty_trigger_filter_is_ignored_but_a_changed_filter_is_not() -> None:
    """`spec.filter: {}` (the webhook's default for no filter) is ignored; another type is not."""
    rules = ignore_rules("Trigger")
    trigger = copy.deepcopy(of_kind("Trigger")[0])
    trigger["spec"]["filter"] = {}
    assert "filter" not in normalized(trigger, rules)["spec"]
    trigger["spec"]["filter"] = {"attributes": {"type": "other"}}
    assert normalized(trigger, rules)["spec"]["filter"] == {"attributes": {"type": "other"}}


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_a_volume_of_our_own_on_the_service_is_not_ignored() -> None:
    """Only what SinkBinding mounts is ignored: a volume someone adds by hand is drift."""
    rules = ignore_rules("Service")
    service = webhook_defaulted(of_kind("Service")[0])
    service["spec"]["template"]["spec"]["volumes"].append({"name": "scratch", "emptyDir": {}})
    assert normalized(service, rules)["spec"]["template"]["spec"]["volumes"] == [
        {"name": "scratch", "emptyDir": {}}
    ]


def test_only_the_functions_own_identities_may_post_to_the_broker() -> None:
    """The EventPolicy targets the Broker and lets in the SinkBinding (what the function
    publishes) and each Trigger (the filter posts a reply under the Trigger's identity)."""
    (policy,) = of_kind("EventPolicy")
    (binding,) = of_kind("SinkBinding")
    (broker,) = of_kind("Broker")
    assert policy["spec"]["to"] == [
        {
            "ref": {
                "apiVersion": broker["apiVersion"],
                "kind": "Broker",
                "name": broker["metadata"]["name"],
            }
        }
    ]
    allowed = {(f["ref"]["kind"], f["ref"]["name"]) for f in policy["spec"]["from"]}
    triggers = {("Trigger", t["metadata"]["name"]) for t in of_kind("Trigger")}
    assert allowed == {("SinkBinding", binding["metadata"]["name"]), *triggers}
