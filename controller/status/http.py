"""The shared half of the Git host writers: one HTTP client, one retry policy, dedup.

`controller.status.github` (GitHub, Gitea) and `controller.status.gitlab` subclass
`HostWriter` and supply three things: how to authenticate, how to post one status, and how
to list a commit's latest statuses. Everything the hosts share lives here, once:

- the SHA is checked before any request (`gitops.statuses.check_sha`);
- a post identical to the latest for its context is skipped: first against what this
  writer posted itself, then against the host's list (Flux lists too, notification-controller
  #1009; without it a restart re-posts every status);
- 5xx, 429 and rate-limit 403s back off with tenacity, honouring `Retry-After` /
  `X-RateLimit-Reset` up to a cap; other 4xx are final (`StatusRejected`);
- the token is held in a header only and scrubbed from every message, log line and
  description (`_scrub`), so a server echoing it back cannot leak it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from controller.status.errors import StatusRejected, StatusUnavailable
from gitops.statuses import Status, StatusState, check_sha

log = logging.getLogger(__name__)

_REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to keep trying a host that is down or rate-limiting us.

    Five attempts over at most ~a minute: statuses are re-derived every reconcile, so a
    status lost to a long outage is posted again by the next one.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    timeout: float = 10.0


class _Retryable(Exception):
    def __init__(self, message: str, delay: float | None) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True, slots=True)
class Wire:
    """A status as the host stores it: what dedup compares (state in the host's words)."""

    state: str
    description: str
    target_url: str


class HostWriter:
    """Base of the HTTP writers; subclasses implement `_headers`, `_post_one`, `_list`."""

    host = "git host"

    def __init__(self, api_url: str, token: str, *, retry: RetryPolicy | None = None) -> None:
        if not token:
            raise ValueError(f"{self.host} statuses need an API token (gitops.status.tokenSecret)")
        self._token = token
        self._retry = retry or RetryPolicy()
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={**self._headers(token), "Accept": "application/json"},
            timeout=self._retry.timeout,
            follow_redirects=False,
        )
        #: What this writer posted, per (sha, context): lets repeats skip the list call.
        self._posted: dict[tuple[str, str], Wire] = {}

    # -- the StatusWriter protocol ---------------------------------------------------------

    def post(self, sha: str, status: Status) -> bool:
        check_sha(sha)
        status = Status(
            status.context,
            status.state,
            self._scrub(status.description),
            self._scrub(status.target_url),
        )
        wire = self.to_wire(status)
        key = (sha, status.context)
        known = self._posted.get(key)
        if known is None:
            current = self.latest(sha).get(status.context)
            known = self.to_wire(current) if current else None
        if known == wire:
            log.debug("status %s on %s unchanged; not posted", status.context, sha[:12])
            return False
        posted = self._post_one(sha, status, wire)
        if posted:
            self._posted[key] = wire
        return posted

    def latest(self, sha: str) -> dict[str, Status]:
        check_sha(sha)
        return self._list(sha)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HostWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- for subclasses ----------------------------------------------------------------------

    def _headers(self, token: str) -> dict[str, str]:
        raise NotImplementedError

    def _post_one(self, sha: str, status: Status, wire: Wire) -> bool:
        raise NotImplementedError

    def _list(self, sha: str) -> dict[str, Status]:
        raise NotImplementedError

    def to_wire(self, status: Status) -> Wire:
        return Wire(status.state.value, status.description, status.target_url)

    def state_from_wire(self, state: str) -> StatusState:
        return StatusState(state)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str | int] | None = None,
        final: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """One API call with the retry policy. Codes in `final` are returned, not raised."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self._retry.attempts),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, json, params, final)
        except _Retryable as exc:
            raise StatusUnavailable(
                f"{self.host}: {method} {path} failed {self._retry.attempts} times: {exc}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _once(
        self,
        method: str,
        path: str,
        json: dict[str, Any] | None,
        params: dict[str, str | int] | None,
        final: frozenset[int],
    ) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            # Connection refused, reset, timeout: the host may be back in a moment.
            raise _Retryable(self._scrub(f"{type(exc).__name__}: {exc}"), None) from None
        code = response.status_code
        if code < 300 or code in final:
            return response
        detail = self._scrub(response.text[:200].strip())
        if code >= 500 or code == 429 or (code == 403 and _rate_limited(response)):
            log.warning("%s: %s %s answered %d; backing off", self.host, method, path, code)
            raise _Retryable(f"HTTP {code} {detail}", _server_delay(response))
        raise StatusRejected(f"{self.host}: {method} {path} answered HTTP {code}: {detail}")

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = exc.delay if isinstance(exc, _Retryable) else None
        backoff = self._retry.base_delay * 2 ** (state.attempt_number - 1)
        delay = hinted if hinted is not None else backoff
        return max(0.0, min(delay, self._retry.max_delay))

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, _REDACTED) if self._token else text


def _rate_limited(response: httpx.Response) -> bool:
    # GitHub's primary limit: 403 with X-RateLimit-Remaining: 0; its secondary limit:
    # 403 with Retry-After. Any other 403 is a permission problem and final.
    headers = response.headers
    return headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers


def _server_delay(response: httpx.Response) -> float | None:
    headers = response.headers
    try:
        if "retry-after" in headers:
            return float(headers["retry-after"])
        if "x-ratelimit-reset" in headers:
            # An epoch second: the host's clock, hence the floor at zero.
            return max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
    except ValueError:
        return None
    return None


def next_link(response: httpx.Response) -> str | None:
    """The `rel="next"` page of a paginated list (GitHub, Gitea and GitLab all send one)."""
    url = response.links.get("next", {}).get("url")
    return str(url) if url else None
