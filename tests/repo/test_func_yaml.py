"""func.yaml: valid for knative/func, and saying what eventing/service.yaml says."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jsonschema
import pytest
import yaml

import manifests
from tests.helpers.support import ROOT, SHARED

SCHEMA = SHARED / "knative-crds" / "func_yaml-schema.json"


def func_yaml() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "func.yaml").read_text())
    created = doc.get("created")
    if isinstance(created, dt.datetime):  # YAML reads the timestamp; func's schema wants text
        doc["created"] = created.isoformat().replace("+00:00", "Z")
    return doc


@pytest.mark.skipif(not SCHEMA.is_file(), reason=f"func's JSON schema not present at {SCHEMA}")
def test_func_yaml_is_valid_against_funcs_own_schema() -> None:
    """func.yaml validates against knative/func's func_yaml-schema.json (unknown keys rejected)."""
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft4Validator(
        schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    validator.validate(func_yaml())


def test_func_yaml_declares_a_python_http_function_built_with_s2i() -> None:
    """The current spec version, the python runtime, http invocation and the s2i builder.

    `http`: func-python's scaffolding for it hands every request and WebSocket to the app as
    is; the `cloudevent` one refuses what is not a CloudEvent (the facade, /metrics).
    """
    doc = func_yaml()
    assert doc["specVersion"] == "0.36.0"
    assert doc["name"] == manifests.NAME
    assert doc["runtime"] == "python"
    assert doc["invoke"] == "http"
    assert doc["build"]["builder"] == "s2i"
    assert "python-312" in doc["build"]["builderImages"]["s2i"]


def test_func_yaml_takes_its_configuration_from_the_rendered_configmap_and_secret() -> None:
    """run.envs import the ConfigMap and Secret that eventing/ uses."""
    values = [env["value"] for env in func_yaml()["run"]["envs"]]
    configmap = yaml.safe_load(manifests.render()["configmap.yaml"])["metadata"]["name"]
    assert f"{{{{ configMap:{configmap} }}}}" in values
    assert f"{{{{ secret:{manifests.NAME}-secrets }}}}" in values


def test_func_yaml_deploys_like_the_knative_service() -> None:
    """Health endpoints, scale and resources equal those of eventing/service.yaml."""
    deploy = func_yaml()["deploy"]
    assert deploy["healthEndpoints"] == {
        "liveness": "/health/liveness",
        "readiness": "/health/readiness",
    }
    assert deploy["options"]["scale"] == {
        "min": manifests.MIN_SCALE,
        "max": manifests.MAX_SCALE,
        "metric": "concurrency",
        "target": manifests.TARGET,
    }
    resources = deploy["options"]["resources"]
    limits = {k: v for k, v in resources["limits"].items() if k != "concurrency"}
    assert {"requests": resources["requests"], "limits": limits} == manifests.RESOURCES
    assert resources["limits"]["concurrency"] == manifests.CONTAINER_CONCURRENCY
