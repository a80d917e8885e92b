"""The Kubernetes backend's seam to the API server: requests, errors, retries, resources.

Called by `controller.backends.kube_watch` (lists and watches) and
`controller.backends.kubernetes` (discovery, server-side apply, prune). It drives the
official client's `ApiClient` at its lowest documented level (`param_serialize` +
`call_api`), so one small module handles every kind the same way, authentication and TLS
stay the client's, and the untyped client is confined to `Any` here.

Errors are classified by what the caller does next (STYLE.md rule 4):
- `Transient` (429, 500, 502, 503, 504, connection failures): retried here with tenacity,
  honouring `Retry-After` on 429; raised only once the attempts are spent.
- `Gone` (410): the watch's resourceVersion is too old; re-list.
- `Rejected` (any other 4xx, e.g. 409 Conflict, 422 Invalid, 404): not retried; the API's
  message becomes that object's error.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import tenacity
import urllib3

from controller.backends import BackendError

__all__ = ["APPLY_PATCH", "Gone", "KubeError", "Rejected", "Resource", "Rest", "Transient"]

log = logging.getLogger(__name__)

APPLY_PATCH = "application/apply-patch+yaml"
_TRANSIENT = frozenset({0, 429, 500, 502, 503, 504})
#: Attempts per request, and the longest Retry-After we obey: a throttled agent waits, but
#: not so long that an apply of a few hundred objects stalls for hours.
_ATTEMPTS = 6
_MAX_RETRY_AFTER = 30.0
#: (connect, read) seconds for ordinary requests; a healthy API server answers in well under.
_TIMEOUT = (10.0, 60.0)


class KubeError(BackendError):
    """A request failed; `message` is the API server's own text when it sent one."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class Transient(KubeError):
    """Throttled, server error or no connection: worth retrying."""


class Gone(KubeError):
    """410: the resourceVersion is no longer in the server's history."""


class Rejected(KubeError):
    """The server refused this request (conflict, invalid, not found...): do not retry."""


def classify(status: int, body: bytes, retry_after: str | None) -> KubeError:
    try:
        doc = json.loads(body) if body else {}
        message = doc.get("message") if isinstance(doc, dict) else None
    except ValueError:
        message = None
    text = message or body.decode("utf-8", "replace")[:300] or f"HTTP {status}"
    try:
        after = float(retry_after) if retry_after else None
    except ValueError:
        after = None
    if status in _TRANSIENT:
        return Transient(status, text, after)
    return (Gone if status == 410 else Rejected)(status, text)


#: 0.2 s, 0.4 s, 0.8 s... (plus up to 0.2 s jitter so agents do not retry in lockstep).
_BACKOFF = tenacity.wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2)


def _wait(state: tenacity.RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, KubeError) and exc.retry_after is not None:
        return min(exc.retry_after, _MAX_RETRY_AFTER)
    return float(_BACKOFF(state))


_RETRY = {
    "retry": tenacity.retry_if_exception_type(Transient),
    "wait": _wait,
    "stop": tenacity.stop_after_attempt(_ATTEMPTS),
    "reraise": True,
    "before_sleep": lambda s: log.info(
        "retrying %s after %s", s.fn, s.outcome.exception() if s.outcome else None
    ),
}


@dataclass(frozen=True)
class Resource:
    """A served kind: where its objects live on the API server."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        where = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{where}/{self.plural}" + (f"/{name}" if name else "")


class Rest:
    """JSON requests against one API server through an official `ApiClient`."""

    def __init__(self, api_client: Any) -> None:
        self.api: Any = api_client
        self._lock = threading.Lock()
        self._served: dict[tuple[str, str], dict[str, Resource]] = {}

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        content_type: str | None,
        timeout: Any,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        request = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            return self.api.call_api(*request, _request_timeout=timeout)
        # urllib3 and socket errors, and the client's untyped ApiException (TLS failures).
        except Exception as err:
            raise Transient(0, f"cannot reach the API server: {err}") from None

    def _once(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        content_type: str | None,
    ) -> Any:
        response = self._send(method, path, query, body, content_type, _TIMEOUT)
        try:
            data: bytes = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Transient(0, f"reading the API server's answer failed: {err}") from None
        finally:
            response.response.release_conn()
        if not 200 <= response.status < 300:
            raise classify(response.status, data, response.getheader("Retry-After"))
        return json.loads(data) if data else {}

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        """One request, retried while `Transient`; the decoded JSON answer."""
        retrying = tenacity.Retrying(**_RETRY)  # type: ignore[arg-type]
        return retrying(self._once, method, path, query, body, content_type)

    def resource(self, group: str, version: str, kind: str) -> Resource | None:
        """The served resource for a kind (API discovery, cached); None if not served."""
        with self._lock:
            cached = self._served.get((group, version))
        if cached is None:
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self.call("GET", path)
            except Rejected as err:
                if err.status != 404:
                    raise
                listing = {"resources": []}
            cached = {
                r["kind"]: Resource(group, version, r["kind"], r["name"], bool(r["namespaced"]))
                for r in listing.get("resources", [])
                if "/" not in r.get("name", "/")  # subresources such as `services/status`
            }
            if kind in cached:  # a miss is not cached: the CRD may be installed later
                with self._lock:
                    self._served[(group, version)] = cached
        return cached.get(kind)

    def watch(
        self,
        path: str,
        query: Sequence[tuple[str, str]],
        timeout_seconds: int,
        register: Callable[[Callable[[], None] | None], None],
    ) -> Generator[dict[str, Any], None, None]:
        """The events of one watch request until the server ends it.

        `register` receives a function that aborts the stream from another thread (and None
        when the stream is over), so `close` need not wait for the next event.
        """
        query = [*query, ("watch", "true"), ("timeoutSeconds", str(timeout_seconds))]
        timeout = (_TIMEOUT[0], timeout_seconds + 30.0)
        response = self._send("GET", path, query, None, None, timeout)
        raw = response.response

        def abort() -> None:
            # A caller may hold this just as the stream ends on its own: shutting down a
            # released or closed response then fails, and there is nothing left to abort.
            try:
                raw.shutdown()
            except (OSError, RuntimeError, ValueError):
                log.debug("watch %s: already over when aborted", path)

        try:
            if response.status != 200:
                raise classify(response.status, response.read(), response.getheader("Retry-After"))
            register(abort)
            for line in raw:
                if line.strip():
                    yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise Transient(0, f"watch interrupted: {err}") from None
        finally:
            register(None)
            raw.release_conn()
            raw.close()
