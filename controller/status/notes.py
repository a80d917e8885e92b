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
is down. The controller is the only writer of this ref, so the push is a fast-forward.

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
        remote = self._remote_object(self._remote)
        callbacks = _PushCallbacks(credentials=self._credentials)
        where = _display(self._remote)
        try:
            remote.push([f"{NOTES_REF}:{NOTES_REF}"], callbacks=callbacks)
        except (pygit2.GitError, OSError) as exc:
            raise StatusUnavailable(
                f"notes written locally, push to {where} failed: {exc}"
            ) from None
        if callbacks.rejected:
            # libgit2 reports a refused ref (non-fast-forward, a hook) here, not by raising.
            raise StatusUnavailable(
                f"notes written locally, {where} refused {NOTES_REF}: {callbacks.rejected}"
            )
        if not isinstance(tip, pygit2.Oid):
            raise AssertionError("a notes ref is never symbolic")
        self._pushed = tip

    def _remote_object(self, remote: str) -> pygit2.Remote:
        if "://" in remote or remote.startswith("/") or "@" in remote:
            # An anonymous remote keeps a URL (and credentials in it) out of the config.
            return self._repo.remotes.create_anonymous(remote)
        try:
            return self._repo.remotes[remote]
        except KeyError:
            raise StatusError(f"the repository has no remote {remote!r}") from None


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
