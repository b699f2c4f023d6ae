"""The Argo CD Application that syncs `eventing/` from git."""

from __future__ import annotations

from typing import Any

from manifests.objects import NAME, NAMESPACE, REPO_URL

POD = ".spec.template.spec"
ENV = f"{POD}.containers[].env"
INJECTED = '.name | startswith("K_")'
# What a SinkBinding mounts with authentication-oidc (the `oidc-token` projected Secret at /oidc)
# and transport-encryption (trust bundles, `kne-bundle-*`, at /knative-custom-certs).
MOUNTED = '.name == "oidc-token" or (.name | startswith("kne-bundle-"))'


def _injected(path: str, test: str) -> tuple[str, str]:
    """The injected items of the list at `path`, and the list itself when only those are in it."""
    return f"{path}[]? | select({test})", f"{path} | select(. != null and all(.[]; {test}))"


def _ignore(group: str, kind: str, *paths: str) -> dict[str, Any]:
    return {"group": group, "kind": kind, "jqPathExpressions": list(paths)}


def _webhook_annotations(prefix: str) -> tuple[str, str, str]:
    """Who created and last changed the object, then the map itself if nothing else is in it."""
    return (
        f'.metadata.annotations["{prefix}/creator"]',
        f'.metadata.annotations["{prefix}/lastModifier"]',
        ".metadata.annotations | select(. == {})",
    )


def application() -> dict[str, Any]:
    """The Argo CD Application syncing `eventing/`, blind only to what Knative's webhooks write."""
    eventing = _webhook_annotations("eventing.knative.dev")
    ignore = [
        # The Trigger webhook labels the Trigger with its broker, defaults a missing filter to
        # `{}` and fills in the namespace of refs; none of that is ours to correct.
        _ignore(
            "eventing.knative.dev",
            "Trigger",
            '.metadata.labels["eventing.knative.dev/broker"]',
            ".spec.filter | select(. == {})",
            ".spec.subscriber.ref.namespace",
            ".spec.delivery.deadLetterSink.ref.namespace",
            *eventing,
        ),
        # The Broker webhook defaults spec.config from config-br-defaults.
        _ignore("eventing.knative.dev", "Broker", ".spec.config", *eventing),
        _ignore("eventing.knative.dev", "EventType", ".spec.reference.namespace", *eventing),
        _ignore(
            "sources.knative.dev",
            "SinkBinding",
            ".spec.subject.namespace",
            ".spec.sink.ref.namespace",
            *_webhook_annotations("sources.knative.dev"),
        ),
        # The SinkBinding injects K_SINK, K_CE_OVERRIDES and K_CA_CERTS into the Service's
        # container, and with OIDC and TLS on, the token and trust-bundle volumes and mounts.
        _ignore(
            "serving.knative.dev",
            "Service",
            *_injected(ENV, INJECTED),
            *_injected(f"{POD}.volumes", MOUNTED),
            *_injected(f"{POD}.containers[].volumeMounts", MOUNTED),
            *_webhook_annotations("serving.knative.dev"),
        ),
    ]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": NAME,
            "namespace": "argocd",
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "eventing"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": [
                    "CreateNamespace=true",
                    "PruneLast=true",
                    "RespectIgnoreDifferences=true",
                    "ApplyOutOfSyncOnly=true",
                ],
                "retry": {
                    "limit": 5,
                    "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"},
                },
            },
            "ignoreDifferences": ignore,
        },
    }
