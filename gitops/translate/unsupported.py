"""Fields that load (they are valid Gloo config) but are not translated by this version.

Called once per translation by `translate`. Each field a user set that we do not
turn into Istio config is an `UnsupportedField` warning naming the field, so nothing
is ignored silently; the rest of the resource is translated. The table below is
the single list of such fields (docs/kinds.md mirrors it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from gitops.bundle import ConfigObject
from gitops.diagnostics import Diagnostic
from gitops.ids import ObjectRef
from gitops.reasons import Reason

_SA_LABELS = (
    "ServiceAccount labels are not discovered yet; a service account selector with labels "
    "matches no service account"
)
_EXTERNAL_CLIENTS = "external workloads are not translated yet; this client matches nothing"
_CNI = "CNI enforcement is not translated; the sidecars enforce the policy"

#: kind -> (camelCase field path, `[]` = every list item; what happens instead)
NOT_TRANSLATED: dict[str, tuple[tuple[str, str], ...]] = {
    "RouteTable": (
        ("tcp", "tcp routes are not translated yet; ignored"),
        ("tls", "tls routes are not translated yet; ignored"),
        ("applyToDestinations", "destination-scoped route tables are not translated yet; ignored"),
        ("portalMetadata", "portal metadata has no Istio equivalent; ignored"),
        ("http[].graphql", "graphql routes are not translated; the route is dropped"),
        ("http[].forwardTo.autoHostRewrite", "autoHostRewrite has no Istio equivalent; ignored"),
        ("http[].delegate.allowedRoutes", "allowedRoutes filters are not applied yet; ignored"),
    ),
    "VirtualGateway": (
        ("listeners[].exposedExternalServices", "ExternalService exposure is not translated yet"),
        ("listeners[].allowedRouteTables[].allowedRoutes", "route filters are not applied yet"),
        ("listeners[].appProtocol", "appProtocol is not translated yet; ignored"),
    ),
    "VirtualDestination": (
        ("externalServices", "ExternalService backends are not translated yet; ignored"),
        ("externalWorkloads", "external workloads are not translated yet; ignored"),
    ),
    "ExternalService": (
        ("selector", "ExternalEndpoints are not translated yet; the hosts are resolved by DNS"),
        (
            "ports[].egressGatewayRoutes",
            "egress gateway routes are not translated yet; clients reach the service directly",
        ),
    ),
    "AccessPolicy": (
        (
            "config.authzList[].allowedClients[].serviceAccountSelector.labels",
            _SA_LABELS,
        ),
        ("config.authz.allowedClients[].serviceAccountSelector.labels", _SA_LABELS),
        ("config.authzList[].allowedClients[].externalWorkloadSelector", _EXTERNAL_CLIENTS),
        ("config.authz.allowedClients[].externalWorkloadSelector", _EXTERNAL_CLIENTS),
        ("config.enforcementLayers.cni", _CNI),
    ),
    "WorkspaceSettings": (("options.serviceIsolation.enforcementLayers.cni", _CNI),),
    # Unenforceable JWT conditions fail closed instead (`jwt.checks`, UnenforceablePolicy).
    "JWTPolicy": (
        (
            "applyToDestinations",
            "JWT on destinations (server side) is not translated yet; nothing is enforced there",
        ),
        ("config.phase", "filter phases are not translated; jwt_authn runs just before the router"),
    ),
}


@lru_cache(maxsize=512)
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _set_values(value: Any, parts: list[str], where: str) -> Iterator[str]:
    """Paths (with indexes) under which the field named by `parts` is set to something."""
    if not parts:
        if value not in (None, [], {}, False):
            yield where
        return
    part, rest = parts[0], parts[1:]
    many = part.endswith("[]")
    name = part.removesuffix("[]")
    if not isinstance(value, BaseModel) or _snake(name) not in value.model_fields_set:
        return
    child = getattr(value, _snake(name))
    here = f"{where}.{name}"
    if many:
        for i, item in enumerate(child):
            yield from _set_values(item, rest, f"{here}[{i}]")
    else:
        yield from _set_values(child, rest, here)


Found = dict[ObjectRef, tuple[ConfigObject[Any], list[Diagnostic]]]


def check(objects: Iterator[ConfigObject[Any]], previous: Found | None = None) -> Found:
    """Per object, the fields it sets that are not translated. With `previous`, objects that
    did not change keep their earlier result."""
    out: Found = {}
    for obj in objects:
        known = previous.get(obj.ref) if previous is not None else None
        if known is not None and (known[0] is obj or known[0] == obj):
            out[obj.ref] = known
            continue
        found = [
            Diagnostic(Reason.UnsupportedField, what, obj.source, obj.ref, field)
            for path, what in NOT_TRANSLATED.get(obj.kind, ())
            for field in _set_values(obj.spec, path.split("."), "spec")
        ]
        out[obj.ref] = (obj, found)
    return out
