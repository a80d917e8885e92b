"""Building blocks shared by the rendered workloads: labels, containers, Secret volumes.

Used by `gitops.install.mgmt`, `gitops.install.redis` and `gitops.install.agent`, which
assemble Deployments and Services from these pieces. Everything returns fresh plain dicts
(JSON-like, ready for `gitops.rendering`), so a later override merge never aliases another
object's data.

Security defaults follow the Kubernetes "restricted" Pod Security Standard: non-root, no
privilege escalation, every capability dropped, the RuntimeDefault seccomp profile and a
read-only root filesystem (scratch space is an `emptyDir`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops import names
from gitops.helm.fields import ExtraEnvs, Image, Resources

#: Where each referenced Secret is mounted: `<SECRETS_DIR>/<secretName>/<key>`, the layout
#: `gitops serve`/`gitops agent` read secrets from (DESIGN.md section 10).
SECRETS_DIR = "/etc/mesh-gitops/secrets"
#: Where the values ConfigMap is mounted; the components read `values.yaml` from here.
VALUES_DIR = "/etc/mesh-gitops/values"
VALUES_FILE = f"{VALUES_DIR}/values.yaml"
#: Writable scratch space (Git clones, caches) on a read-only root filesystem.
DATA_DIR = "/var/lib/mesh-gitops"

#: Ports (DESIGN.md section 11).
RELAY_PORT = 9900
#: Agent registration: server-only TLS, Register with the token (docs/relay.md).
REGISTRATION_PORT = 9901
HEALTH_PORT = 8090
METRICS_PORT = 9091
HTTP_PORT = 8080

#: UID and GID of the `gitops` user in our image.
UID = 10001

PART_OF = "mesh-gitops"
FIPS_LABEL = "mesh-gitops.io/fips"
CHECKSUM_ANNOTATION = "mesh-gitops.io/values-checksum"


def labels(name: str, component: str) -> dict[str, str]:
    """Labels of every object of one component. `app` is the selector label, as in Gloo."""
    return {
        "app": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": PART_OF,
    }


def metadata(
    name: str, component: str, namespace: str | None, app: str | None = None
) -> dict[str, Any]:
    """`app` is the component's workload name, when the object is named otherwise."""
    meta: dict[str, Any] = {"name": name, "labels": labels(app or name, component)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def checksum(text: str) -> str:
    """A digest of the values a pod reads, put on its template so a change rolls the pods
    (the ConfigMap alone changing would not restart them)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SecretMount:
    """A Secret mounted read-only at `<SECRETS_DIR>/<name>`."""

    name: str
    #: Optional secrets may be missing when the pod starts (the agent writes its client
    #: certificate itself; the bootstrap token may be deleted after registration).
    optional: bool = False


def secret_mounts(
    secrets: Iterable[SecretMount],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`volumes` and `volumeMounts` for the Secrets, one each even when named twice."""
    by_name: dict[str, SecretMount] = {}
    for secret in secrets:
        seen = by_name.get(secret.name)
        # Named by two features, one of which cannot start without it: required.
        by_name[secret.name] = (
            secret if seen is None else SecretMount(secret.name, seen.optional and secret.optional)
        )
    volumes, mounts = [], []
    used: set[str] = set()
    for name in sorted(by_name):
        volume = names.sanitize(f"secret-{name}")
        if volume in used:  # `a.b` and `a-b` sanitize alike; keep volume names unique
            volume = f"secret-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
        used.add(volume)
        volumes.append(
            {
                "name": volume,
                "secret": {"secretName": name, "optional": by_name[name].optional},
            }
        )
        mounts.append({"name": volume, "mountPath": f"{SECRETS_DIR}/{name}", "readOnly": True})
    return volumes, mounts


def env(extra: ExtraEnvs, own: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The container environment: the pod's namespace, our own variables, then `extraEnvs`
    (sorted by name); an `extraEnvs` entry replaces ours of the same name."""
    out: dict[str, dict[str, Any]] = {
        "POD_NAMESPACE": {
            "name": "POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        }
    }
    for name, value in (own or {}).items():
        out[name] = {"name": name, "value": value}
    for name in sorted(extra):
        out[name] = extra[name].manifest(name)
    return list(out.values())


def pod_security(uid: int) -> dict[str, Any]:
    return {
        "fsGroup": uid,
        "runAsGroup": uid,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def http_probes(path_live: str = "/healthz", path_ready: str = "/readyz") -> dict[str, Any]:
    """Liveness on `/healthz`, readiness on `/readyz`, both on the health port."""
    return {
        "livenessProbe": {
            "httpGet": {"path": path_live, "port": "healthcheck"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": path_ready, "port": "healthcheck"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
    }


def image_fields(image: Image, default_tag: str) -> dict[str, Any]:
    return {"image": image.reference(default_tag), "imagePullPolicy": image.pull_policy}


def resources(requirements: Resources) -> dict[str, Any]:
    return requirements.manifest()


def pod_annotations(values_text: str | None, scrape: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    if values_text is not None:
        out[CHECKSUM_ANNOTATION] = checksum(values_text)
    if scrape:
        out.update(
            {
                "prometheus.io/path": "/metrics",
                "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/scrape": "true",
            }
        )
    return out


def deployment(
    name: str,
    component: str,
    namespace: str,
    replicas: int,
    pod_spec: dict[str, Any],
    annotations: Mapping[str, str],
    fips: bool,
) -> dict[str, Any]:
    """A Deployment selecting its pods by `app: <name>`."""
    meta = metadata(name, component, namespace)
    pod_labels = labels(name, component)
    if fips:
        meta["labels"][FIPS_LABEL] = "true"
        pod_labels[FIPS_LABEL] = "true"
    template_meta: dict[str, Any] = {"labels": pod_labels}
    if annotations:
        template_meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def service(
    name: str, component: str, namespace: str, type_: str, ports: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, component, namespace),
        "spec": {"type": type_, "selector": {"app": name}, "ports": ports},
    }


def port(name: str, number: int, app_protocol: str | None = None) -> dict[str, Any]:
    """A Service port forwarding to the container port of the same name."""
    out: dict[str, Any] = {"name": name, "port": number, "protocol": "TCP", "targetPort": name}
    if app_protocol:
        out["appProtocol"] = app_protocol
    return out


def container_port(name: str, number: int) -> dict[str, Any]:
    return {"containerPort": number, "name": name, "protocol": "TCP"}


def service_account(name: str, component: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, component, namespace),
    }


def values_config_map(app: str, component: str, namespace: str, text: str) -> dict[str, Any]:
    """`<app>-values`: the effective values a component reads at start-up (`--values`)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(f"{app}-values", component, namespace, app),
        "data": {"values.yaml": text},
    }


def binding(
    kind: str, name: str, component: str, namespace: str | None, account: str, account_ns: str
) -> dict[str, Any]:
    """A RoleBinding or ClusterRoleBinding of the ServiceAccount `account` (also the app
    name) to the Role or ClusterRole called `name`."""
    role_kind = kind.removesuffix("Binding")
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata(name, component, namespace, account),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_ns}],
    }


# Apply order (Helm's InstallOrder, pkg/release/util/kind_sorter.go): what others use first.
_KIND_ORDER = (
    "ServiceAccount",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
)


def sort_key(obj: Mapping[str, Any]) -> tuple[int, str, str]:
    kind = obj.get("kind")
    order = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    meta = obj.get("metadata") or {}
    return (order, str(meta.get("namespace", "")), str(meta.get("name", "")))
