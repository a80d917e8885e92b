"""The one reason vocabulary.

Every diagnostic, report entry, log line, metric label and commit-status
description names its cause with one of these CamelCase reasons, unchanged
(Flux's rule: event reasons equal condition reasons). Each reason fixes what it
does to the resource it is attached to (`State`) and carries the text of the
diagnostics reference in `docs/diagnostics.md`, which is generated from this
table (`python -m gitops.reasons > docs/diagnostics.md`; a test keeps it current).

Who uses it: the loader (repository and schema problems), the discovery parser
(snapshot problems), the translators (semantic problems) and the CLI/reporters
(which print `reason.name`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.IntEnum):
    """Approval state of a Gloo resource, ranked so that the worst state wins by `max()`.

    ACCEPTED: translated as written. WARNING: translated, with something to look at.
    FAILED: valid, but not applied (it lost a conflict). INVALID: bad config, not applied.
    """

    ACCEPTED = 0
    WARNING = 1
    FAILED = 2
    INVALID = 3


class Severity(enum.Enum):
    """How a diagnostic is printed and whether it fails `gitops validate`."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class _Entry:
    state: State
    meaning: str
    fix: str


class Reason(enum.Enum):
    """Why something was reported. `reason.name` is the CamelCase word users see."""

    # -- repository content (loader) -------------------------------------------------------
    UnsafePath = _Entry(
        State.INVALID,
        "A path in the repository is absolute, contains `..`, or is otherwise not a plain "
        "relative path.",
        "Rename the file; config paths must stay inside the repository.",
    )
    SymlinkEscapesRepo = _Entry(
        State.INVALID,
        "A symbolic link (or a chain of links) points outside the repository.",
        "Replace the link with the file it points to, or point it inside the repository.",
    )
    SymlinkLoop = _Entry(
        State.INVALID,
        "Symbolic links form a cycle, a chain longer than 40 links, or a link to its own "
        "parent directory.",
        "Break the cycle.",
    )
    SymlinkBroken = _Entry(
        State.INVALID,
        "A symbolic link points to a path that does not exist in the repository at this commit.",
        "Commit the target or remove the link.",
    )
    SymlinkTargetNotYaml = _Entry(
        State.INVALID,
        "A `*.yaml` link points to a file whose own name is not `*.yaml`/`*.yml`.",
        "Give the target a YAML extension, or link to a YAML file.",
    )
    FileTooLarge = _Entry(
        State.INVALID,
        "A YAML file is larger than the 5 MiB cap; it is not read.",
        "Split the file; no single config file needs to be this large.",
    )
    InvalidEncoding = _Entry(
        State.INVALID,
        "A YAML file is not valid UTF-8.",
        "Save the file as UTF-8.",
    )
    YamlSyntaxError = _Entry(
        State.INVALID,
        "A YAML file does not parse. Nothing in the file is used (and nothing it applied "
        "before is deleted).",
        "Fix the syntax at the line shown.",
    )
    YamlAliasBomb = _Entry(
        State.INVALID,
        "YAML anchors and aliases in a document expand to more than 100,000 nodes "
        "(a 'billion laughs' document).",
        "Write the content out, or use far fewer nested aliases.",
    )
    DuplicateKey = _Entry(
        State.INVALID,
        "A YAML mapping has the same key twice; YAML says this is an error, most tools "
        "silently keep the last one.",
        "Remove one of the two keys.",
    )
    DocumentNotMapping = _Entry(
        State.INVALID,
        "A YAML document is a list or a scalar, not a Kubernetes-style object.",
        "Each document must be a mapping with apiVersion, kind and metadata.",
    )
    MissingApiVersion = _Entry(
        State.INVALID,
        "A document has no `apiVersion` string.",
        "Add `apiVersion`, e.g. `networking.gloo.solo.io/v2`.",
    )
    MissingKind = _Entry(
        State.INVALID,
        "A document has no `kind` string.",
        "Add `kind`, e.g. `RouteTable`.",
    )
    MissingName = _Entry(
        State.INVALID,
        "A document has no `metadata.name` string.",
        "Add `metadata.name`.",
    )
    DuplicateObject = _Entry(
        State.INVALID,
        "Two documents define the same kind/namespace/name. Neither is used; whatever was "
        "applied for that object before is left alone.",
        "Delete or rename one of them.",
    )
    UnsupportedKind = _Entry(
        State.WARNING,
        "A Gloo Platform kind this version of mesh-gitops does not translate yet; it is ignored.",
        "Remove it, or keep it for a later version (see docs/kinds.md for what is supported).",
    )
    UnknownGlooKind = _Entry(
        State.INVALID,
        "A document in a Gloo API group (`*.solo.io`) whose group/kind pair does not exist in "
        "Gloo Platform 2.x: almost always a typo, which would otherwise drop the object "
        "silently.",
        "Fix the apiVersion or kind (the message suggests the closest known one).",
    )
    UnknownKind = _Entry(
        State.WARNING,
        "A document whose apiVersion is not a Gloo Platform group; it is ignored.",
        "Move non-mesh manifests out of the config repository, or exclude them in gitops.yaml.",
    )
    SchemaViolation = _Entry(
        State.INVALID,
        "A field is unknown, has the wrong type, or is missing; the message names the field path.",
        "Fix the field (see docs/kinds.md for the schema of each kind).",
    )
    InvalidValue = _Entry(
        State.INVALID,
        "A field has a well-typed value that breaks a rule of the spec (weights that do not "
        "sum to 100, a bad duration, a wildcard where none is allowed, ...).",
        "Fix the value as the message says.",
    )
    InvalidClusterName = _Entry(
        State.INVALID,
        "A cluster name breaks the naming rules: lowercase letters, digits and `-`, starting "
        "with a letter, at most 63 characters.",
        "Rename the cluster (KubernetesCluster metadata.name, snapshot folder).",
    )
    InvalidGitopsConfig = _Entry(
        State.INVALID,
        "`gitops.yaml` is malformed, or one of its `paths`/`exclude` globs is absolute or "
        "leaves the repository.",
        "Fix `gitops.yaml` as the message says.",
    )
    InvalidHelmValues = _Entry(
        State.INVALID,
        "A Helm values file (under `helm/`, or given to `gitops install render`) has an "
        "unknown key, a wrong type or a bad value at the key path shown, or names another "
        "cluster than its file name; the file is not used.",
        "Fix the key or value (docs/helm-values.md lists every key).",
    )
    UnknownHelmValuesFile = _Entry(
        State.WARNING,
        "A file under `helm/` is neither `helm/mgmt-plane.yaml` nor "
        "`helm/data-plane/<cluster>.yaml`; it is ignored.",
        "Rename or move it.",
    )
    MissingHelmValue = _Entry(
        State.INVALID,
        "A Helm value that another value requires is not set (`redis.address` without the "
        "bundled Redis, a Secret name for an enabled feature, the agent's relay address, ...).",
        "Set the key the message names.",
    )
    HelmValueIgnored = _Entry(
        State.WARNING,
        "A Helm value has no effect: another value overrides it, or it is a Gloo Platform "
        "setting mesh-gitops does not need (`licensing`, `createGlobalWorkspace`).",
        "Remove the key, or change the value that overrides it.",
    )
    InsufficientResources = _Entry(
        State.WARNING,
        "A component is given fewer resources than its settings need (Redis I/O threads "
        "want a CPU core each, plus one for the main thread).",
        "Raise the CPU requests and limits, or lower the setting, as the message says.",
    )
    UnsupportedField = _Entry(
        State.WARNING,
        "A field of a supported kind that this version does not translate yet (or that Istio "
        "cannot express); it is ignored and the rest of the resource is translated.",
        "Remove the field, or see docs/kinds.md for what is translated.",
    )
    # -- workspaces and placement ---------------------------------------------------------
    NotInWorkspace = _Entry(
        State.WARNING,
        "The object's namespace belongs to no workspace, so nothing can see it and it is not "
        "translated.",
        "Add the namespace to a Workspace, or pin the cluster with the "
        "`cluster.solo.io/cluster` annotation.",
    )
    AmbiguousWorkspace = _Entry(
        State.INVALID,
        "The object's namespace belongs to different workspaces in different clusters, and "
        "nothing says which cluster the object is in.",
        "Pin the cluster with the `cluster.solo.io/cluster` annotation.",
    )
    NamespaceInMultipleWorkspaces = _Entry(
        State.WARNING,
        "A namespace of a cluster is selected by more than one Workspace; the earliest "
        "Workspace keeps it.",
        "Narrow the Workspace selectors so each namespace belongs to one workspace.",
    )
    DuplicateWorkspaceSettings = _Entry(
        State.FAILED,
        "A workspace has more than one WorkspaceSettings; the earliest is used.",
        "Keep one WorkspaceSettings per workspace.",
    )
    WorkspaceNotFound = _Entry(
        State.INVALID,
        "WorkspaceSettings must live in a namespace of a Workspace (or be named `global`).",
        "Move it into a namespace of the workspace it configures.",
    )
    # -- discovery snapshots --------------------------------------------------------------
    UnregisteredCluster = _Entry(
        State.WARNING,
        "A snapshot exists for a cluster that has no KubernetesCluster in the repository; it "
        "is ignored.",
        "Add a KubernetesCluster for it, or remove the snapshot.",
    )
    MissingSnapshot = _Entry(
        State.WARNING,
        "A registered cluster has no discovery snapshot. Nothing is rendered for it (an empty "
        "render would delete its config).",
        "Provide `<snapshot>/<cluster>/`, or wait for its agent to connect.",
    )
    InvalidInputObject = _Entry(
        State.INVALID,
        "A discovered Kubernetes object in a snapshot is malformed; it is ignored.",
        "Fix or regenerate the snapshot file.",
    )
    # -- translation ------------------------------------------------------------------------
    NothingSelected = _Entry(
        State.WARNING,
        "A policy, or a selector in a resource, selects nothing it can see.",
        "Check labels, names and namespaces in the selector, and workspace import/export.",
    )
    DestinationNotFound = _Entry(
        State.INVALID,
        "A route destination names a Service, VirtualDestination or RouteTable that does not "
        "exist (or is not visible to the workspace). The route is replaced by a 500 direct "
        "response.",
        "Fix the reference, or export/import it between workspaces.",
    )
    DestinationNotInCluster = _Entry(
        State.WARNING,
        "A route destination's Service does not exist in one of the clusters the route is "
        "rendered for; in that cluster the host will not resolve.",
        "Deploy the Service there, or route to a VirtualDestination.",
    )
    DestinationPortNotFound = _Entry(
        State.INVALID,
        "A destination port is not a port of the Service or VirtualDestination.",
        "Use one of the ports the destination declares.",
    )
    CrossClusterDestinationNotFederated = _Entry(
        State.INVALID,
        "A route sends traffic to a Service (or a port of it) in another cluster that its "
        "workspace does not federate.",
        "Federate the Service (WorkspaceSettings `options.federation`), or route to a "
        "VirtualDestination that selects it.",
    )
    SubsetOnVirtualDestination = _Entry(
        State.INVALID,
        "Subsets are only supported on Service destinations.",
        "Route to the Services with subsets, or drop the subset.",
    )
    SubsetAcrossClusters = _Entry(
        State.INVALID,
        "A route sends to a subset of a Service in another cluster; the federated host "
        "reaches that cluster through its east-west gateway, which has no subsets.",
        "Route to the Service in the cluster itself (no `ref.cluster`), or drop the subset.",
    )
    VirtualGatewayNotFound = _Entry(
        State.INVALID,
        "A RouteTable names a VirtualGateway that does not exist.",
        "Fix the reference.",
    )
    GatewayNotFound = _Entry(
        State.WARNING,
        "A VirtualGateway's workload selector matches no gateway Service in any cluster.",
        "Check the selector labels, namespace and cluster.",
    )
    GatewayPortNotFound = _Entry(
        State.WARNING,
        "A VirtualGateway listener port is not a port of the selected gateway Service; the "
        "listener port is used as the container port.",
        "Use a port the gateway Service exposes.",
    )
    RouteTableNotAllowed = _Entry(
        State.WARNING,
        "A VirtualGateway does not take this RouteTable: its workspace cannot see the table, "
        "or no listener allows the table's hosts.",
        "Export the RouteTable to the gateway's workspace, or allow its hosts on a listener.",
    )
    DelegationCycle = _Entry(
        State.INVALID,
        "Route table delegation loops back to a table already on the path.",
        "Break the cycle.",
    )
    DelegationMatcherConflict = _Entry(
        State.INVALID,
        "A delegated route's matchers cannot be combined with the delegating route's "
        "(e.g. a path outside the parent's prefix); it is replaced by a 500 direct response.",
        "Make child matchers narrow the parent's.",
    )
    PolicyConflict = _Entry(
        State.FAILED,
        "Another policy of the same kind, created earlier, already applies to the route or "
        "destination; this one is skipped there.",
        "Narrow the selectors so one policy of each kind applies, or delete the older one.",
    )
    OutputConflict = _Entry(
        State.FAILED,
        "Two resources produce the same Istio object (same kind, namespace and name, or the "
        "same host); the earliest-created resource wins.",
        "Rename or remove one of them.",
    )
    NoBackingService = _Entry(
        State.WARNING,
        "A VirtualDestination selects no Service in any cluster; it has no endpoints.",
        "Check the service selector.",
    )
    MultipleServicesInCluster = _Entry(
        State.WARNING,
        "A VirtualDestination selects more than one Service in one cluster; the oldest one is "
        "used.",
        "Narrow the service selector.",
    )
    EastWestGatewayNotFound = _Entry(
        State.WARNING,
        "A cluster that backs a VirtualDestination or a federated Service has no east-west "
        "gateway with an address and the port its client mode needs: the Service the "
        "workspace's `eastWestGateways` select (by default labelled `istio: eastwestgateway`), "
        "its `tls` port (`https` under `tlsTermination`). Other clusters cannot reach its "
        "endpoints.",
        "Install the east-west gateway, fix the `eastWestGateways` selector or "
        "`hostInfoOverrides`, or wait until its address is assigned.",
    )
    FailoverWithoutOutlierDetection = _Entry(
        State.WARNING,
        "Istio only fails over between localities when outlier detection is on for the same "
        "destination port.",
        "Add an OutlierDetectionPolicy for the same destinations.",
    )
    NoPodSelector = _Entry(
        State.WARNING,
        "A Service selected by an AccessPolicy or under service isolation has no pod "
        "selector; an AuthorizationPolicy without a selector would cover the whole "
        "namespace, so the Service is skipped.",
        "Give the Service a selector, or select its workloads with `applyToWorkloads`.",
    )
    UnresolvedTargetPort = _Entry(
        State.WARNING,
        "A Service port's `targetPort` is a name; container ports are not discovered, so "
        "AuthorizationPolicy and PeerAuthentication ports use the Service port number, which "
        "is right only when the container listens on that same number.",
        "Write the Service's `targetPort` as a number.",
    )
    UnenforceablePolicy = _Entry(
        State.FAILED,
        "A security policy asks for a check this version cannot enforce (JWTPolicy `claims` "
        "or `requiredScopes`, JWKS from a Secret). Rather than skip the check, what it guards "
        "is refused: its routes answer 403, or the provider's tokens are rejected.",
        "Remove the condition or use what is translated (inline or remote JWKS); or accept "
        "that the routes stay closed until it is supported.",
    )
    ObjectTooLarge = _Entry(
        State.INVALID,
        "A generated Istio object would exceed 1 MiB serialized (etcd rejects it), or an "
        "AuthorizationPolicy would have more rules or sources than Istio's limit of 512; it "
        "is not emitted.",
        "Split the resource into smaller ones.",
    )

    @property
    def state(self) -> State:
        """The state a resource takes when this reason is reported against it."""
        return self.value.state

    @property
    def severity(self) -> Severity:
        """`error` for INVALID/FAILED (fails `gitops validate`), `warning` otherwise."""
        return Severity.WARNING if self.value.state <= State.WARNING else Severity.ERROR

    @property
    def meaning(self) -> str:
        return self.value.meaning

    @property
    def fix(self) -> str:
        return self.value.fix


def reference_markdown() -> str:
    """The diagnostics reference, as published in `docs/diagnostics.md`."""
    lines = [
        "# Diagnostics reference",
        "",
        "<!-- generated by `python -m gitops.reasons`; do not edit by hand -->",
        "",
        "Every problem mesh-gitops reports names one of these reasons. The same word appears in",
        "`gitops validate` output, in per-resource reports, and in commit-status descriptions.",
        "`error` reasons make `gitops validate` and `gitops render` exit 1.",
        "",
        "| Reason | Severity | Resource state | Meaning | Fix |",
        "|---|---|---|---|---|",
    ]
    for reason in Reason:
        lines.append(
            f"| `{reason.name}` | {reason.severity.value} | {reason.state.name} "
            f"| {reason.meaning} | {reason.fix} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
