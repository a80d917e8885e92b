"""Pull-request previews in `gitops serve`: `<prefix>/preview` on the head of every open ref.

Where it sits: `controller/server/git_loop.py` builds one `Previews` for a Git source
(`GitLoop.start_statuses`), adds `Previews.statuses` to the `StatusReporter`'s sources, and
wakes it after every reload and webhook delivery; its own thread also looks every
`gitops.repo.interval`, since a pushed pull request does not move the synced branch that the
poll's `HeadWatch` follows. One pass (`check`):

1. discovers the refs matching `gitops.previews.refs` (`fnmatch` patterns) and the base
   (`controller/server/preview_inputs.py`: a local repository's own refs, or a remote's
   ref advertisement, fetching only the refs that moved into the server's cache clone);
2. compares each ref's (head commit, base commit, clusters with inputs) and the clusters'
   inputs versions with what was last computed (`plan`): when nothing moved, a pass costs
   that listing, one copy of the versions (`preview_inputs.fleet_inputs`) and a comparison;
3. computes each changed ref with `controller.preview.preview` (the head merged onto the
   base, both rendered against the fleet's current discovery inputs), puts the report in
   `CommitReports` (section `preview`) and keeps the status for the reporter to post:
   success with the one-line summary (changes are not failures), failure when the head
   makes resources INVALID, breaks a file, or does not merge, error when it could not be
   computed.

The base is the synced branch (`gitops.repo.ref`) at the commit the repository (or the
cache clone the server fetched) holds now: which branch a pull request targets is not
knowable from its ref without a host API, and what matters is the merge onto what is synced.
When the base moves, every open preview is recomputed; meanwhile its status is pending
"base moved to <sha>; previous preview stale" and its stored report is marked
`"stale": true`. A ref that disappears (a closed pull request) is forgotten.

New discovery inputs (an agent reports a Service, a removed Deployment) change what the
translation gives, so they recompute too, under a rate limit: input deltas come as fast as
pods and services churn. The rule (`plan`): a head, base or cluster-set move is due at once;
a change of the clusters' inputs versions alone (`Cluster.inputs_version`) is due once
`interval` (`gitops.repo.interval`, this thread's cadence) has passed since the ref was last
computed (`Done.at`, the clock of the pass that computed it). So an open preview costs at most
one computation per interval for input churn, and shows an input change within about one
interval. While it waits, and while it is recomputed, it keeps its last status and report,
not pending and not marked stale: the inputs always move, and that result is still the
latest one computed for this head and base.

Nothing here can break the sync: passes run on this module's thread, every failure is
logged, and a preview that cannot be computed gets status `error`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygit2

from controller.preview import MergeConflict, PreviewError, preview
from controller.server import preview_inputs
from controller.server.commit_reports import CommitReports
from controller.sources import SourceError, git
from gitops import statuses
from gitops.diagnostics import Diagnostic
from gitops.preview import Preview, markdown, one_line, to_json
from gitops.reasons import Severity
from gitops.statuses import Status, StatusState
from gitops.tree import Tree

if TYPE_CHECKING:
    from controller.server.app import Server

__all__ = [
    "Done",
    "Inputs",
    "Job",
    "Key",
    "Plan",
    "Previews",
    "for_server",
    "new_file_errors",
    "plan",
]

log = logging.getLogger(__name__)

#: What a preview was computed from: head commit, base commit, clusters with inputs.
Key = tuple[str, str, tuple[str, ...]]
#: Each cluster with inputs and its inputs version, sorted: the inputs a preview read.
Inputs = tuple[tuple[str, int], ...]
SECTION = "preview"
_SHORT = 12


@dataclass(frozen=True)
class Done:
    """What a ref's last preview was computed from, and when (the pass's monotonic clock)."""

    key: Key
    inputs: Inputs
    at: float


@dataclass(frozen=True)
class Job:
    """One preview to compute in a pass."""

    ref: str
    key: Key
    inputs: Inputs
    at: float


@dataclass(frozen=True)
class Plan:
    """What one pass does, each sorted: `todo` refs to (re)compute, `gone` refs to forget,
    `waiting` refs whose inputs changed, due once the interval has passed."""

    todo: tuple[str, ...]
    gone: tuple[str, ...]
    waiting: tuple[str, ...] = ()


def plan(
    known: Mapping[str, Done | None],
    refs: Mapping[str, str],
    base: str,
    inputs: Inputs,
    *,
    now: float,
    interval: float,
) -> Plan:
    """Compare `refs` (ref -> head commit) with `known` (ref -> its last computation, None
    when never computed): a ref is due at once when its key (head, base, clusters) differs,
    and when only its inputs versions differ, once `interval` passed since it was computed."""
    clusters = tuple(name for name, _ in inputs)
    todo: list[str] = []
    waiting: list[str] = []
    for ref, head in sorted(refs.items()):
        done = known.get(ref)
        if done is None or done.key != (head, base, clusters):
            todo.append(ref)
        elif done.inputs != inputs:
            (todo if now - done.at >= interval else waiting).append(ref)
    gone = tuple(sorted(r for r in known if r not in refs))
    return Plan(tuple(todo), gone, tuple(waiting))


@dataclass
class _Open:
    """One open preview ref: what it should show now, and what it last showed."""

    wanted: Key
    status: Status
    done: Done | None = None
    document: dict[str, Any] = field(default_factory=dict)
    markdown: str = ""


class Previews:
    """The previews of one config repository (see the module docstring).

    `repo_path` is the local repository (or the folder in it the config lives in) or the
    server's cache clone; `url` is set for a remote source (fetched from, never logged
    with its credentials). `snapshots` builds the per-cluster discovery trees (called only
    when something is computed); `inputs` maps each cluster that has inputs to its inputs
    version (called every pass, before `snapshots`). `fetch_lock` serializes fetches into
    the cache with the server's own. `interval` is both the thread's cadence and the rate
    limit of recomputes for new inputs; `clock` (monotonic seconds) times that limit.
    """

    def __init__(
        self,
        repo_path: Path,
        base_ref: str,
        patterns: Iterable[str],
        *,
        snapshots: Callable[[], Mapping[str, Tree]],
        inputs: Callable[[], Mapping[str, int]],
        reports: CommitReports,
        prefix: str = statuses.DEFAULT_PREFIX,
        url: str | None = None,
        fetch_lock: AbstractContextManager[Any] | None = None,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo_path, self.base_ref, self.url = repo_path, base_ref, url
        self.patterns = tuple(patterns)
        self.reports, self.prefix, self.interval = reports, prefix, interval
        self._snapshots, self._inputs, self._clock = snapshots, inputs, clock
        self._fetch_lock = fetch_lock or nullcontext()
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- thread -----------------------------------------------------------------------------

    def start(self) -> None:
        self._wake.set()  # a first pass at once: refs may be open already
        self._thread = threading.Thread(target=self._run, name="previews", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look again soon (a reload or a webhook delivery); cheap, from any thread."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self.check()
            except Exception:  # a preview must never take the server down
                log.exception("previews: pass failed")

    # -- statuses (the StatusReporter's source) ---------------------------------------------

    def statuses(self) -> dict[tuple[str, str], Status]:
        with self._lock:
            return {(o.wanted[0], o.status.context): o.status for o in self._open.values()}

    def open_refs(self) -> dict[str, Key]:
        """Ref -> the key it is (being) computed for."""
        with self._lock:
            return {ref: o.wanted for ref, o in self._open.items()}

    # -- one pass ---------------------------------------------------------------------------

    def check(self) -> int:
        """Discover, mark what is due pending, compute it; returns how many were computed."""
        jobs = self.refresh()
        snapshots: Mapping[str, Tree] | None = None
        computed = 0
        for job in jobs:
            if self._stop.is_set() or (computed and self._wake.is_set()):
                break  # something moved meanwhile: look again before computing more
            if snapshots is None:
                snapshots = self._snapshots()
            self._compute(job, snapshots)
            computed += 1
        return computed

    def refresh(self) -> list[Job]:
        """Discover refs and the base; forget vanished refs; mark changed ones pending (and
        their old reports stale when the base moved); those due for new inputs alone keep
        their status. Returns the jobs, in ref order."""
        try:
            base, refs = preview_inputs.discover(
                self.repo_path, self.base_ref, self.patterns, self.url, self._fetch_lock
            )
        except (SourceError, pygit2.GitError, OSError) as exc:
            log.warning("previews: refs not read: %s", git.redact(str(exc)))
            return []
        inputs: Inputs = tuple(sorted(self._inputs().items()))
        clusters = tuple(name for name, _ in inputs)
        now = self._clock()
        with self._lock:
            known = {ref: o.done for ref, o in self._open.items()}
        todo = plan(known, refs, base, inputs, now=now, interval=self.interval)
        stale: list[tuple[str, dict[str, Any], str]] = []
        with self._lock:
            for ref in todo.gone:
                del self._open[ref]
            for ref in todo.todo:
                key = (refs[ref], base, clusters)
                found = self._open.get(ref)
                if found is None:
                    found = self._open[ref] = _Open(key, _pending(self.prefix, base))
                if found.wanted == key:
                    continue  # already pending for this key, or due for new inputs alone
                done = found.done
                if done is not None and done.key[0] == key[0] and done.key[1] != base:
                    text = f"base moved to {base[:_SHORT]}; previous preview stale"
                    context = statuses.preview_context(self.prefix)
                    found.status = statuses.pending(context, text)
                    stale.append(_stale(found, key[0], base))
                else:
                    found.status = _pending(self.prefix, base)
                found.wanted = key
            jobs = [Job(ref, self._open[ref].wanted, inputs, now) for ref in todo.todo]
        for head, document, text in stale:
            self._put(head, document, text)
        if todo.todo or todo.gone:
            log.info(
                "previews: %d to compute, %d closed, %d waiting to recompute for new inputs",
                len(todo.todo),
                len(todo.gone),
                len(todo.waiting),
            )
        return jobs

    def _compute(self, job: Job, snapshots: Mapping[str, Tree]) -> None:
        ref, key = job.ref, job.key
        head, base, _ = key
        context = statuses.preview_context(self.prefix)
        facts: dict[str, Any] = {"ref": ref, "head": head, "base": base, "stale": False}
        try:
            computed = preview(self.repo_path, base, head, snapshots)
        except MergeConflict as exc:
            listed = ", ".join(exc.paths)
            status = Status(
                context, StatusState.FAILURE, statuses.truncate(f"merge conflict in {listed}")
            )
            document = {**facts, "conflicts": list(exc.paths)}
            text = (
                f"# Preview of `{ref}`\n\n"
                f"The head does not merge cleanly onto the base: conflicts in {listed}.\n"
            )
        except (PreviewError, SourceError) as exc:
            status, document, text = _failed(context, facts, git.redact(str(exc)))
        except Exception:
            log.exception("previews: %s at %s could not be computed", ref, head[:_SHORT])
            status, document, text = _failed(context, facts, "internal error (see the server log)")
        else:
            shown = Preview(
                computed.preview.clusters,
                computed.preview.invalid,
                {"base": f"{self.base_ref} ({base[:_SHORT]})", "head": f"{ref} ({head[:_SHORT]})"},
            )
            broken = new_file_errors(computed.base.diagnostics, computed.head.diagnostics)
            line = one_line(shown)
            if broken:
                line += f"; file errors in {', '.join(broken)}"
            # Changes are what a preview is for; only a head that breaks something fails.
            bad = bool(shown.invalid or broken)
            state = StatusState.FAILURE if bad else StatusState.SUCCESS
            status = Status(context, state, statuses.truncate(line))
            document = {**to_json(shown), **facts, "file_errors": list(broken)}
            text = "\n".join(markdown(shown))
        with self._lock:
            found = self._open.get(ref)
            if found is None or found.wanted != key:
                return  # closed or moved while computing: the next pass has it
            found.done, found.status = Done(key, job.inputs, job.at), status
            found.document, found.markdown = document, text
        self._put(head, document, text)
        log.info("previews: %s at %s: %s", ref, head[:_SHORT], status.description)

    def _put(self, head: str, document: dict[str, Any], text: str) -> None:
        try:
            self.reports.put(head, SECTION, document, text)
        except Exception:  # the status is still posted; the report store logs its own retries
            log.exception("previews: report on %s not stored", head[:_SHORT])


def new_file_errors(base: Iterable[Diagnostic], head: Iterable[Diagnostic]) -> tuple[str, ...]:
    """Files with an error attached to no resource (a file that does not parse, a bad
    `gitops.yaml`) in the head and not in the base: breakage no resource report shows."""

    def files(found: Iterable[Diagnostic]) -> set[str]:
        return {
            d.source.file if d.source else "-"
            for d in found
            if d.obj is None and d.severity is Severity.ERROR
        }

    return tuple(sorted(files(head) - files(base)))


def _pending(prefix: str, base: str) -> Status:
    context = statuses.preview_context(prefix)
    return statuses.pending(context, f"computing preview against {base[:_SHORT]}")


def _stale(found: _Open, head: str, base: str) -> tuple[str, dict[str, Any], str]:
    """The last report of `found`, marked stale because the base moved to `base`."""
    was = str(found.document.get("base", ""))
    note = (
        f"> **Stale**: computed against base {was[:_SHORT]}; the base moved to "
        f"{base[:_SHORT]} and a new preview is being computed.\n\n"
    )
    return head, {**found.document, "stale": True, "base": was}, note + found.markdown


def _failed(
    context: str, facts: dict[str, Any], message: str
) -> tuple[Status, dict[str, Any], str]:
    text = statuses.truncate(f"preview could not be computed: {message}")
    document = {**facts, "error": message}
    return (
        Status(context, StatusState.ERROR, text),
        document,
        f"# Preview of `{facts['ref']}`\n\nThe preview could not be computed: {message}\n",
    )


def for_server(server: Server, clone: Path, reports: CommitReports) -> Previews:
    """The previews of a server's config repository; `clone` is the repository itself (a
    local source) or the server's cache clone (a URL)."""
    gitops = server.values.gitops
    url = gitops.repo.url or ""
    return Previews(
        clone,
        gitops.repo.ref,
        gitops.previews.refs,
        snapshots=lambda: preview_inputs.fleet_snapshots(server.fleet),
        inputs=lambda: preview_inputs.fleet_inputs(server.fleet),
        reports=reports,
        prefix=gitops.status.prefix,
        url=url if git.is_remote(url) else None,
        fetch_lock=server.reload_lock,
        interval=gitops.repo.interval / 1_000_000_000,
    )
