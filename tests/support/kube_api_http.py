"""The HTTP side of the Kubernetes API stand-in (`tests/support/kube_api.py`): routing,
lists, watches, server-side apply and delete, one request at a time.

Kept apart from the stand-in's state so each file stays readable; `KubeApiStandIn` builds
its server with `handler_for(self)`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.support.kube_api import _BY_PLURAL, _REASONS, RESOURCES, Key, _selector, _status

if TYPE_CHECKING:
    from tests.support.kube_api import KubeApiStandIn


def handler_for(api: KubeApiStandIn) -> type[BaseHTTPRequestHandler]:
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
