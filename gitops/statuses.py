"""Commit statuses as values: contexts, states and descriptions (DESIGN.md section 9).

Pure. The server computes one `Status` per context from what a reconcile's steps returned
(translation reports and diagnostics, each cluster's published/applied versions and NACKs,
each cluster's drift count) and hands them to a `controller.status.StatusWriter`, which
posts them to git notes or a Git host. Everything a Git host limits is enforced here, once:
the four states, the 140-character description, a full hexadecimal commit SHA.

Descriptions carry counts and reason names from `gitops.reasons` unchanged; they are built
from reports, versions and counts only, so no secret can reach them (writers still scrub
their token from any text they send, in case a NACK message echoes one).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.diagnostics import Diagnostic, sort_key
from gitops.reasons import Severity, State
from gitops.reports import Report, summary

#: GitHub's limit on `description` (longer ones are rejected with 422); GitLab and Gitea
#: accept more, but one limit for every writer keeps a status the same everywhere.
MAX_DESCRIPTION = 140
ELLIPSIS = "…"
DEFAULT_PREFIX = "mesh-gitops"

# Full object names only: SHA-1 (40) or SHA-256 (64) repositories. Hosts resolve
# abbreviations differently or not at all, and an empty SHA gives `POST .../statuses/`
# (argo-cd #29575), so both are refused before any request is made.
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class StatusState(enum.Enum):
    """The four states every writer understands (GitHub's vocabulary)."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


class InvalidSha(ValueError):
    """A status was about to be written to something that is not a full commit SHA."""


def check_sha(sha: str) -> str:
    """Return `sha` if it is a full lowercase hexadecimal object name; raise `InvalidSha`."""
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        shown = repr(sha) if isinstance(sha, str) and len(sha) <= 80 else "a malformed value"
        raise InvalidSha(f"refusing to write a commit status to {shown}: not a full commit SHA")
    return sha


def truncate(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """`text` on one line, cut to `limit` characters at a word boundary, ending with `…`."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - len(ELLIPSIS)]
    # Cut at the last space unless that throws away more than a third of the room.
    space = cut.rfind(" ")
    if space > (limit * 2) // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + ELLIPSIS


@dataclass(frozen=True, slots=True)
class Status:
    """One commit status: what a Git host shows next to a commit for one context."""

    context: str
    state: StatusState
    description: str
    target_url: str = ""

    def __post_init__(self) -> None:
        if not self.context:
            raise ValueError("a commit status needs a context")
        if len(self.description) > MAX_DESCRIPTION:
            raise ValueError(f"description longer than {MAX_DESCRIPTION} characters")

    def to_json(self) -> dict[str, str]:
        return {
            "context": self.context,
            "state": self.state.value,
            "description": self.description,
            "target_url": self.target_url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Status:
        return cls(
            str(data["context"]),
            StatusState(data["state"]),
            truncate(str(data.get("description") or "")),
            str(data.get("target_url") or ""),
        )


# -- contexts -------------------------------------------------------------------------------


def translation_context(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/translation"


def sync_context(cluster: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/sync/{cluster}"


def drift_context(cluster: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/drift/{cluster}"


def preview_context(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/preview"


def pending(context: str, description: str = "in progress", target_url: str = "") -> Status:
    """The status posted when work on a context starts."""
    return Status(context, StatusState.PENDING, truncate(description), target_url)


# -- translation ----------------------------------------------------------------------------


def translation(
    reports: Iterable[Report],
    diagnostics: Iterable[Diagnostic] = (),
    *,
    prefix: str = DEFAULT_PREFIX,
    target_url: str = "",
) -> Status:
    """`12 accepted, 1 invalid: RouteTable bookinfo/reviews (DestinationNotFound) …`.

    `failure` when any resource is INVALID or FAILED or any diagnostic is an error (a file
    that does not parse has no resource, so it is named by its path); `success` otherwise,
    warnings included. The worst resources are named first.
    """
    reports = list(reports)
    problems = sorted(
        (r for r in reports if r.state >= State.FAILED),
        key=lambda r: (-r.state, r.ref),
    )
    named = [_report_name(r) for r in problems]
    # Errors attached to no resource (unparseable files, bad gitops.yaml): name the file.
    loose = sorted(
        (d for d in diagnostics if d.obj is None and d.severity is Severity.ERROR),
        key=sort_key,
    )
    named += [f"{d.source.file if d.source else '-'} ({d.reason.name})" for d in loose]
    head = summary(reports)
    if loose:
        head += f", {len(loose)} file error{'s' if len(loose) != 1 else ''}"
    state = StatusState.FAILURE if named else StatusState.SUCCESS
    text = f"{head}: {', '.join(named)}" if named else head
    return Status(translation_context(prefix), state, truncate(text), target_url)


def _report_name(report: Report) -> str:
    reasons = sorted({d.reason.name for d in report.diagnostics if d.reason.state >= State.FAILED})
    return f"{report.ref} ({', '.join(reasons)})" if reasons else str(report.ref)


# -- sync and drift, per cluster -------------------------------------------------------------


def sync(
    cluster: str,
    published: str | int | None,
    applied: str | int | None,
    nack_errors: Iterable[str] = (),
    *,
    objects: int | None = None,
    prefix: str = DEFAULT_PREFIX,
    target_url: str = "",
) -> Status:
    """One cluster's sync: `success` once the agent applied what was published.

    A NACK (the agent refused the version) is `failure` with the first error; nothing
    published for the cluster is `error` (the server could not produce its config); an
    agent still on an older version is `pending`.
    """
    context = sync_context(cluster, prefix)
    errors = [" ".join(e.split()) for e in nack_errors if e.strip()]
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        text = f"rejected version {published}: {errors[0]}"
        # Keep the count visible however long the first error is.
        text = truncate(text, MAX_DESCRIPTION - len(more)) + more
        return Status(context, StatusState.FAILURE, text, target_url)
    if published is None:
        return Status(context, StatusState.ERROR, "nothing published for this cluster", target_url)
    if applied is not None and str(applied) == str(published):
        what = f"{objects} objects" if objects is not None else "config"
        text = truncate(f"{what} applied, version {published}")
        return Status(context, StatusState.SUCCESS, text, target_url)
    was = f"agent on version {applied}" if applied is not None else "agent has applied nothing"
    text = truncate(f"waiting for version {published}; {was}")
    return Status(context, StatusState.PENDING, text, target_url)


def drift(
    cluster: str,
    drifted: int,
    *,
    corrected: int = 0,
    examples: Iterable[str] = (),
    prefix: str = DEFAULT_PREFIX,
    target_url: str = "",
) -> Status:
    """One cluster's drift: `success` with none left, `failure` while objects differ.

    `corrected` counts drifted objects put back by self-heal; they are reported, and do
    not fail the status.
    """
    if drifted < 0 or corrected < 0 or corrected > drifted:
        raise ValueError("drift counts must satisfy 0 <= corrected <= drifted")
    context = drift_context(cluster, prefix)
    left = drifted - corrected
    if left == 0:
        text = f"no drift; {corrected} corrected" if corrected else "no drift"
        return Status(context, StatusState.SUCCESS, text, target_url)
    noun = "object differs" if left == 1 else "objects differ"
    text = f"{left} {noun} from Git"
    names = sorted(examples)
    if names:
        text += f": {', '.join(names)}"
    return Status(context, StatusState.FAILURE, truncate(text), target_url)


def preview(
    summary_line: str,
    state: StatusState = StatusState.SUCCESS,
    *,
    prefix: str = DEFAULT_PREFIX,
    target_url: str = "",
) -> Status:
    """The one-line preview summary of a pull request (the full report is at `target_url`)."""
    return Status(preview_context(prefix), state, truncate(summary_line), target_url)


# -- where a host's repository is -----------------------------------------------------------

_URL_PATH = re.compile(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:]+:)(?P<path>.+?)(?:\.git)?/?$")


def repository_from_url(url: str) -> str:
    """`owner/name` (or a GitLab group path) from an HTTPS or scp-style clone URL."""
    found = _URL_PATH.match(url.strip())
    if not found or "/" not in found["path"]:
        raise ValueError(
            "cannot tell the repository's owner/name from its URL; set gitops.status.repository"
        )
    return found["path"].strip("/")
