"""Commit statuses as git notes: the default writer, needing no Git host.

Each commit the controller reports on gets one note under `refs/notes/mesh-gitops`: a JSON
document holding the latest status of every context,

    {"statuses": {"mesh-gitops/translation": {"context": ..., "state": "success",
                  "description": ..., "target_url": ...}, ...}}

so `git fetch origin refs/notes/mesh-gitops:refs/notes/mesh-gitops` followed by
`git log --notes=mesh-gitops` shows them. A post merges its context into the note
(the other contexts stay), writes it with pygit2 into the controller's local clone, then
pushes the notes ref to the remote.

A push that fails leaves the note written locally and raises `StatusUnavailable`; the next
post pushes again, even when its status is a repeat, so nothing is lost while the remote
is down. Pushes are fast-forwards, never forced. Before its first push, and again when the
remote refuses one, the writer fetches the remote's notes and replays its own on top (a
server restarted with an empty cache clone, a second replica, a note added by hand): per
commit the two JSON documents are merged, this writer's contexts winning.

Built by `controller.status.writer_for`; the server calls `post` after each step.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pygit2

from controller.status.errors import StatusError, StatusUnavailable
from gitops.statuses import Status, check_sha

log = logging.getLogger(__name__)

NOTES_REF = "refs/notes/mesh-gitops"
#: Where the remote's notes are fetched to before ours are replayed on top of them.
REMOTE_NOTES_REF = "refs/mesh-gitops/remote-notes"
_SIGNATURE = ("mesh-gitops", "mesh-gitops@localhost")


class NotesWriter:
    """Statuses in `refs/notes/mesh-gitops` of the repository at `repo_path`.

    `remote` is a remote name of that repository or a URL (pushed to anonymously);
    `None` keeps notes local. `credentials` (a pygit2 credential object) is offered to
    remotes that ask for it.
    """

    def __init__(
        self,
        repo_path: Path,
        *,
        remote: str | None = "origin",
        credentials: Any = None,
    ) -> None:
        try:
            self._repo = pygit2.Repository(str(repo_path))
        except pygit2.GitError as exc:
            raise StatusError(f"no Git repository at {repo_path}: {exc}") from None
        self._remote = remote
        self._credentials = credentials
        #: The notes commit last pushed; a different tip means a push is owed.
        self._pushed: pygit2.Oid | None = None

    def post(self, sha: str, status: Status) -> bool:
        check_sha(sha)
        document = self._read(sha)
        statuses: dict[str, Any] = document.setdefault("statuses", {})
        if statuses.get(status.context) == status.to_json():
            self._push_if_owed()
            return False
        statuses[status.context] = status.to_json()
        document["statuses"] = dict(sorted(statuses.items()))
        self._write(sha, document)
        self._push_if_owed()
        return True

    def post_many(self, sha: str, statuses: list[Status]) -> int:
        """Post several contexts on one commit with one note write and one push (a publish
        to a hundred clusters changes two hundred contexts on the same commit); returns
        how many changed."""
        check_sha(sha)
        document = self._read(sha)
        held: dict[str, Any] = document.setdefault("statuses", {})
        changed = 0
        for status in statuses:
            if held.get(status.context) != status.to_json():
                held[status.context] = status.to_json()
                changed += 1
        if changed:
            document["statuses"] = dict(sorted(held.items()))
            self._write(sha, document)
        self._push_if_owed()
        return changed

    def latest(self, sha: str) -> dict[str, Status]:
        check_sha(sha)
        statuses = self._read(sha).get("statuses", {})
        return {context: Status.from_json(data) for context, data in sorted(statuses.items())}

    def close(self) -> None:
        self._repo.free()

    # -- the note --------------------------------------------------------------------------

    def _read(self, sha: str) -> dict[str, Any]:
        try:
            note = self._repo.lookup_note(sha, NOTES_REF)
        except KeyError:
            return {}
        try:
            document = json.loads(note.message)
        except ValueError:
            # Someone wrote by hand into our ref: start afresh rather than fail every post.
            log.warning("note on %s in %s is not JSON; replacing it", sha[:12], NOTES_REF)
            return {}
        return document if isinstance(document, dict) else {}

    def _write(self, sha: str, document: dict[str, Any]) -> None:
        if sha not in self._repo:
            raise StatusError(f"commit {sha} is not in the repository; cannot annotate it")
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        who = pygit2.Signature(*_SIGNATURE)
        self._repo.create_note(text, who, who, sha, NOTES_REF, True)

    # -- the remote ------------------------------------------------------------------------

    def _push_if_owed(self) -> None:
        if self._remote is None:
            return
        try:
            tip = self._repo.references[NOTES_REF].target
        except KeyError:
            return
        if tip == self._pushed:
            return
        if self._pushed is None:
            self._catch_up()  # first push: build on what the remote already has
        rejected = self._push()
        if rejected:
            # Someone else moved the remote's notes since: replay ours on theirs, once.
            self._catch_up()
            rejected = self._push()
        if rejected:
            where = _display(self._remote)
            raise StatusUnavailable(f"notes written locally, {where}: {rejected}")
        tip = self._repo.references[NOTES_REF].target
        if not isinstance(tip, pygit2.Oid):
            raise AssertionError("a notes ref is never symbolic")
        self._pushed = tip

    def _push(self) -> str:
        """Push the notes ref; returns why it did not land, empty when it did."""
        assert self._remote is not None
        remote = self._remote_object(self._remote)
        callbacks = _PushCallbacks(credentials=self._credentials)
        try:
            remote.push([f"{NOTES_REF}:{NOTES_REF}"], callbacks=callbacks)
        except (pygit2.GitError, OSError) as exc:
            # libgit2 raises for a non-fast-forward it can see locally, and for I/O errors.
            return f"push failed: {exc}"
        # A ref the remote itself refused (non-fast-forward, a hook) is reported here.
        return f"refused {NOTES_REF}: {callbacks.rejected}" if callbacks.rejected else ""

    def _catch_up(self) -> None:
        """Fetch the remote's notes and replay ours on top, so the next push fast-forwards."""
        assert self._remote is not None
        remote = self._remote_object(self._remote)
        try:
            remote.fetch(
                [f"+{NOTES_REF}:{REMOTE_NOTES_REF}"],
                callbacks=_PushCallbacks(credentials=self._credentials),
            )
        except (pygit2.GitError, OSError) as exc:
            where = _display(self._remote)
            raise StatusUnavailable(
                f"notes written locally, fetching {NOTES_REF} from {where} failed: {exc}"
            ) from None
        theirs_ref = self._repo.references.get(REMOTE_NOTES_REF)
        mine_ref = self._repo.references.get(NOTES_REF)
        if theirs_ref is None:
            return  # the remote has no notes yet
        theirs = theirs_ref.target
        if mine_ref is not None:
            mine = mine_ref.target
            if mine == theirs or self._repo.descendant_of(mine, theirs):
                return  # already on top of theirs
            ours = {
                note.annotated_id: self._read(str(note.annotated_id))
                for note in self._repo.notes(NOTES_REF)  # type: ignore[call-arg]  # stub lacks ref
            }
        else:
            ours = {}
        self._repo.references.create(NOTES_REF, theirs, force=True)
        for annotated, document in sorted(ours.items(), key=lambda item: str(item[0])):
            sha = str(annotated)
            merged = _merged(self._read(sha), document)
            if merged != self._read(sha):
                self._write(sha, merged)

    def _remote_object(self, remote: str) -> pygit2.Remote:
        if "://" in remote or remote.startswith("/") or "@" in remote:
            # An anonymous remote keeps a URL (and credentials in it) out of the config.
            return self._repo.remotes.create_anonymous(remote)
        try:
            return self._repo.remotes[remote]
        except KeyError:
            raise StatusError(f"the repository has no remote {remote!r}") from None


def _merged(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """One commit's note after a catch-up: every context of both, ours winning."""
    statuses = {**theirs.get("statuses", {}), **ours.get("statuses", {})}
    return {**theirs, **ours, "statuses": dict(sorted(statuses.items()))}


class _PushCallbacks(pygit2.RemoteCallbacks):
    def __init__(self, credentials: Any = None) -> None:
        super().__init__(credentials=credentials)
        self.rejected = ""

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected = message


def _display(remote: str) -> str:
    # `https://user:token@host/x.git` must not reach a message.
    scheme, sep, rest = remote.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return remote
