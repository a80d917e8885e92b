"""The loaded config repository: `Bundle`, the value between loading and translation.

`gitops.loading.load` builds it from a `Tree`; the translators read it; the
controller keeps it per commit. Everything is immutable and sorted, so two
loads of the same tree are equal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from gitops import parsing
from gitops.diagnostics import Diagnostic, Source
from gitops.helm.models import Values
from gitops.ids import ObjectRef, Revision
from gitops.models.base import GlooModel, ObjectMeta

S = TypeVar("S", bound=GlooModel)

#: The annotation that pins a config object (or an output) to a cluster (skv2 ezkube).
CLUSTER_ANNOTATION = "cluster.solo.io/cluster"


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 timestamp -> aware UTC datetime (raises ValueError)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (use e.g. '2024-05-01T12:00:00Z')")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ConfigObject(Generic[S]):
    """One valid Gloo resource from the repository."""

    ref: ObjectRef
    group: str
    version: str
    meta: ObjectMeta
    spec: S
    source: Source
    #: Index of the document inside its file (for locating fields on demand).
    doc_index: int
    #: The cluster the object lives in: its `cluster.solo.io/cluster` pin, else the config cluster.
    cluster: str

    @property
    def kind(self) -> str:
        return self.ref.kind

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def age_key(self) -> tuple[bool, str, str, str]:
        """Sort key for 'earliest created wins' (spec 3.8): undated objects come last,
        ties are broken by namespace/name."""
        stamp = self.meta.creationTimestamp
        iso = parse_timestamp(stamp).isoformat() if stamp else ""
        return (not stamp, iso, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class HelmValues:
    """The Helm values of `helm/`, checked by `gitops.helm.validation`.

    A file with schema errors (or a `common.cluster` naming another cluster) is not used:
    it is reported, listed in `Bundle.unreadable_files`, and absent here.
    """

    #: `helm/mgmt-plane.yaml` as written (empty when absent or unreadable).
    mgmt_plane: Mapping[str, Any] = field(default_factory=dict)
    #: Typed values of each usable `helm/data-plane/<cluster>.yaml`, by cluster name.
    data_plane: Mapping[str, Values] = field(default_factory=dict)
    #: Typed values of `helm/mgmt-plane.yaml`: the chart's defaults when there is no such
    #: file, None when the file cannot be used.
    mgmt: Values | None = field(default_factory=Values)

    def trust_domain(self, cluster: str) -> str:
        """The cluster's Istio trust domain: its data-plane `gitops.mesh.trustDomain`, else
        the cluster name (also when its data-plane values are missing or unusable)."""
        values = self.data_plane.get(cluster)
        configured = values.gitops.mesh.trust_domain if values is not None else None
        return configured or cluster


@dataclass(frozen=True, slots=True)
class FileLoad:
    """What one config file contributed, before duplicates across files are refused.

    Kept in the Bundle so the next load can reuse it when the file's bytes are unchanged.
    """

    data: bytes
    objects: tuple[ConfigObject[Any], ...]
    diagnostics: tuple[Diagnostic, ...]
    invalid: frozenset[ObjectRef]
    #: Every identity the file defines (valid or not), for duplicate detection.
    seen: tuple[tuple[ObjectRef, Source], ...]
    broken: bool = False


@dataclass(frozen=True, slots=True)
class Bundle:
    """Everything loaded from one tree."""

    revision: Revision | None
    #: Name of the cluster the repository stands for (`common.cluster`, default `mgmt`).
    config_cluster: str
    objects: tuple[ConfigObject[Any], ...]
    diagnostics: tuple[Diagnostic, ...]
    helm: HelmValues = field(default_factory=HelmValues)
    #: Resources that exist in the tree but are invalid: their last good outputs must be kept.
    invalid: frozenset[ObjectRef] = field(default_factory=frozenset)
    #: Files that could not be read at all (syntax, encoding, size, links).
    unreadable_files: frozenset[str] = field(default_factory=frozenset)
    #: The config files' bytes, to find the line of a field when reporting a problem.
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: False when the repository as a whole could not be read (a broken `gitops.yaml`):
    #: the objects are then not the full desired state, and nothing may be deleted for it.
    complete: bool = True
    #: The objects by reference (filled in by the loader).
    by_ref: Mapping[ObjectRef, ConfigObject[Any]] = field(default_factory=dict)
    #: Per config file: what it contributed (reused by the next load when unchanged).
    per_file: Mapping[str, FileLoad] = field(default_factory=dict)

    def of_kind(self, kind: str) -> Iterator[ConfigObject[Any]]:
        return (o for o in self.objects if o.ref.kind == kind)

    def locate(self, obj: ObjectRef, field_path: str, fallback: Source) -> Source:
        """The source line of `field_path` (`spec.http[0].name`) in the object's document."""
        found = self.by_ref.get(obj)
        data = self.files.get(fallback.file)
        if found is None or data is None or not field_path:
            return fallback
        line = parsing.locate(data, found.doc_index, split_field_path(field_path))
        return Source(fallback.file, line or fallback.line)


def split_field_path(text: str) -> list[str | int]:
    """`spec.http[0].name` -> ['spec', 'http', 0, 'name']."""
    out: list[str | int] = []
    for part in text.replace("]", "").split("."):
        name, *indexes = part.split("[")
        if name:
            out.append(name)
        out.extend(int(i) for i in indexes if i.isdigit())
    return out


def format_field_path(loc: tuple[str | int, ...]) -> str:
    """('spec', 'http', 0, 'name') -> `spec.http[0].name`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
