"""`python -m manifests.prune`: the config ConfigMaps no Revision reads any more, to delete.

Each configuration is a ConfigMap of its own (`configmap_name`), which Argo CD never prunes
(`Prune=false`): an earlier Revision may still be started from it. They are bounded by
Knative's Revision garbage collection (the cluster's `config-gc`: by default a Revision not
routed to goes after 48 hours, keeping the 20 most recent) and by this command, which
names the ConfigMaps of this function that no remaining Revision references and that the
current `eventing/` does not render:

    kubectl -n knative-python-backend get revisions,configmaps \\
      -l app.kubernetes.io/name=knative-python-backend -o json \\
      | python -m manifests.prune | xargs -r kubectl -n knative-python-backend delete

Pure over the JSON it reads, so it is tested without a cluster (tests/repo/test_rollout.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from manifests.objects import CONFIG_LABELS, code_defaults, config_data, configmap_name


def referenced(revision: Mapping[str, Any]) -> set[str]:
    """The ConfigMaps a Revision's containers read as environment (envFrom, env valueFrom)."""
    names = set()
    for container in revision.get("spec", {}).get("containers", []):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                names.add(source["configMapRef"]["name"])
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                names.add(ref["name"])
    return names


def _is_config(item: Mapping[str, Any]) -> bool:
    labels = item.get("metadata", {}).get("labels", {})
    return item.get("kind") == "ConfigMap" and all(
        labels.get(k) == v for k, v in CONFIG_LABELS.items()
    )


def unreferenced(items: Iterable[Mapping[str, Any]], keep: Iterable[str] = ()) -> list[str]:
    """`configmap/<name>` of each config ConfigMap in `items` no Revision in `items` reads,
    except those in `keep` (what `eventing/` renders now: its Revision may not exist yet)."""
    items = list(items)
    used = set(keep)
    for item in items:
        if item.get("kind") == "Revision":
            used |= referenced(item)
    return sorted(
        f"configmap/{item['metadata']['name']}"
        for item in items
        if _is_config(item) and item["metadata"]["name"] not in used
    )


def main() -> int:
    """Read `kubectl get revisions,configmaps -o json` on stdin; print what to delete."""
    listing = json.load(sys.stdin)
    current = configmap_name(config_data(code_defaults()))
    for name in unreferenced(listing.get("items", []), keep=[current]):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
