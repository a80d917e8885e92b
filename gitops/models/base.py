"""Base of the typed models: strict, frozen, camelCase, unknown fields refused.

Every Gloo resource model in `gitops.models` derives from `GlooModel`. The loader
(`gitops.loading`) validates each document's `metadata` with `ObjectMeta` and its
`spec` with the kind's spec model, and turns pydantic errors into `Diagnostic`s
with the field path (`spec.http[0].forwardTo.destinations[1].weight`).

Conventions:
- field names are snake_case in Python and camelCase in YAML (`alias_generator`);
- strict mode: YAML `"9080"` is not a port number, `true` is not a label value;
- enums are `Literal[...]` of the proto names (strict mode refuses str -> Enum);
- durations are `Duration` (nanoseconds, parsed from Go syntax);
- unknown fields are errors (`extra="forbid"`), so typos are caught with their path.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gitops import durations


class GlooModel(BaseModel):
    """Base class of every spec model."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        hide_input_in_errors=True,
    )


def _duration(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError(f"expected a duration string like '0.5s' or '1h30m', got {value!r}")
    try:
        return durations.parse(value)
    except durations.DurationError as exc:
        raise ValueError(str(exc)) from None


def _positive(nanos: int) -> int:
    if nanos < 1_000_000:
        raise ValueError("duration must be at least 1ms")
    return nanos


#: A duration written in Go syntax (`0.5s`, `2m`, `1h30m`), held as nanoseconds.
Duration = Annotated[int, BeforeValidator(_duration)]
#: A duration of at least one millisecond (Istio refuses shorter timeouts).
PositiveDuration = Annotated[int, BeforeValidator(_duration), AfterValidator(_positive)]

Port = Annotated[int, Field(ge=1, le=65535)]
Labels = dict[str, str]


class ObjectMeta(BaseModel):
    """`metadata` of a config object. Server-set fields are accepted and ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, hide_input_in_errors=True)

    name: Annotated[str, Field(min_length=1, max_length=253)]
    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    # RFC 3339; decides which of two conflicting resources wins (spec 3.8).
    creationTimestamp: str | None = None
    # Written by Kubernetes, harmless when copied from `kubectl get -o yaml`.
    generation: int | None = None
    resourceVersion: str | None = None
    uid: str | None = None
    managedFields: list[Any] | None = None
    finalizers: list[str] | None = None
    ownerReferences: list[Any] | None = None
    generateName: str | None = None
