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
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes.client
import yaml

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
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
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


def _handler_for(api: KubeApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.api = api
    return Handler


class _Handler(BaseHTTPRequestHandler):
    """One request; HTTP/1.1 so the client's pooled connections and chunked watches work."""

    protocol_version = "HTTP/1.1"
    api: KubeApiStandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests` instead

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _send(self, code: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(code, _status(code, _REASONS.get(code, "Unknown"), message), headers)

    def _dispatch(self, method: str) -> None:
        api = self.api
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with api.cond:
            api.requests.append((method, url.path, query))
        try:
            failure = api._take_failure(method, url.path)
            if failure is not None:
                extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                self._error(failure.status, failure.message or f"injected {failure.status}", extra)
                return
            self._route(method, url.path, query, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for g, v in RESOURCES:
                if g:
                    groups.setdefault(g, []).append(v)
            return self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": g,
                            "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                            "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                        }
                        for g, vs in groups.items()
                    ],
                },
            )
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[2:]
        else:
            return self._error(404, f"the server could not find the requested resource {path}")
        version, rest = rest[0], rest[1:]
        if (group, version) not in RESOURCES:
            return self._error(404, f"the server could not find the requested resource {path}")
        if not rest:
            gv = f"{group}/{version}" if group else version
            return self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": [
                        {
                            "name": p,
                            "singularName": k.lower(),
                            "namespaced": ns,
                            "kind": k,
                            "verbs": ["delete", "get", "list", "patch", "watch"],
                        }
                        for k, p, ns in RESOURCES[(group, version)]
                    ],
                },
            )
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, plural, name = rest[1], rest[2], "/".join(rest[3:])
        else:
            namespace, plural, name = "", rest[0], "/".join(rest[1:])
        if (group, version, plural) not in _BY_PLURAL:
            return self._error(404, f"the server could not find the requested resource {path}")
        kind, namespaced = _BY_PLURAL[(group, version, plural)]
        api_version = f"{group}/{version}" if group else version
        key: Key = (group, version, plural, namespace, name)
        if method == "GET" and not name:
            return self._list(group, version, plural, kind, api_version, namespace, query)
        if method == "GET":
            with self.api.cond:
                found = self.api.objects.get(key)
                if found is None:
                    return self._error(404, f'{plural} "{name}" not found')
                return self._send(200, found)
        if method == "PATCH" and name:
            return self._apply(key, kind, api_version, namespaced, query, body)
        if method == "DELETE" and name:
            return self._delete(key, plural, body)
        return self._error(405, f"{method} {path} is not supported by this stand-in")

    def _list(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        api_version: str,
        namespace: str,
        query: dict[str, str],
    ) -> None:
        match = _selector(query.get("labelSelector", ""))
        if query.get("watch") in ("true", "1"):
            rv = query.get("resourceVersion")
            since = int(rv) if rv and rv != "0" else None
            timeout = float(query.get("timeoutSeconds") or 60)
            events = self.api.watch_events(group, version, plural, namespace, since, match, timeout)
            return self._stream(events)
        with self.api.cond:
            items = [
                copy.deepcopy(o)
                for k, o in sorted(self.api.objects.items())
                if k[:3] == (group, version, plural)
                and (not namespace or k[3] == namespace)
                and match(o)
            ]
            rv = str(self.api.rv)
        for item in items:  # list items do not repeat apiVersion and kind
            item.pop("apiVersion", None)
            item.pop("kind", None)
        self._send(
            200,
            {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            },
        )

    def _stream(self, events: Iterator[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self.close_connection = True  # the client went away (or closed its watch)

    def _apply(
        self,
        key: Key,
        kind: str,
        api_version: str,
        namespaced: bool,
        query: dict[str, str],
        body: bytes,
    ) -> None:
        if self.headers.get("Content-Type") != "application/apply-patch+yaml":
            return self._error(415, "this stand-in only accepts application/apply-patch+yaml")
        manager = query.get("fieldManager")
        if not manager:
            return self._error(400, "PATCH request must have fieldManager")
        try:
            obj = yaml.safe_load(body)
        except yaml.YAMLError as err:
            return self._error(400, f"error decoding YAML: {err}")
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict) or (obj.get("apiVersion"), obj.get("kind")) != (
            api_version,
            kind,
        ):
            return self._error(400, "the body does not match the path's apiVersion and kind")
        if meta.get("name") != key[4] or meta.get("namespace", key[3]) != key[3]:
            return self._error(400, "the body's name or namespace does not match the path")
        with self.api.cond:
            if namespaced and ("", "v1", "namespaces", "", key[3]) not in self.api.objects:
                return self._error(404, f'namespaces "{key[3]}" not found')
            created = key not in self.api.objects
            stored = self.api._store(obj, manager, "Apply", replace=False)
        self._send(201 if created else 200, stored)

    def _delete(self, key: Key, plural: str, body: bytes) -> None:
        options = json.loads(body) if body else {}
        wanted = ((options or {}).get("preconditions") or {}).get("resourceVersion")
        with self.api.cond:
            live = self.api.objects.get(key)
            if live is None:
                return self._error(404, f'{plural} "{key[4]}" not found')
            if wanted is not None and wanted != live["metadata"]["resourceVersion"]:
                return self._error(
                    409,
                    (
                        f"Precondition failed: ResourceVersion in precondition: {wanted}, "
                        f"ResourceVersion in object meta: {live['metadata']['resourceVersion']}"
                    ),
                )
            self.api._delete(key)
        self._send(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": key[4], "kind": plural},
            },
        )
