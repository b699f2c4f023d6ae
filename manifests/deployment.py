"""How the cluster runs the function: scale, resources, rollout, the Secret's name.

These are not the function's settings (`eventfn.core.config.Settings`): no process reads them,
so they stay out of its environment and its ConfigMap, and live with the renderer instead. Like
`REPO_URL`, they change by editing `DEPLOYMENT` below and running `make manifests`; tests build
their own `Deployment(...)`. Every field lands in the Knative Service, so a change of any of them
is a new Revision.

The autoscaling numbers come from `make bench-sweep` (events/s and p99 of one pod at 1 to 128
connections, the deployed configuration, the server on one core as `limits.cpu: 1` gives it);
docs/operations/scaling.md has the table and the rule that picks them.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = "knative-python-backend"


class Deployment(BaseModel):
    """What `eventing/service.yaml` asks of Knative for the function's Revisions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_scale: int = Field(
        default=1, ge=1, description="Replicas kept warm when scale to zero is off."
    )
    max_scale: int = Field(default=10, ge=1, description="Most replicas Knative may run.")
    target: int = Field(
        default=46,  # make bench-sweep: knee 32 connections / 70% (docs/operations/scaling.md)
        ge=1,
        description=(
            "Soft concurrency target per replica (the KPA keeps 70% of it in flight on average)."
        ),
    )
    container_concurrency: int = Field(
        default=128,  # make bench-sweep: the most connections with p99 within 100 ms
        ge=0,
        description="Hard cap of requests in flight per replica; more wait in the queue-proxy.",
    )
    # A pod at target is at the knee, its one event loop busy: it uses its core (the rule).
    cpu_request: str = Field(default="1", description="CPU the scheduler reserves per pod.")
    cpu_limit: str = Field(default="1", description="CPU one pod may use at most.")
    memory_request: str = Field(default="256Mi")
    memory_limit: str = Field(default="512Mi")
    scale_to_zero: bool = Field(
        default=False,
        description=(
            "min-scale 0: no pod while idle, and the first event after that pays a cold start "
            "(docs/operations/scaling.md has it measured)."
        ),
    )
    scale_to_zero_retention_seconds: int = Field(
        default=600,
        ge=0,
        description=(
            "With scale_to_zero: how long the last pod stays after traffic stops, so a quiet "
            "spell shorter than this pays no cold start."
        ),
    )
    rollout_duration_seconds: int = Field(
        default=0,
        ge=0,
        description=(
            "Gradual rollout: a new Revision gets 1% of the traffic, then the rest in steps over "
            "this many seconds (0: all at once, as soon as it is ready)."
        ),
    )
    traffic_to_revision: str | None = Field(
        default=None,
        description=(
            "Rollback by traffic: every request to this earlier Revision (e.g. "
            "`knative-python-backend-00004`), the latest one kept reachable under the `latest` "
            "tag; unset: all traffic to the latest ready Revision."
        ),
    )
    secret_name: str = Field(
        default=f"{NAME}-secrets",
        min_length=1,
        description=(
            "The Secret the pods read: created out of band; a rotation under a new name is a "
            "new Revision (docs/deploy/rollout.md)."
        ),
    )

    @model_validator(mode="after")
    def _cap_above_target(self) -> Self:
        # 0 means "no cap" to Knative; any other cap below the target could never be reached.
        if 0 < self.container_concurrency < self.target:
            raise ValueError(
                f"container_concurrency ({self.container_concurrency}) is below the target "
                f"({self.target})"
            )
        if self.max_scale < self.min_scale:
            raise ValueError(f"max_scale ({self.max_scale}) < min_scale ({self.min_scale})")
        return self

    @property
    def resources(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }

    @property
    def rendered_min_scale(self) -> int:
        return 0 if self.scale_to_zero else self.min_scale


DEPLOYMENT = Deployment()
