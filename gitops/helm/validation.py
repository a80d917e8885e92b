"""Checking Helm values files: parse, merge, validate against `Values`, run the rules.

Called by the loader (`gitops.loading`, one layer per `helm/` file) and by
`gitops.install.render_files` (the `--values` files of `gitops install render`, merged in
order). Everything a user got wrong comes back as a `Diagnostic` at the file and line of the
key (found with `parsing.locate`): schema errors as `InvalidHelmValues` with the key path,
cross-field rules (`gitops.helm.rules`) with their own reasons.

When several files are merged, each file is first validated alone (so an error points into
the file that has it), then the merged values once more; a problem that only the merge
creates, and every rule finding, is reported in the last file that sets the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from gitops import names, parsing
from gitops.bundle import format_field_path, split_field_path
from gitops.diagnostics import Diagnostic, Source, has_errors
from gitops.helm import merge, rules
from gitops.helm.models import Values
from gitops.reasons import Reason


@dataclass(frozen=True, slots=True)
class Layer:
    """One values file: its path (as shown in messages), bytes and parsed mapping."""

    path: str
    data: bytes
    doc: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking one stack of values files."""

    #: The typed values; None when the files cannot be used (schema errors, a bad or
    #: mismatched `common.cluster`). Rule errors leave the values usable: they describe
    #: what an install needs, not what the file means.
    values: Values | None
    #: The merged raw values, removal markers (nulls) kept.
    merged: Mapping[str, Any] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def failed(self) -> bool:
        return self.values is None or has_errors(self.diagnostics)


def parse(path: str, data: bytes) -> tuple[Layer | None, list[Diagnostic]]:
    """A values file's one document, or why it cannot be used.

    The same refusals as every config file (syntax, encoding, duplicate keys, alias bombs),
    plus: more than one document, or a document that is not a mapping. An empty file is
    an empty mapping.
    """
    parsed = parsing.parse(path, data)
    problems = [*parsed.diagnostics, *(p for d in parsed.documents for p in d.problems)]
    if len(parsed.documents) > 1:
        second = parsed.documents[1]
        problems.append(
            Diagnostic(
                Reason.InvalidHelmValues,
                "must hold a single YAML document",
                Source(path, second.line),
            )
        )
    if problems:
        return None, problems
    doc = parsed.documents[0].data if parsed.documents else None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return None, [
            Diagnostic(Reason.InvalidHelmValues, "values must be a mapping", Source(path, 1))
        ]
    return Layer(path, data, doc), []


def check(layers: Sequence[Layer], cluster: str | None = None) -> Checked:
    """Validate a stack of values files (later files win) and run the rules.

    `cluster` is the cluster the values are for, when known from elsewhere (the file name
    of `helm/data-plane/<cluster>.yaml`, or `--cluster`): a `common.cluster` naming
    another cluster is an error.
    """
    diagnostics: list[Diagnostic] = []
    single: Values | None = None
    for layer in layers:
        single = _validate(layer.doc, layers, diagnostics, only=layer)
    if diagnostics:
        return Checked(None, {}, tuple(diagnostics))
    merged = merge.merge_all(layer.doc for layer in layers)
    values = single if len(layers) == 1 else _validate(merged, layers, diagnostics)
    if values is None:
        return Checked(None, merged, tuple(diagnostics))
    usable = _cluster(values, cluster, layers, diagnostics)
    for finding in rules.check(values):
        source = _locate(layers, finding.keys)
        diagnostics.append(
            Diagnostic(finding.reason, finding.message, source, None, finding.keys[0])
        )
    return Checked(values if usable else None, merged, tuple(diagnostics))


def _validate(
    doc: Mapping[str, Any],
    layers: Sequence[Layer],
    diagnostics: list[Diagnostic],
    only: Layer | None = None,
) -> Values | None:
    try:
        # by_name=False: YAML must use the camelCase names, as Helm templates would.
        return Values.model_validate(doc, by_name=False)
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if loc and loc[-1] == "[key]":
                loc = loc[:-1]
            where = format_field_path(loc) or "(values)"
            source = _locate_parts([only] if only else layers, [list(loc)])
            diagnostics.append(
                Diagnostic(
                    Reason.InvalidHelmValues, f"{where}: {_message(err)}", source, None, where
                )
            )
        return None


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    return str(err["msg"]).removeprefix("Value error, ")


def _cluster(
    values: Values, expected: str | None, layers: Sequence[Layer], diagnostics: list[Diagnostic]
) -> bool:
    """Check `common.cluster`; False when the values must not be used."""
    name = values.common.cluster
    if name is None:
        return True
    source = _locate(layers, ("common.cluster",))
    if problem := names.cluster_name_problem(name):
        diagnostics.append(
            Diagnostic(Reason.InvalidClusterName, problem, source, None, "common.cluster")
        )
        return False
    if expected is not None and name != expected:
        diagnostics.append(
            Diagnostic(
                Reason.InvalidHelmValues,
                f"common.cluster is {name!r} but these values are for cluster {expected!r}",
                source,
                None,
                "common.cluster",
            )
        )
        return False
    return True


def _depth(doc: Any, parts: Sequence[str | int]) -> int:
    """How many leading parts of a key path exist in a parsed document."""
    for depth, part in enumerate(parts):
        in_map = isinstance(doc, Mapping) and part in doc
        in_list = isinstance(doc, list) and isinstance(part, int) and part < len(doc)
        if not (in_map or in_list):
            return depth
        doc = doc[part]
    return len(parts)


def _locate_parts(layers: Sequence[Layer], paths: Sequence[Sequence[str | int]]) -> Source:
    """Where a problem about `paths` is shown: the last file that sets the first path that
    is set anywhere; else the deepest existing part of the first path, in the file that has
    most of it (later files win ties)."""
    if not layers:
        return Source("")
    for parts in paths:
        for layer in reversed(layers):
            if _depth(layer.doc, parts) == len(parts):
                return Source(layer.path, parsing.locate(layer.data, 0, parts))
    first = paths[0] if paths else []
    best = max(reversed(layers), key=lambda layer: _depth(layer.doc, first))
    return Source(best.path, parsing.locate(best.data, 0, first) if first else 1)


def _locate(layers: Sequence[Layer], keys: Sequence[str]) -> Source:
    return _locate_parts(layers, [split_field_path(key) for key in keys])


def locate(layers: Sequence[Layer], keys: Sequence[str]) -> Source:
    """The file and line to show a problem about dotted key paths at (`common.cluster`)."""
    return _locate(layers, keys)
