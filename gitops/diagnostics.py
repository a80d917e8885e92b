"""Diagnostics: user mistakes as data.

A `Diagnostic` is what every stage returns next to whatever partial output it
could produce (the Istio translators' `ConfigError`). Only bugs raise. The
loader, the snapshot parser and the translators create them; the reports module
folds the ones about a resource into that resource's report; the CLI prints them
as `file:line: severity: Kind ns/name: reason: message`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.ids import ObjectRef
from gitops.reasons import Reason, Severity


@dataclass(frozen=True, slots=True)
class Source:
    """Where a thing was written: repository-relative file and 1-based line (0 = unknown)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem, with everything a user needs to find and fix it.

    `field` is the dotted path inside the object (`spec.http[0].forwardTo`), when
    the problem is in one field. `cluster` is set when the problem exists only in
    one workload cluster (the resource may be fine elsewhere).
    """

    reason: Reason
    message: str
    source: Source | None = None
    obj: ObjectRef | None = None
    field: str = ""
    cluster: str = ""

    @property
    def severity(self) -> Severity:
        return self.reason.severity

    def format(self) -> str:
        """The one-line text form: `file:line: severity: Kind ns/name: reason: message`."""
        parts = [str(self.source) if self.source else "-", self.severity.value]
        if self.obj is not None:
            parts.append(str(self.obj))
        parts.append(self.reason.name)
        message = self.message
        if self.field and self.field not in message:
            message = f"{self.field}: {message}"
        if self.cluster:
            message = f"[{self.cluster}] {message}"
        parts.append(message)
        return ": ".join(parts)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (used by `--format json` and stored reports)."""
        out: dict[str, object] = {
            "severity": self.severity.value,
            "reason": self.reason.name,
            "message": self.message,
        }
        if self.source is not None:
            out["file"] = self.source.file
            out["line"] = self.source.line
        if self.obj is not None:
            out["kind"], out["namespace"], out["name"] = self.obj
        if self.field:
            out["field"] = self.field
        if self.cluster:
            out["cluster"] = self.cluster
        return out


def sort_key(d: Diagnostic) -> tuple[str, int, str, str, str, str]:
    """Stable order for printing: by file, line, then object, reason and message."""
    src = d.source or Source("")
    obj = str(d.obj) if d.obj else ""
    return (src.file, src.line, obj, d.cluster, d.reason.name, d.message)


def has_errors(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)
