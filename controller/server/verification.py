"""`gitops.repo.verify: head` in the server: which commits may be loaded, and the statuses
of those that may not.

`Server.reload` (`controller/server/app.py`) builds one `Verification` at start and asks
it about every commit `open_source` read, before loading it. Verdicts come from
`controller.sources.signatures.Verifier` and are cached by commit id, so a refused head is
checked once, not on every poll or webhook. A refused commit is never loaded or synced:
the last good config stays published. It is remembered (the last `REFUSED` of them) and
`statuses` - a `StatusSource` the Git loop registers with the status reporter
(`controller/server/status_loop.py`) - posts `<prefix>/translation` = failure
"not synced: <reason>" on each.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from controller.secrets import SecretsDir
from controller.sources import SourceError, git
from controller.sources.signatures import SignatureError, Verdict, Verifier
from gitops import statuses
from gitops.helm.gitops_block import Repo
from gitops.statuses import Status, StatusState

__all__ = ["Verification"]

log = logging.getLogger(__name__)

#: Verdicts kept, by commit id: far more than the commits a branch moves through between
#: two restarts matter for, and a few KB.
VERDICTS = 256
#: Refused commits whose failure status is kept up; older ones keep the status they got.
REFUSED = 32


class Verification:
    """The verify gate for one server (see the module docstring)."""

    def __init__(self, verifier: Verifier, location: str, cache_dir: Path, prefix: str) -> None:
        self.verifier, self.location, self.cache_dir = verifier, location, cache_dir
        self.context = statuses.translation_context(prefix)
        self.lock = threading.Lock()
        self.verdicts: OrderedDict[str, Verdict] = OrderedDict()
        self.refused: OrderedDict[str, str] = OrderedDict()
        #: Signatures actually checked (cache misses), for tests and logs.
        self.checks = 0

    @classmethod
    def from_values(
        cls, repo: Repo, prefix: str, secrets: SecretsDir | None, cache_dir: Path
    ) -> Verification:
        """The gate for `gitops.repo`; `SignatureError` says what is missing."""
        name = repo.allowed_keys_secret
        if name is None:
            raise SignatureError(
                "gitops.repo.verify is head but gitops.repo.allowedKeysSecret is not set"
            )
        if secrets is None:
            raise SignatureError(
                f"gitops.repo.verify is head: --secrets DIR must hold allowed keys secret '{name}'"
            )
        verifier = Verifier.from_secret(secrets, name)
        log.info(
            "commit signatures verified against %d OpenPGP and %d SSH keys of secret '%s'",
            len(verifier.pgp_fingerprints),
            len(verifier.ssh_keys),
            name,
        )
        return cls(verifier, repo.url or "", cache_dir, prefix)

    def refusal(self, revision: str | None) -> str:
        """Why the commit `revision` may not be loaded, or "" when it is signed by an
        allowed key. Each refusal is logged once."""
        if revision is None:
            return "the source is a plain directory: there is no commit to verify"
        with self.lock:
            verdict = self.verdicts.get(revision)
            if verdict is not None:
                self.verdicts.move_to_end(revision)
                return "" if verdict.ok else verdict.reason
        try:
            verdict = self.verifier.verify(git.repository(self.location, self.cache_dir), revision)
        except (SignatureError, SourceError) as exc:
            # The check could not run: refuse this time, and look again on the next reload.
            log.error("commit %s not verified (keeping the last config): %s", revision[:12], exc)
            return f"signature not checked: {exc}"
        with self.lock:
            self.checks += 1
            self.verdicts[revision] = verdict
            while len(self.verdicts) > VERDICTS:
                self.verdicts.popitem(last=False)
            if not verdict.ok:
                self.refused[revision] = verdict.reason
                while len(self.refused) > REFUSED:
                    self.refused.popitem(last=False)
        if verdict.ok:
            log.info("commit %s %s", revision[:12], verdict.reason)
            return ""
        log.error(
            "commit %s not synced (keeping the last config): %s", revision[:12], verdict.reason
        )
        return verdict.reason

    def statuses(self) -> dict[tuple[str, str], Status]:
        """`<prefix>/translation` = failure on every remembered refused commit."""
        with self.lock:
            refused = list(self.refused.items())
        return {
            (sha, self.context): Status(
                self.context, StatusState.FAILURE, statuses.truncate(f"not synced: {reason}")
            )
            for sha, reason in refused
        }
