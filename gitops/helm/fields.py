"""Value types shared by the sections of the Helm values: quantities, resources, env, images.

Sits under `gitops.helm.models` and `gitops.helm.gitops_block`, which build the `Values`
schema from these pieces; the install renderer (`gitops.install`) reads them back to write
Deployments (`Image.reference`, `EnvVar.manifest`, `Resources.manifest`), and the cross-field
rules (`gitops.helm.rules`) compare CPU quantities with `cpu_cores`.

Conventions are the spec models' (`gitops.models.base.GlooModel`): strict, frozen, camelCase in
YAML, unknown keys refused. One addition for Helm: a key set to `null` means "the chart's
default" (Helm deletes null keys when it merges values over the chart's defaults), so
`ValuesModel` drops null keys before validating. Free-form mappings (`deploymentOverrides`)
are not models and keep their nulls, which remove keys from the rendered template.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from gitops.models.base import GlooModel

# -- base ---------------------------------------------------------------------------------


class ValuesModel(GlooModel):
    """Base of every Helm values section: `GlooModel`'s conventions, null = default."""

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


def _drop_nulls(data: Any) -> Any:
    # For mappings of user-chosen keys (extraEnvs, requests): `FOO: null` removes FOO.
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if v is not None}
    return data


# -- names --------------------------------------------------------------------------------

# A Kubernetes object name (RFC 1123 subdomain): what a Secret name must be.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Kubernetes' C_IDENTIFIER rule for environment variable names.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A container image tag (OCI distribution spec).
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _secret_name(name: str) -> str:
    if len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a Secret name (lowercase letters, digits, '-' and '.', "
            "at most 253 characters)"
        )
    return name


def _env_name(name: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise ValueError(f"{tag!r} is not an image tag")
    return tag


#: The name of a Secret in the install namespace. Values hold names only, never secret data.
SecretName = Annotated[str, AfterValidator(_secret_name)]
EnvName = Annotated[str, AfterValidator(_env_name)]

# -- quantities ---------------------------------------------------------------------------

# Kubernetes resource.Quantity: a decimal number and a binary-SI, decimal-SI or exponent
# suffix (k8s.io/apimachinery/pkg/api/resource/quantity.go). Negative values are refused:
# no resource request can be negative.
_QUANTITY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?\d+)?")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def quantity_value(text: str) -> Decimal:
    """The number a quantity stands for (`500m` -> 0.5, `1Gi` -> 1073741824)."""
    m = _QUANTITY.fullmatch(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity (e.g. '500m', '2', '1.5', '512Mi')"
        )
    number, suffix = Decimal(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        return number * Decimal(1024 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        return number.scaleb(int(suffix[1:]))
    return number


def _quantity(value: object) -> str:
    # YAML `cpu: 2` or `cpu: 0.5` are numbers; Kubernetes accepts them, so do we (as text).
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a quantity such as '500m' or '2', got {value!r}")
    text = value if isinstance(value, str) else str(value)
    quantity_value(text)
    return text


#: A Kubernetes quantity, kept as written (`500m`, `2`, `1.5`, `512Mi`).
Quantity = Annotated[str, BeforeValidator(_quantity)]


def cpu_cores(quantity: str | None) -> Decimal | None:
    """CPU cores a quantity stands for (`500m` -> 0.5), None when unset."""
    return None if quantity is None else quantity_value(quantity)


# -- resources ----------------------------------------------------------------------------


class ResourceList(ValuesModel):
    """CPU and memory amounts (a Kubernetes ResourceList restricted to what we size)."""

    #: CPU in cores (`500m` = half a core).
    cpu: Quantity | None = None
    #: Memory in bytes (`512Mi`, `1Gi`).
    memory: Quantity | None = None


class Resources(ValuesModel):
    """A container's Kubernetes ResourceRequirements. Setting it replaces the default whole."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        # Kubernetes refuses a pod whose request exceeds its limit; say so before it does.
        for name in ("cpu", "memory"):
            request = getattr(self.requests, name, None) if self.requests else None
            limit = getattr(self.limits, name, None) if self.limits else None
            if (
                request is not None
                and limit is not None
                and quantity_value(request) > quantity_value(limit)
            ):
                raise ValueError(f"requests.{name} {request} is more than limits.{name} {limit}")
        return self

    def manifest(self) -> dict[str, Any]:
        """The `resources` of a container spec."""
        return self.model_dump(by_alias=True, exclude_none=True)


def resources(cpu: str, memory: str) -> Resources:
    """Default resources: requests only, so a pod can burst but is never BestEffort."""
    return Resources(requests=ResourceList(cpu=cpu, memory=memory))


# -- environment --------------------------------------------------------------------------


class KeyRef(ValuesModel):
    """`secretKeyRef` / `configMapKeyRef`: one key of a Secret or ConfigMap."""

    name: str
    key: str
    optional: bool | None = None


class FieldRef(ValuesModel):
    """`fieldRef`: a field of the pod (`metadata.namespace`, `status.podIP`)."""

    field_path: str
    api_version: str | None = None


class ResourceFieldRef(ValuesModel):
    """`resourceFieldRef`: a container's request or limit (`limits.cpu`)."""

    resource: str
    container_name: str | None = None
    divisor: Quantity | None = None


class EnvVarSource(ValuesModel):
    """`valueFrom` of a Kubernetes EnvVar: exactly one source."""

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None
    field_ref: FieldRef | None = None
    resource_field_ref: ResourceFieldRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        set_ = [name for name, value in self if value is not None]
        if len(set_) != 1:
            raise ValueError(
                "set exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef"
            )
        return self


class EnvVar(ValuesModel):
    """One `extraEnvs` entry, as in the Gloo chart: `{value: "..."}` or `{valueFrom: {...}}`."""

    value: str | None = None
    value_from: EnvVarSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> Self:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("set exactly one of 'value' and 'valueFrom'")
        return self

    def manifest(self, name: str) -> dict[str, Any]:
        """The container `env` entry."""
        return {"name": name, **self.model_dump(by_alias=True, exclude_none=True)}


#: `extraEnvs`: environment variable name -> value or source. Added to the container's
#: environment; a name the renderer also sets is replaced by this one.
ExtraEnvs = Annotated[dict[EnvName, EnvVar], BeforeValidator(_drop_nulls)]

# -- images -------------------------------------------------------------------------------

PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class Image(ValuesModel):
    """A container image: `<registry>/<repository>:<tag>`. Defaults: our own image."""

    #: Registry and path prefix; empty for Docker Hub short names.
    registry: str = "ghcr.io/mesh-gitops"
    repository: Annotated[str, Field(min_length=1)] = "mesh-gitops"
    #: Default: the version of the `gitops` CLI that renders the manifests.
    tag: Annotated[str, AfterValidator(_tag)] | None = None
    pull_policy: PullPolicy = "IfNotPresent"

    def reference(self, default_tag: str) -> str:
        """`registry/repository:tag`, with `default_tag` when no tag is set."""
        name = (
            f"{self.registry.rstrip('/')}/{self.repository}" if self.registry else self.repository
        )
        return f"{name}:{self.tag or default_tag}"

    @property
    def fips(self) -> bool:
        """A FIPS 140 build: Solo's convention is an image tag ending in `-fips`."""
        return self.tag is not None and self.tag.endswith("-fips")


class RedisImage(Image):
    """The bundled Redis image. 7.4.6 carries the fix for CVE-2025-49844 (Lua use-after-free)."""

    registry: str = "docker.io/library"
    repository: Annotated[str, Field(min_length=1)] = "redis"
    tag: Annotated[str, AfterValidator(_tag)] | None = "7.4.6-alpine"
