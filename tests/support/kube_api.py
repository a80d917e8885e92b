"""A stand-in for the Kubernetes API server, for the Kubernetes cluster backend's tests.

This is not Kubernetes. It is a small HTTP server on 127.0.0.1 that speaks the part of the
wire protocol the agent uses through the official client, so that tests run the real client
and the real backend code against real sockets (DESIGN.md section 13: stand in for the
Kubernetes API, never patch client methods):

- discovery: `/api`, `/api/v1`, `/apis`, `/apis/{group}/{version}` for the core v1
  Namespace/Service/ServiceAccount/Node, apps/v1 workloads and the Istio kinds the
  translator emits;
- GET of one object and lists (all namespaces or one, `labelSelector` with `k=v`, `k!=v`,
  `k` and `!k` terms), with the list's `metadata.resourceVersion`;
- watches (`?watch=true&resourceVersion=N&timeoutSeconds=S`): chunked newline-delimited JSON
  events ADDED/MODIFIED/DELETED; a version older than the kept history gets an ERROR event
  with a 410 Status, as the real watch cache does; an object that stops matching the label
  selector arrives as DELETED, one that starts matching as ADDED;
- PATCH with `application/apply-patch+yaml` (server-side apply): creates or updates, needs
  `fieldManager`, records the manager in managedFields, bumps resourceVersion only when
  something changed, and refuses a namespaced object in a missing namespace (404);
- DELETE, honouring `preconditions.resourceVersion` (409 on mismatch).

Simplifications (the agent does not depend on them): an apply replaces every content field
(the applier owns the whole spec) and merges labels/annotations; no admission, no
validation beyond ids; no field selectors, pagination, POST or PUT.

Tests inject failures with `fail(method, path_prefix, status, times, retry_after)`, act "as
someone else" with `put`, `edit` and `remove`, read `requests` (method, path, query) to
observe order, and call `expire_history` to force a 410 on the next watch resume.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

import kubernetes.client

#: (group, version) -> [(kind, plural, namespaced)]
RESOURCES: dict[tuple[str, str], list[tuple[str, str, bool]]] = {
    ("", "v1"): [
        ("Namespace", "namespaces", False),
        ("Node", "nodes", False),
        ("Service", "services", True),
        ("ServiceAccount", "serviceaccounts", True),
    ],
    ("apps", "v1"): [
        ("DaemonSet", "daemonsets", True),
        ("Deployment", "deployments", True),
        ("StatefulSet", "statefulsets", True),
    ],
    ("networking.istio.io", "v1"): [
        ("DestinationRule", "destinationrules", True),
        ("Gateway", "gateways", True),
        ("ServiceEntry", "serviceentries", True),
        ("Sidecar", "sidecars", True),
        ("VirtualService", "virtualservices", True),
        ("WorkloadEntry", "workloadentries", True),
    ],
    ("networking.istio.io", "v1alpha3"): [("EnvoyFilter", "envoyfilters", True)],
    ("security.istio.io", "v1"): [
        ("AuthorizationPolicy", "authorizationpolicies", True),
        ("PeerAuthentication", "peerauthentications", True),
    ],
}
_BY_PLURAL = {(g, v, p): (k, ns) for (g, v), rs in RESOURCES.items() for k, p, ns in rs}
_BY_KIND = {(g, v, k): (p, ns) for (g, v), rs in RESOURCES.items() for k, p, ns in rs}
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")

Key = tuple[str, str, str, str, str]  # group, version, plural, namespace, name


@dataclass
class _Failure:
    method: str
    prefix: str
    status: int
    times: int
    retry_after: int | None
    message: str


@dataclass(frozen=True)
class _Event:
    rv: int
    type: str
    key: Key
    obj: dict[str, Any]
    before: dict[str, Any] | None


def _key(obj: dict[str, Any]) -> Key:
    group, _, version = obj["apiVersion"].rpartition("/")
    plural, namespaced = _BY_KIND[(group, version, obj["kind"])]
    meta = obj["metadata"]
    return (group, version, plural, meta.get("namespace", "") if namespaced else "", meta["name"])


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {
        k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")
    }
    return dict(obj, metadata=meta)


def _selector(text: str) -> Callable[[dict[str, Any]], bool]:
    terms = [t.strip() for t in text.split(",") if t.strip()]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        for term in terms:
            if "!=" in term:
                k, v = term.split("!=", 1)
                ok = labels.get(k) != v
            elif "=" in term:
                k, v = term.split("=", 1)
                ok = labels.get(k.rstrip("=")) == v.lstrip("=")
            elif term.startswith("!"):
                ok = term[1:] not in labels
            else:
                ok = term in labels
            if not ok:
                return False
        return True

    return match


class KubeApiStandIn:
    """The server and its state; use as a context manager or call `close`."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.events: list[_Event] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.failures: list[_Failure] = []
        self.rv = 100
        self.oldest_rv = 0  # watches from below this get 410 Gone
        self.epoch = 0  # bumped by expire_history, which ends open watches
        self.cond = threading.Condition()
        self.closing = False
        self._uid = 0
        from tests.support.kube_api_http import handler_for  # the handler imports this module

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> KubeApiStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    def client(self) -> kubernetes.client.ApiClient:
        """An official client pointed here (the caller closes it)."""
        return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=self.url))

    # -- test controls ---------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_prefix: str,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        message: str = "",
    ) -> None:
        """The next `times` requests of `method` under `path_prefix` get `status`."""
        failure = _Failure(method.upper(), path_prefix, status, times, retry_after, message)
        with self.cond:
            self.failures.append(failure)

    def expire_history(self) -> None:
        """Forget the event history: open watches end with a 410 ERROR event, and resuming
        from any older version gets one too (as after an etcd compaction)."""
        with self.cond:
            self.oldest_rv = self.rv + 1
            self.events.clear()
            self.epoch += 1
            self.cond.notify_all()

    def put(self, obj: dict[str, Any], manager: str = "kubectl") -> dict[str, Any]:
        """Create or replace an object "as someone else" (an Update by `manager`)."""
        with self.cond:
            return self._store(copy.deepcopy(obj), manager, "Update", replace=True)

    def edit(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        with self.cond:
            live = copy.deepcopy(self.get(api_version, kind, namespace, name))
            assert live is not None, f"no {kind} {namespace}/{name}"
            change(live)
            return self._store(live, "kubectl-edit", "Update", replace=True)

    def remove(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with self.cond:
            group, _, version = api_version.rpartition("/")
            plural, namespaced = _BY_KIND[(group, version, kind)]
            self._delete((group, version, plural, namespace if namespaced else "", name))

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        group, _, version = api_version.rpartition("/")
        plural, namespaced = _BY_KIND[(group, version, kind)]
        with self.cond:
            found = self.objects.get(
                (group, version, plural, namespace if namespaced else "", name)
            )
            return copy.deepcopy(found) if found else None

    def writes(self) -> list[tuple[str, str]]:
        """(method, path) of every PATCH and DELETE received, in order."""
        return [(m, p) for m, p, _ in self.requests if m in ("PATCH", "DELETE")]

    # -- state changes (callers hold self.cond) --------------------------------------------

    def _store(
        self, obj: dict[str, Any], manager: str, operation: str, replace: bool
    ) -> dict[str, Any]:
        key = _key(obj)
        before = self.objects.get(key)
        meta = obj.setdefault("metadata", {})
        for name in _SERVER_FIELDS:
            meta.pop(name, None)
        managers: list[dict[str, Any]] = []
        if before is None:
            self._uid += 1
            meta.update(
                uid=f"uid-{self._uid}", creationTimestamp="2024-05-14T10:00:00Z", generation=1
            )
        else:
            bmeta = before["metadata"]
            if "status" in before and "status" not in obj:
                obj["status"] = before["status"]
            if not replace:  # an apply keeps labels and annotations other writers set
                for field in ("labels", "annotations"):
                    if bmeta.get(field):
                        meta[field] = {**bmeta[field], **(meta.get(field) or {})}
            meta.update({k: bmeta[k] for k in ("uid", "creationTimestamp", "generation")})
            managers = [m for m in bmeta["managedFields"] if m["manager"] != manager]
            known = len(managers) < len(bmeta["managedFields"])
            if known and _content(obj) == _content(before):
                return copy.deepcopy(before)  # a no-op write: no new version, no event
            if obj.get("spec") != before.get("spec"):
                meta["generation"] = bmeta["generation"] + 1
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        meta["managedFields"] = [
            *managers,
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": obj["apiVersion"],
                "fieldsType": "FieldsV1",
            },
        ]
        self.objects[key] = obj
        self.events.append(
            _Event(
                self.rv, "ADDED" if before is None else "MODIFIED", key, copy.deepcopy(obj), before
            )
        )
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def _delete(self, key: Key) -> dict[str, Any] | None:
        before = self.objects.pop(key, None)
        if before is not None:
            self.rv += 1
            gone = copy.deepcopy(before)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self.events.append(_Event(self.rv, "DELETED", key, gone, before))
            self.cond.notify_all()
        return before

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self.cond:
            for f in self.failures:
                if f.method == method and path.startswith(f.prefix) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    def watch_events(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        since: int | None,
        match: Callable[[dict[str, Any]], bool],
        timeout: float,
    ) -> Iterator[dict[str, Any]]:
        """Watch events after `since` (None: synthetic ADDED for what exists, then new ones)."""

        def mine(key: Key) -> bool:
            return key[:3] == (group, version, plural) and (not namespace or key[3] == namespace)

        gone = _status(410, "Expired", f"too old resource version: {since}")
        with self.cond:
            epoch = self.epoch
            expired = since is not None and since < self.oldest_rv - 1
            pending = []
            if since is None:
                pending = [
                    {"type": "ADDED", "object": copy.deepcopy(o)}
                    for k, o in sorted(self.objects.items())
                    if mine(k) and match(o)
                ]
                since = self.rv
        if expired:
            yield {"type": "ERROR", "object": gone}
            return
        yield from pending
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                if self.epoch != epoch:  # history expired under this watch
                    fresh, ended = [], True
                else:
                    fresh = [e for e in self.events if e.rv > since and mine(e.key)]
                    ended = False
                    if not fresh:
                        left = deadline - time.monotonic()
                        if self.closing or left <= 0:
                            return
                        self.cond.wait(timeout=min(left, 1.0))
                        continue
            if ended:
                yield {"type": "ERROR", "object": gone}
                return
            since = fresh[-1].rv
            for e in fresh:
                now, was = match(e.obj), e.before is not None and match(e.before)
                kind = e.type
                if e.type == "MODIFIED" and now != was:
                    kind = "ADDED" if now else "DELETED"
                elif not (now or was):
                    continue
                yield {"type": kind, "object": e.obj}
