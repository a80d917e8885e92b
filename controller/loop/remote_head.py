"""The poll's cheap check: where does the remote's ref point, without fetching objects?

DESIGN.md section 8 ("`git ls-remote`-cheap no-op check first"), issue 5. `gitops serve`
gives a `HeadWatch` to the `PollTimer` (`controller.loop.triggers`) as its check, so an
interval in which nothing was pushed costs one ref advertisement instead of a fetch; the
anchors list ls-remote-then-skip as Flux's shortcut, and fetch storms against Git hosts
as a known failure of polling controllers.

We use pygit2's `Remote.list_heads` on an anonymous remote, not a `git ls-remote`
subprocess: libgit2 speaks every transport the fetch itself uses (file://, plain paths,
git://, http(s)://, ssh://), with the same credential handling as
`controller.sources.git`, and the server needs no git binary. An anonymous remote needs a
repository to hang on; an empty bare one in a temporary folder costs a few milliseconds
per poll and keeps the URL, and any credentials in it, out of every config file.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading

import pygit2

from controller.sources import git

__all__ = ["HeadWatch", "RemoteHeadError", "remote_head"]

log = logging.getLogger(__name__)

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class RemoteHeadError(Exception):
    """The remote could not be asked (unreachable, refused, not a repository).

    The message has every URL's credentials redacted.
    """


def remote_head(url: str, ref: str) -> str | None:
    """The commit `ref` points at on the remote `url`, or None if the remote has no such ref.

    `ref` is resolved as `controller.sources.git.resolve` does for a fetched clone: the
    exact name (`HEAD`, `refs/...`), then `refs/heads/<ref>`, then `refs/tags/<ref>`
    (annotated tags peeled to their commit). A full commit SHA is returned as is: a pin
    never moves, so asking the remote would only add a failure mode.
    """
    if _FULL_SHA.fullmatch(ref):
        return ref
    heads = _advertised(url)
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        # The peeled entry (`<tag>^{}`) is the commit; the plain one is the tag object.
        sha = heads.get(f"{name}^{{}}") or heads.get(name)
        if sha is not None:
            return sha
    return None


def _advertised(url: str) -> dict[str, str]:
    """Ref name -> object id as the remote advertises them (`git ls-remote URL`)."""
    with tempfile.TemporaryDirectory(prefix="gitops-ls-remote-") as scratch:
        repo = pygit2.init_repository(scratch, bare=True)
        try:
            remote = repo.remotes.create_anonymous(url)
            # `RemoteCallbacks` is the fetch's authentication; one policy for both keeps an
            # ls-remote from succeeding where the fetch after it would be refused.
            heads = remote.list_heads(callbacks=git.RemoteCallbacks(url))
        except (pygit2.GitError, OSError, git.AuthenticationFailed) as err:
            message = git.scrub(str(err), url)
            raise RemoteHeadError(f"cannot list refs of {git.redact(url)}: {message}") from None
        finally:
            repo.free()
    return {h.name: str(h.oid) for h in heads if h.name}


class HeadWatch:
    """The `PollTimer` check: True when the remote ref moved since the last look.

    The first call answers True (nothing is known yet, so a reconcile is worth a fetch),
    and so does a failed look: the fetch that follows reports the failure through the
    loop's statuses, where a silent check would hide it. `seen(sha)` lets the loop record
    the commit a webhook-started reconcile fetched, so the next poll does not fetch again.
    """

    def __init__(self, url: str, ref: str) -> None:
        self._url = url
        self._ref = ref
        self._lock = threading.Lock()
        self._last: str | None = None
        self._known = False

    def seen(self, sha: str | None) -> None:
        with self._lock:
            self._last, self._known = sha, True

    def __call__(self) -> bool:
        try:
            head = remote_head(self._url, self._ref)
        except RemoteHeadError as err:
            log.warning("poll: %s; fetching anyway to report it", err)
            with self._lock:
                self._known = False
            return True
        with self._lock:
            moved = not self._known or head != self._last
            self._last, self._known = head, True
        return moved
