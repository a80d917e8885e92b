"""Hand-built Istio objects for the preview tests: small, only the fields the semantics read."""

from __future__ import annotations

from typing import Any


def vs(
    name: str = "reviews",
    weights: tuple[int, ...] = (90, 10),
    timeout: str | None = None,
    fault: dict[str, Any] | None = None,
    hosts: tuple[str, ...] = ("reviews.bookinfo.svc.cluster.local",),
) -> dict[str, Any]:
    route: dict[str, Any] = {
        "name": "main",
        "match": [{"uri": {"prefix": "/"}}],
        "route": [
            {
                "destination": {"host": hosts[0], "subset": f"v{i + 1}"},
                "weight": w,
            }
            for i, w in enumerate(weights)
        ],
    }
    if timeout is not None:
        route["timeout"] = timeout
    if fault is not None:
        route["fault"] = fault
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "bookinfo"},
        "spec": {"hosts": list(hosts), "http": [route]},
    }


def peer_auth(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": "bookinfo"},
        "spec": {"mtls": {"mode": mode}},
    }


def authz(*principals: str, dry_run: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "ratings-callers", "namespace": "bookinfo"}
    if dry_run:
        meta["annotations"] = {"istio.io/dry-run": "true"}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": meta,
        "spec": {
            "action": "ALLOW",
            "selector": {"matchLabels": {"app": "ratings"}},
            "rules": [{"from": [{"source": {"principals": list(principals)}}]}],
        },
    }


PRODUCTPAGE = "cluster.local/ns/bookinfo/sa/productpage"
REVIEWS = "cluster.local/ns/bookinfo/sa/reviews"
