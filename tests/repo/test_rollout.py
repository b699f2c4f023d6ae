"""Configuration rolls out as a Revision, and rolls back: two commits' worth of `eventing/`.

Argo CD applies `kubectl kustomize eventing/`. Each test copies the committed `eventing/` to a
folder of its own (commit 1), renders a changed setting over a second copy (commit 2), renders the
setting back over a third (the revert), and builds each with `kubectl kustomize`. Knative makes a
Revision exactly when the Service's `spec.template` changes, so that is what is compared; what a
pod of a Revision gets as its environment is resolved from the built objects.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import manifests
from eventfn.core.config import Settings
from manifests.deployment import DEPLOYMENT, Deployment
from manifests.objects import code_defaults
from manifests.prune import unreferenced
from schemas import CATALOGUE
from tests.repo.test_manifests import needs_crds, validate

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not installed (`make kubectl`; .ci/run installs it)"
)
Key = tuple[str, str]


def commit(
    folder: Path, settings: Settings | None = None, deployment: Deployment = DEPLOYMENT
) -> Path:
    """`eventing/` as committed, copied to `folder`, then rendered anew from these inputs."""
    shutil.copytree(manifests.OUT, folder)
    manifests.write(folder, manifests.render(CATALOGUE, settings or code_defaults(), deployment))
    return folder


def kustomize(folder: Path) -> str:
    """What Argo CD applies for `folder`: `kubectl kustomize`'s output."""
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def objects(built: str) -> dict[Key, dict[str, Any]]:
    """The built objects by (kind, name)."""
    docs = [d for d in yaml.safe_load_all(built) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def template(built: str) -> dict[str, Any]:
    found: dict[str, Any] = objects(built)[("Service", manifests.NAME)]["spec"]["template"]
    return found


def pod_environment(live: Mapping[Key, dict[str, Any]], revision: dict[str, Any]) -> dict[str, str]:
    """The environment a pod of `revision` (a Service template) starts with, from the ConfigMaps
    in `live`; fails as the kubelet would when one is missing."""
    env: dict[str, str] = {}
    for source in revision["spec"]["containers"][0]["envFrom"]:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert ("ConfigMap", name) in live, f"ConfigMap {name} is gone: the pod cannot start"
            env.update(live[("ConfigMap", name)]["data"])
    return env


def sync(live: Mapping[Key, dict[str, Any]], desired: str) -> dict[Key, dict[str, Any]]:
    """What an automated Argo CD sync with prune leaves: every desired object, and of the live
    ones no longer desired only those whose live annotations say `Prune=false`."""
    wanted = objects(desired)
    kept = {
        key: doc
        for key, doc in live.items()
        if key not in wanted
        and "Prune=false"
        in doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options", "")
    }
    return {**kept, **wanted}


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with none of the function's settings in it."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def debug(settings: Settings) -> Settings:
    return settings.model_copy(update={"log_level": "debug"})


@needs_kubectl
def test_a_changed_setting_is_a_new_template_and_the_pods_get_the_new_value(
    tmp_path: Path, settings_env: pytest.MonkeyPatch
) -> None:
    """LOG_LEVEL changed: the Service template differs, and its pods read LOG_LEVEL=debug."""
    before = kustomize(commit(tmp_path / "1"))
    after = kustomize(commit(tmp_path / "2", debug(code_defaults())))
    assert template(after) != template(before)
    live = sync(objects(before), after)
    env = pod_environment(live, template(after))
    assert env["LOG_LEVEL"] == "debug"
    for name, value in env.items():
        settings_env.setenv(name, value)
    assert Settings().log_level == "debug"  # what the function reads from that environment


@needs_kubectl
def test_the_reverted_tree_renders_the_old_template_byte_for_byte(tmp_path: Path) -> None:
    """Change a setting, then change it back: the build is the first one, byte for byte."""
    before = kustomize(commit(tmp_path / "1"))
    changed = commit(tmp_path / "2", debug(code_defaults()))
    reverted = tmp_path / "3"
    shutil.copytree(changed, reverted)
    manifests.write(reverted, manifests.render(CATALOGUE, code_defaults()))
    assert kustomize(reverted) == before
    assert yaml.safe_dump(template(kustomize(reverted))) == yaml.safe_dump(template(before))


@needs_kubectl
def test_the_previous_revisions_configmap_survives_the_next_sync(tmp_path: Path) -> None:
    """After the sync of a config change, the previous Revision's ConfigMap is still there,
    unchanged, so that Revision can start again (rollback by traffic, scale from zero)."""
    before = kustomize(commit(tmp_path / "1"))
    after = kustomize(commit(tmp_path / "2", debug(code_defaults())))
    first = objects(before)
    live = sync(first, after)
    previous = template(before)
    assert pod_environment(live, previous)["LOG_LEVEL"] == "info"
    (name,) = [s["configMapRef"]["name"] for s in previous["spec"]["containers"][0]["envFrom"][:1]]
    assert live[("ConfigMap", name)] == first[("ConfigMap", name)]
    # and the revert: the old ConfigMap is the desired one again, the newer one stays behind
    reverted = sync(live, before)
    assert pod_environment(reverted, template(after))["LOG_LEVEL"] == "debug"


@needs_kubectl
def test_nothing_but_the_configmaps_outlives_a_sync(tmp_path: Path) -> None:
    """Prune=false is on the ConfigMaps only: every other object a sync stops rendering goes."""
    before = objects(kustomize(commit(tmp_path / "1")))
    kept = {key for key, doc in before.items() if sync({key: doc}, "") == {key: doc}}
    assert kept == {key for key in before if key[0] == "ConfigMap"}


@needs_kubectl
def test_a_changed_deployment_setting_is_a_new_template(tmp_path: Path) -> None:
    """Scale settings live in the template too: changing one is a new Revision."""
    before = kustomize(commit(tmp_path / "1"))
    after = kustomize(commit(tmp_path / "2", deployment=Deployment(max_scale=20)))
    assert template(after) != template(before)


def test_every_configmap_setting_changes_the_configmaps_name_and_the_template() -> None:
    """Any one value of the ConfigMap changed gives another name, so another template."""
    defaults = code_defaults()
    data = manifests.config_data(defaults)
    names = {manifests.configmap_name({**data, key: value + "x"}) for key, value in data.items()}
    assert len(names) == len(data)
    assert manifests.configmap_name(data) not in names


def test_a_secret_rotated_under_a_new_name_is_a_new_template() -> None:
    """The Secret is read by name: a new name (the rotation procedure) changes the template."""
    rotated = Deployment(secret_name=f"{manifests.NAME}-secrets-2")
    old = manifests.resources(CATALOGUE, code_defaults())["service.yaml"]["spec"]["template"]
    new = manifests.resources(CATALOGUE, code_defaults(), rotated)["service.yaml"]
    assert new["spec"]["template"] != old
    assert {"secretRef": {"name": rotated.secret_name}} in new["spec"]["template"]["spec"][
        "containers"
    ][0]["envFrom"]
    secret = yaml.safe_load(
        manifests.render(CATALOGUE, code_defaults(), rotated)["secret.example.yaml"]
    )
    assert secret["metadata"]["name"] == rotated.secret_name


def test_gradual_rollout_is_rendered_on_the_service_when_set() -> None:
    """rollout_duration_seconds: the Service's serving.knative.dev/rollout-duration; 0: none."""
    plain = manifests.resources(CATALOGUE, code_defaults())["service.yaml"]
    assert "annotations" not in plain["metadata"]
    gradual = manifests.resources(
        CATALOGUE, code_defaults(), Deployment(rollout_duration_seconds=300)
    )["service.yaml"]
    assert gradual["metadata"]["annotations"] == {"serving.knative.dev/rollout-duration": "300s"}


def configmap_item(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def revision_item(*configmaps: str) -> dict[str, Any]:
    containers = [{"envFrom": [{"configMapRef": {"name": n}} for n in configmaps]}]
    return {"kind": "Revision", "metadata": {"name": "r"}, "spec": {"containers": containers}}


def test_prune_names_the_config_configmaps_no_revision_reads() -> None:
    """Of this function's config ConfigMaps, those no Revision reads and not current go."""
    labels = dict(manifests.objects.CONFIG_LABELS)
    items = [
        configmap_item("c-old", **labels),
        configmap_item("c-used", **labels),
        configmap_item("c-current", **labels),
        configmap_item("someone-elses"),
        revision_item("c-used"),
    ]
    assert unreferenced(items, keep=["c-current"]) == ["configmap/c-old"]


def test_prune_keeps_a_configmap_read_through_a_single_key() -> None:
    """A Revision that reads one key (env valueFrom) still holds its ConfigMap."""
    labels = dict(manifests.objects.CONFIG_LABELS)
    revision = revision_item()
    revision["spec"]["containers"][0]["env"] = [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c-key", "key": "X"}}}
    ]
    assert unreferenced([configmap_item("c-key", **labels), revision]) == []


def test_rollback_by_traffic_sends_every_request_to_the_named_revision() -> None:
    """traffic_to_revision: 100% to that Revision, the latest at 0% under the `latest` tag."""
    assert "traffic" not in manifests.resources(CATALOGUE, code_defaults())["service.yaml"]["spec"]
    pinned = Deployment(traffic_to_revision=f"{manifests.NAME}-00004")
    service = manifests.resources(CATALOGUE, code_defaults(), pinned)["service.yaml"]
    assert service["spec"]["traffic"] == [
        {"revisionName": f"{manifests.NAME}-00004", "percent": 100},
        {"latestRevision": True, "percent": 0, "tag": "latest"},
    ]


@needs_crds
def test_the_rollout_and_rollback_settings_render_a_valid_service() -> None:
    """Traffic pinned, gradual rollout, scale to zero: the Service still validates."""
    deployment = Deployment(
        traffic_to_revision=f"{manifests.NAME}-00004",
        rollout_duration_seconds=120,
        scale_to_zero=True,
    )
    validate(manifests.resources(CATALOGUE, code_defaults(), deployment)["service.yaml"])
