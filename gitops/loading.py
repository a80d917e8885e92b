"""Stage 1: `load(tree) -> Bundle` — read a config repository into typed, validated objects.

Called by the CLI (`gitops validate`, `gitops render`), and later by the server's
reconcile loop and the preview engine, always with a `Tree` built by
`controller/sources`. Pure: bytes in, values out.

Order of work: `gitops.yaml` (narrowing) -> `layout.split` (links, safety, size)
-> Helm values -> every YAML document: identify (apiVersion/kind/name), route by
group (Gloo kinds are validated, other Gloo kinds are `UnsupportedKind`, anything
else is `UnknownKind`), validate metadata and spec, refuse duplicates. Each
problem is a `Diagnostic` naming file, line, object and field; a bad object never
stops the others from loading.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from gitops import layout, models, names, parsing
from gitops.bundle import (
    CLUSTER_ANNOTATION,
    Bundle,
    ConfigObject,
    FileLoad,
    HelmValues,
    format_field_path,
    parse_timestamp,
)
from gitops.diagnostics import Diagnostic, Source
from gitops.helm import validation as helm_validation
from gitops.helm.models import Values
from gitops.ids import ObjectRef
from gitops.models.base import ObjectMeta
from gitops.reasons import Reason
from gitops.tree import Tree

DEFAULT_CONFIG_CLUSTER = "mgmt"
#: Narrowing that matches no path (paths never contain NUL): used when gitops.yaml is broken,
#: because guessing what it meant could apply config the user excluded.
_NOTHING = ("\x00",)
_TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
#: pydantic error types that mean "well-typed but breaks a rule" rather than "wrong shape".
_VALUE_ERRORS = frozenset(
    {
        "value_error",
        "assertion_error",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
        "multiple_of",
    }
)


class _Settings(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)
    paths: list[str] = []
    exclude: list[str] = []


def _single_document(path: str, data: bytes, reason: Reason) -> tuple[Any, list[Diagnostic]]:
    """The one document of a settings or values file, or why it cannot be used."""
    parsed = parsing.parse(path, data)
    problems = [*parsed.diagnostics, *(p for d in parsed.documents for p in d.problems)]
    if len(parsed.documents) > 1:
        second = parsed.documents[1]
        problems.append(
            Diagnostic(reason, "must hold a single YAML document", Source(path, second.line))
        )
    if problems:
        return None, problems
    return (parsed.documents[0].data if parsed.documents else None), []


def _settings(
    data: bytes | None, unreadable: Diagnostic | None
) -> tuple[tuple[str, ...], tuple[str, ...], list[Diagnostic]]:
    """`paths`/`exclude` of gitops.yaml. Anything wrong with the file reads nothing: an
    unreadable gitops.yaml must not widen what is read (`_NOTHING`; helm/ is still read)."""
    if unreadable is not None:
        return _NOTHING, (), [unreadable]
    if data is None:
        return (), (), []
    doc, problems = _single_document(layout.SETTINGS_FILE, data, Reason.InvalidGitopsConfig)
    if problems:
        return _NOTHING, (), problems
    try:
        settings = _Settings.model_validate(doc if doc is not None else {})
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            where = format_field_path(tuple(err["loc"])) or "(document)"
            problems.append(
                Diagnostic(
                    Reason.InvalidGitopsConfig,
                    f"{where}: {_message(err)}",
                    Source(layout.SETTINGS_FILE, parsing.locate(data, 0, list(err["loc"]))),
                )
            )
        return _NOTHING, (), problems
    for key, globs in (("paths", settings.paths), ("exclude", settings.exclude)):
        for i, glob in enumerate(globs):
            problem = layout.glob_problem(glob)
            if problem:
                line = parsing.locate(data, 0, [key, i])
                problems.append(
                    Diagnostic(
                        Reason.InvalidGitopsConfig,
                        f"{key}[{i}]: {problem}",
                        Source(layout.SETTINGS_FILE, line),
                    )
                )
    if problems:
        return _NOTHING, (), problems
    return tuple(settings.paths), tuple(settings.exclude), []


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


@dataclass
class _Helm:
    values: HelmValues
    config_cluster: str
    #: helm/ files that could not be used.
    unreadable: set[str]
    #: False when the management plane's values could not be used: the config cluster's
    #: name (and so every placement) is then not known for sure.
    complete: bool


def _helm(files: dict[str, bytes], diagnostics: list[Diagnostic]) -> _Helm:
    """Read and check `helm/mgmt-plane.yaml` and `helm/data-plane/<cluster>.yaml`
    (`gitops.helm.validation`: schema, cross-field rules, `common.cluster`)."""
    mgmt_raw: dict[str, Any] = {}
    mgmt: Values | None = Values()  # no file: the chart's defaults
    data_plane: dict[str, Values] = {}
    unreadable: set[str] = set()
    complete = True
    mgmt_files = [
        p
        for p in files
        if p in (f"{layout.HELM_DIR}mgmt-plane.yaml", f"{layout.HELM_DIR}mgmt-plane.yml")
    ]
    if len(mgmt_files) > 1:
        for path in sorted(mgmt_files):
            diagnostics.append(
                Diagnostic(
                    Reason.InvalidHelmValues,
                    "both helm/mgmt-plane.yaml and helm/mgmt-plane.yml exist; neither is used",
                    Source(path),
                )
            )
        unreadable.update(mgmt_files)
        mgmt, complete = None, False
    for path, data in sorted(files.items()):
        rel = path[len(layout.HELM_DIR) :]
        if path in mgmt_files:
            if len(mgmt_files) > 1:
                continue
            target = ""
        elif rel.startswith("data-plane/") and rel.count("/") == 1:
            target = rel.split("/", 1)[1].rsplit(".", 1)[0]
            problem = names.cluster_name_problem(target)
            if problem:
                diagnostics.append(Diagnostic(Reason.InvalidClusterName, problem, Source(path)))
                unreadable.add(path)
                continue
        else:
            diagnostics.append(
                Diagnostic(
                    Reason.UnknownHelmValuesFile,
                    "expected helm/mgmt-plane.yaml or helm/data-plane/<cluster>.yaml",
                    Source(path),
                )
            )
            continue
        layer, problems = helm_validation.parse(path, data)
        checked = helm_validation.check([layer], target or None) if layer else None
        diagnostics.extend(problems)
        if checked is not None:
            diagnostics.extend(checked.diagnostics)
        values = checked.values if checked is not None else None
        if values is None:
            unreadable.add(path)
        if target:
            if values is not None:
                data_plane[target] = values
            continue
        mgmt, mgmt_raw = values, dict(layer.doc) if layer else {}
        complete = complete and values is not None
    cluster = DEFAULT_CONFIG_CLUSTER
    common = mgmt_raw.get("common")
    configured = common.get("cluster") if isinstance(common, dict) else None
    # Unusable values may still name the config cluster correctly: keep the best guess (the
    # bundle is then incomplete, so nothing is deleted on the strength of it).
    if isinstance(configured, str) and not names.cluster_name_problem(configured):
        cluster = configured
    helm = HelmValues(mgmt_plane=mgmt_raw, data_plane=data_plane, mgmt=mgmt)
    return _Helm(helm, cluster, unreadable, complete)


def _unknown_gloo(group: str, kind: str) -> str:
    known = sorted({*models.SUPPORTED, *models.KNOWN_UNSUPPORTED})
    names = [f"{g}/{k}" for g, k in known]
    close = difflib.get_close_matches(f"{group}/{kind}", names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{group} has no kind {kind} in Gloo Platform 2.x{hint}"


class _DocumentLoader:
    """Turns the documents of one config file into `ConfigObject`s and diagnostics."""

    def __init__(self, config_cluster: str, files: Mapping[str, bytes]) -> None:
        self.config_cluster = config_cluster
        self.files = files
        self.diagnostics: list[Diagnostic] = []
        self.objects: list[ConfigObject[Any]] = []
        self.invalid: set[ObjectRef] = set()
        self.seen: list[tuple[ObjectRef, Source]] = []

    def _report(
        self, reason: Reason, message: str, source: Source, obj: ObjectRef | None, field: str = ""
    ) -> None:
        self.diagnostics.append(Diagnostic(reason, message, source, obj, field))
        if obj is not None and reason.state.name in ("INVALID", "FAILED"):
            self.invalid.add(obj)

    def load_file(self, path: str, parsed: parsing.ParsedFile) -> None:
        for doc in parsed.documents:
            self.load_document(path, doc)

    def load_document(self, path: str, doc: parsing.Document) -> None:
        source = Source(path, doc.line)
        data = doc.data
        if not isinstance(data, dict):
            self._report(
                Reason.DocumentNotMapping,
                f"document {doc.index + 1} is a {type(data).__name__}, not a mapping",
                source,
                None,
            )
            return
        api_version, kind = data.get("apiVersion"), data.get("kind")
        metadata = data.get("metadata")
        meta = metadata if isinstance(metadata, dict) else {}
        name, namespace = meta.get("name"), meta.get("namespace")
        label = (
            ObjectRef(kind, namespace if isinstance(namespace, str) else "", name)
            if isinstance(kind, str) and kind and isinstance(name, str) and name
            else None
        )
        if not isinstance(api_version, str) or not api_version:
            self._report(Reason.MissingApiVersion, "apiVersion is missing", source, label)
            return
        if not isinstance(kind, str) or not kind:
            self._report(Reason.MissingKind, "kind is missing", source, None)
            return
        if not isinstance(name, str) or not name:
            self._report(Reason.MissingName, "metadata.name is missing", source, None)
            return
        assert label is not None
        if doc.problems:
            # A duplicated key may be the kind or name itself: nothing here can be trusted.
            for problem in doc.problems:
                self._report(problem.reason, problem.message, problem.source or source, label)
            return
        group, _, version = api_version.rpartition("/")
        if not models.is_gloo_group(group):
            self._report(
                Reason.UnknownKind,
                f"{api_version} {kind} is not a Gloo Platform kind; ignored",
                source,
                label,
            )
            return
        model = models.spec_model(group, kind)
        if model is None and (group, kind) not in models.KNOWN_UNSUPPORTED:
            self._report(Reason.UnknownGlooKind, _unknown_gloo(group, kind), source, label)
            return
        if model is None or version not in models.SUPPORTED_VERSIONS:
            what = (
                f"version {version} of {kind} is not supported (use "
                f"{group}/{'/'.join(sorted(models.SUPPORTED_VERSIONS))})"
                if model is not None
                else f"{api_version} {kind} is not translated by this version; ignored"
            )
            self._report(Reason.UnsupportedKind, what, source, label)
            return
        self.seen.append((label, source))
        self._validate(path, doc, data, group, version, label, model)

    def _schema_errors(
        self, path: str, doc: parsing.Document, label: ObjectRef, prefix: str, exc: Any
    ) -> None:
        for err in exc.errors():
            loc = (prefix, *err["loc"])
            field = format_field_path(loc)
            line = parsing.locate(self.files[path], doc.index, list(loc)) or doc.line
            reason = Reason.InvalidValue if err["type"] in _VALUE_ERRORS else Reason.SchemaViolation
            self._report(reason, f"{field}: {_message(err)}", Source(path, line), label, field)

    def _validate(
        self,
        path: str,
        doc: parsing.Document,
        data: dict[str, Any],
        group: str,
        version: str,
        label: ObjectRef,
        model: type[models.GlooModel],
    ) -> None:
        ok = True
        for key in sorted(set(data) - _TOP_LEVEL, key=str):
            line = parsing.locate(self.files[path], doc.index, [key]) or doc.line
            self._report(
                Reason.SchemaViolation, f"{key}: unknown field", Source(path, line), label, key
            )
            ok = False
        try:
            meta = ObjectMeta.model_validate(data.get("metadata"))
        except pydantic.ValidationError as exc:
            self._schema_errors(path, doc, label, "metadata", exc)
            return
        try:
            # by_name=False: YAML must use the camelCase names (snake_case would be dropped
            # by Kubernetes and silently mean the default).
            spec = model.model_validate(data.get("spec") or {}, by_name=False)
        except pydantic.ValidationError as exc:
            self._schema_errors(path, doc, label, "spec", exc)
            ok = False
        source = Source(path, doc.line)
        if meta.creationTimestamp is not None:
            try:
                parse_timestamp(meta.creationTimestamp)
            except ValueError as exc:
                field = "metadata.creationTimestamp"
                line = parsing.locate(
                    self.files[path], doc.index, ["metadata", "creationTimestamp"]
                )
                self._report(
                    Reason.InvalidValue, f"{field}: {exc}", Source(path, line), label, field
                )
                ok = False
        cluster = meta.annotations.get(CLUSTER_ANNOTATION, self.config_cluster)
        if problem := names.cluster_name_problem(cluster):
            field = f"metadata.annotations.{CLUSTER_ANNOTATION}"
            self._report(Reason.InvalidClusterName, problem, source, label, field)
            ok = False
        if label.kind == "KubernetesCluster" and (
            problem := names.cluster_name_problem(label.name)
        ):
            self._report(Reason.InvalidClusterName, problem, source, label, "metadata.name")
            ok = False
        elif wrong := names.object_name_problem(label.name, label.namespace):
            field, problem = wrong
            line = parsing.locate(self.files[path], doc.index, field.split(".")) or doc.line
            self._report(Reason.InvalidValue, problem, Source(path, line), label, field)
            ok = False
        if ok:
            self.objects.append(
                ConfigObject(label, group, version, meta, spec, source, doc.index, cluster)
            )

    def result(self, path: str) -> FileLoad:
        return FileLoad(
            self.files[path],
            tuple(self.objects),
            tuple(self.diagnostics),
            frozenset(self.invalid),
            tuple(self.seen),
        )


def _load_file(path: str, files: Mapping[str, bytes], config_cluster: str) -> FileLoad:
    parsed = parsing.parse(path, files[path])
    if parsed.broken:
        return FileLoad(files[path], (), parsed.diagnostics, frozenset(), (), broken=True)
    loader = _DocumentLoader(config_cluster, files)
    for doc in parsed.documents:
        loader.load_document(path, doc)
    return loader.result(path)


def _last_good(broken: FileLoad, known: FileLoad) -> FileLoad:
    """A file that no longer parses keeps the objects it last defined (a broken commit
    never deletes what a good one applied): its new bytes and its errors, its old objects.
    A file deleted from the repository is gone; only a file that is there but unreadable
    is frozen like this."""
    return FileLoad(
        broken.data, known.objects, broken.diagnostics, known.invalid, known.seen, broken=True
    )


def _assemble(
    loads: Mapping[str, FileLoad],
) -> tuple[list[ConfigObject[Any]], list[Diagnostic], set[ObjectRef]]:
    """Objects of all files, with every copy of an object defined twice refused."""
    diagnostics: list[Diagnostic] = []
    invalid: set[ObjectRef] = set()
    seen: dict[ObjectRef, list[Source]] = defaultdict(list)
    for path in sorted(loads):
        found = loads[path]
        diagnostics.extend(found.diagnostics)
        invalid |= found.invalid
        for ref, source in found.seen:
            seen[ref].append(source)
    for ref, sources in seen.items():
        if len(sources) < 2:
            continue
        where = ", ".join(str(s) for s in sources)
        for source in sources:
            diagnostics.append(
                Diagnostic(
                    Reason.DuplicateObject, f"defined {len(sources)} times: {where}", source, ref
                )
            )
        invalid.add(ref)
    objects = [o for f in loads.values() for o in f.objects if o.ref not in invalid]
    objects.sort(key=lambda o: o.ref)
    return objects, diagnostics, invalid


def load(tree: Tree, previous: Bundle | None = None) -> Bundle:
    """Load a config repository. Never raises for anything the repository contains.

    With `previous` (the bundle of an earlier tree), files whose bytes did not change are
    not parsed or validated again: their results are reused (the server reloads a commit
    in the time it takes to read what changed); a file that no longer parses keeps the
    objects it defined in `previous` (it is still reported, and listed as unreadable).
    """
    include, exclude, diagnostics = _settings(*layout.settings_entry(tree))
    files = layout.split(tree, include, exclude)
    diagnostics.extend(files.diagnostics)
    helm = _helm(dict(files.helm), diagnostics)
    reusable = (
        previous.per_file
        if previous is not None and previous.config_cluster == helm.config_cluster
        else {}
    )
    loads: dict[str, FileLoad] = {}
    for path, data in files.config.items():
        known = reusable.get(path)
        if known is not None and (known.data is data or known.data == data):
            loads[path] = known
            continue
        loaded = _load_file(path, files.config, helm.config_cluster)
        if loaded.broken and known is not None:
            loaded = _last_good(loaded, known)
        loads[path] = loaded
    objects, found, invalid = _assemble(loads)
    diagnostics.extend(found)
    unreadable = set(files.unreadable) | helm.unreadable
    unreadable.update(path for path, f in loads.items() if f.broken)
    return Bundle(
        revision=tree.revision,
        config_cluster=helm.config_cluster,
        objects=tuple(objects),
        diagnostics=tuple(diagnostics),
        helm=helm.values,
        invalid=frozenset(invalid),
        unreadable_files=frozenset(unreadable),
        files=dict(files.config),
        complete=include != _NOTHING and helm.complete,
        by_ref={o.ref: o for o in objects},
        per_file=loads,
    )
