"""Spec models of the first-wave policies: retry/timeout, fault injection, failover,
outlier detection and header manipulation.

`resilience.policy.gloo.solo.io/v2` and `trafficcontrol.policy.gloo.solo.io/v2`, from
solo-apis `api/gloo.solo.io/policy/v2/resilience/{retry_timeout,fault_injection,failover,
outlier_detection}_policy.proto` and `trafficcontrol/header_manipulation.proto`. The
loader validates `spec` with these; the route-policy decorators of the VirtualService
translator and the DestinationRule translator read them (gloo-semantics.md 3.4, 3.5).
An empty `applyTo*` list selects every route/destination of the policy's workspace.
"""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import Field, model_validator

from gitops.models.base import GlooModel
from gitops.models.common import (
    DestinationSelector,
    Locality,
    MsDuration,
    RouteDestinationSelector,
    RouteSelector,
    split_weights,
    weights_problem,
)

#: A DoubleValue percentage of requests; unset means all of them.
Percentage = Annotated[float, Field(ge=0, le=100)]

# -- RetryTimeoutPolicy ----------------------------------------------------------------------

# retry_timeout_policy.proto `retryOn`: a comma-separated list without empty items.
_RETRY_ON = re.compile(r"[^,]+(?:,[^,]+)*")


class Retries(GlooModel):
    """Retries of a failed request (proto `RetryPolicy`); 0 attempts disables retries."""

    attempts: Annotated[int, Field(ge=0, le=2_147_483_647)] = 2
    per_try_timeout: MsDuration | None = None
    # Envoy retry conditions, comma-separated ("connect-failure,5xx").
    retry_on: str | None = None
    retry_remote_localities: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.retry_on is not None and not _RETRY_ON.fullmatch(self.retry_on):
            raise ValueError(
                f"'retryOn: {self.retry_on}' must be a comma-separated list, e.g. '5xx,reset'"
            )
        if self.attempts == 0:
            extra = [
                name
                for name, value in (
                    ("perTryTimeout", self.per_try_timeout),
                    ("retryOn", self.retry_on),
                    ("retryRemoteLocalities", self.retry_remote_localities),
                )
                if value is not None
            ]
            if extra:
                # Proto CEL rule on RetryPolicy.
                raise ValueError(f"with 'attempts: 0' (no retries), do not set {extra}")
        return self


class RetryTimeoutConfig(GlooModel):
    retries: Retries | None = None
    request_timeout: MsDuration | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.retries is None and self.request_timeout is None:
            raise ValueError("set 'retries', 'requestTimeout' or both")
        return self


class RetryTimeoutPolicySpec(GlooModel):
    """Route policy: `timeout` and `retries` of the selected routes."""

    apply_to_routes: list[RouteSelector] = Field(default_factory=list)
    config: RetryTimeoutConfig


# -- FaultInjectionPolicy --------------------------------------------------------------------


class FaultDelay(GlooModel):
    fixed_delay: MsDuration
    percentage: Percentage = 100.0


class FaultAbort(GlooModel):
    http_status: Annotated[int, Field(ge=200, le=599)]
    percentage: Percentage = 100.0


class FaultInjectionConfig(GlooModel):
    """Delay and abort are independent; when both are set the delay comes first."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.delay is None and self.abort is None:
            raise ValueError("set 'delay', 'abort' or both")
        return self


class FaultInjectionPolicySpec(GlooModel):
    """Route policy: `fault` of the selected routes."""

    apply_to_routes: list[RouteSelector] = Field(default_factory=list)
    config: FaultInjectionConfig


# -- FailoverPolicy --------------------------------------------------------------------------


class LocalityTo(GlooModel):
    """A failover target (proto `DestinationLocality`); weights follow the route rule."""

    region: Annotated[str, Field(min_length=1)]
    zone: str | None = None
    sub_zone: str | None = None
    weight: Annotated[int, Field(ge=0, le=100)] | None = None


class LocalityMapping(GlooModel):
    """Fail over from one locality to others (proto `LocalityMappings`)."""

    # `from` is a Python keyword.
    from_: Locality = Field(alias="from")
    to: list[LocalityTo] = Field(default_factory=list)

    @model_validator(mode="after")
    def _weights(self) -> Self:
        problem = weights_problem([t.weight for t in self.to], "'to' locality")
        if problem:
            raise ValueError(problem)
        return self

    def effective_weights(self) -> list[int]:
        """Weights of `to` summing to 100, unset weights sharing the remainder."""
        return split_weights([t.weight for t in self.to])


class PriorityLabels(GlooModel):
    """Label keys (`region`) or key=value pairs, in priority order."""

    labels: list[str] = Field(default_factory=list)


class FailoverConfig(GlooModel):
    """Both set is allowed: Gloo gives `localityMappings` precedence (proto comment)."""

    locality_mappings: list[LocalityMapping] = Field(default_factory=list)
    priority_labels: PriorityLabels | None = None


class FailoverPolicySpec(GlooModel):
    """Destination policy: locality failover (VirtualDestinations only, per the proto)."""

    apply_to_destinations: list[DestinationSelector] = Field(default_factory=list)
    config: FailoverConfig = Field(default_factory=FailoverConfig)


# -- OutlierDetectionPolicy ------------------------------------------------------------------


class OutlierDetectionConfig(GlooModel):
    """Ejection of failing endpoints; defaults are Gloo's (section 1.2)."""

    consecutive_errors: Annotated[int, Field(ge=1, le=2_147_483_647)] = 5
    interval: MsDuration = 10_000_000_000
    base_ejection_time: MsDuration = 30_000_000_000
    max_ejection_percent: Annotated[int, Field(ge=0, le=100)] = 100
    # 0 turns gateway-error ejection off.
    consecutive_gateway_errors: Annotated[int, Field(ge=0, le=2_147_483_647)] = 0


class OutlierDetectionPolicySpec(GlooModel):
    """Destination policy: `outlierDetection` in the destination's DestinationRule."""

    apply_to_destinations: list[DestinationSelector] = Field(default_factory=list)
    config: OutlierDetectionConfig = Field(default_factory=OutlierDetectionConfig)


# -- HeaderManipulationPolicy ----------------------------------------------------------------


class HeaderManipulationConfig(GlooModel):
    append_request_headers: dict[str, str] = Field(default_factory=dict)
    remove_request_headers: list[str] = Field(default_factory=list)
    append_response_headers: dict[str, str] = Field(default_factory=dict)
    remove_response_headers: list[str] = Field(default_factory=list)


class HeaderManipulationPolicySpec(GlooModel):
    """Route policy: `headers` of the selected routes, or of destinations inside them."""

    apply_to_routes: list[RouteSelector] = Field(default_factory=list)
    apply_to_route_destinations: list[RouteDestinationSelector] = Field(default_factory=list)
    config: HeaderManipulationConfig = Field(default_factory=HeaderManipulationConfig)
