"""Loading a repository (`gitops.loading.load`) from small hand-built trees: every hostile or
broken file becomes a diagnostic naming the file (and line), never an exception, and never
stops the valid objects of other files from loading."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from gitops import loading
from gitops.bundle import Bundle
from gitops.diagnostics import Diagnostic, Source
from gitops.ids import ObjectRef
from gitops.reasons import Reason, Severity
from gitops.tree import MAX_FILE_BYTES, Entry, Link, Other, Oversize, Tree
from tests.support.configs import REVIEWS_ROUTE_TABLE

ROUTE_TABLE = REVIEWS_ROUTE_TABLE
REVIEWS = ObjectRef("RouteTable", "bookinfo-backends", "reviews")
VALID = {"valid/reviews.yaml": ROUTE_TABLE.encode()}


def route_table(name: str, *, meta: str = "", spec_tail: str = "") -> str:
    """The RouteTable above renamed, with extra metadata fields and spec lines."""
    text = ROUTE_TABLE.replace("name: reviews, namespace", f"name: {name}, namespace", 1)
    if meta:
        text = text.replace(
            "namespace: bookinfo-backends}", f"namespace: bookinfo-backends, {meta}}}", 1
        )
    return text + spec_tail


def load(entries: Mapping[str, Entry | str]) -> Bundle:
    tree = {k: v.encode() if isinstance(v, str) else v for k, v in entries.items()}
    return loading.load(Tree(tree))


def found(bundle: Bundle, reason: Reason) -> list[Diagnostic]:
    return [d for d in bundle.diagnostics if d.reason is reason]


def where(bundle: Bundle) -> set[tuple[str, int, Reason]]:
    out = set()
    for d in bundle.diagnostics:
        assert d.source is not None, d
        out.add((d.source.file, d.source.line, d.reason))
    return out


def refs(bundle: Bundle) -> list[ObjectRef]:
    return [o.ref for o in bundle.objects]


# -- hostile files: a diagnostic each, the valid file still loads -----------------------

_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

HOSTILE: list[tuple[str, dict[str, Entry | str], str, int, Reason]] = [
    ("escaping-link", {"x.yaml": Link("../../etc/passwd")}, "x.yaml", 0, Reason.SymlinkEscapesRepo),
    ("absolute-link", {"x.yaml": Link("/etc/passwd")}, "x.yaml", 0, Reason.SymlinkEscapesRepo),
    (
        "escaping-chain",
        {"x.yaml": Link("mesh/y.yaml"), "mesh/y.yaml": Link("../../../out.yaml")},
        "x.yaml",
        0,
        Reason.SymlinkEscapesRepo,
    ),
    ("escaping-folder", {"ext": Link("../../outside")}, "ext", 0, Reason.SymlinkEscapesRepo),
    (
        "loop",
        {"x.yaml": Link("y.yaml"), "y.yaml": Link("x.yaml")},
        "x.yaml",
        0,
        Reason.SymlinkLoop,
    ),
    ("parent-loop", {"mesh/up": Link("..")}, "mesh/up", 0, Reason.SymlinkLoop),
    ("dangling", {"x.yaml": Link("nope.yaml")}, "x.yaml", 0, Reason.SymlinkBroken),
    (
        "not-yaml-target",
        {"x.yaml": Link("README.md"), "README.md": Other()},
        "x.yaml",
        0,
        Reason.SymlinkTargetNotYaml,
    ),
    ("dotdot-path", {"../x.yaml": "kind: A\n"}, "../x.yaml", 0, Reason.UnsafePath),
    ("oversize", {"big.yaml": Oversize(MAX_FILE_BYTES + 1)}, "big.yaml", 0, Reason.FileTooLarge),
    ("alias-bomb", {"x.yaml": "ok: 1\n---\n" + _BOMB}, "x.yaml", 7, Reason.YamlAliasBomb),
    ("recursive-alias", {"x.yaml": "&a [*a]\n"}, "x.yaml", 1, Reason.YamlAliasBomb),
    ("bad-utf8", {"x.yaml": b"a: 1\n\nb: \xc3\x28\n"}, "x.yaml", 3, Reason.InvalidEncoding),
    ("syntax", {"x.yaml": "a: 1\nb: [\n  c: d: e\n"}, "x.yaml", 3, Reason.YamlSyntaxError),
    ("python-tag", {"x.yaml": "a: !!python/name:os.system\n"}, "x.yaml", 1, Reason.YamlSyntaxError),
    ("deep", {"x.yaml": "a:\n  b: " + "[" * 50_000}, "x.yaml", 2, Reason.YamlSyntaxError),
    ("malformed-int-tag", {"x.yaml": "a: 1\nb: !!int x\n"}, "x.yaml", 2, Reason.YamlSyntaxError),
    (
        "duplicate-key",
        {"x.yaml": route_table("dup", spec_tail="  hosts: [x]\n")},
        "x.yaml",
        11,
        Reason.DuplicateKey,
    ),
    ("not-a-mapping", {"x.yaml": "ok: 1\n---\n- a\n- b\n"}, "x.yaml", 3, Reason.DocumentNotMapping),
]


@pytest.mark.parametrize(
    ("entries", "file", "line", "reason"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_hostile_file_is_a_diagnostic_and_other_files_still_load(
    entries: dict[str, Entry | str], file: str, line: int, reason: Reason
) -> None:
    bundle = load({**entries, **VALID})
    assert (file, line, reason) in where(bundle)
    assert found(bundle, reason)[0].severity is Severity.ERROR
    assert refs(bundle) == [REVIEWS]
    assert "valid/reviews.yaml" not in {d.source.file for d in bundle.diagnostics if d.source}


def test_files_that_cannot_be_read_are_listed_as_unreadable() -> None:
    entries: dict[str, Entry | str] = {
        "link.yaml": Link("/etc/passwd"),
        "big.yaml": Oversize(MAX_FILE_BYTES + 1),
        "bomb.yaml": _BOMB,
        "latin1.yaml": b"a: caf\xe9\n",
        "syntax.yaml": "a: [\n",
        "README.md": Other(),
        # readable files, even with bad documents, are not "unreadable"
        "list.yaml": "- 1\n",
        "dup.yaml": route_table("dup", spec_tail="  hosts: [x]\n"),
        **VALID,
    }
    bundle = load(entries)
    assert bundle.unreadable_files == {
        "link.yaml",
        "big.yaml",
        "bomb.yaml",
        "latin1.yaml",
        "syntax.yaml",
    }
    assert refs(bundle) == [REVIEWS]


def test_a_document_with_a_duplicate_key_is_excluded_and_later_documents_load() -> None:
    text = route_table("dup", spec_tail="  hosts: [x]\n") + "---\n" + ROUTE_TABLE
    bundle = load({"x.yaml": text})
    assert refs(bundle) == [REVIEWS]
    [d] = found(bundle, Reason.DuplicateKey)
    assert d.source == Source("x.yaml", 11)
    assert d.obj == ObjectRef("RouteTable", "bookinfo-backends", "dup")
    assert d.obj in bundle.invalid
    assert "hosts" in d.message


@pytest.mark.parametrize(
    ("duplicated", "line"),
    [("apiVersion: v1\n", 11), ("kind: AccessPolicy\n", 11), ("kind: ConfigMap\n", 11)],
)
def test_a_duplicated_identity_key_is_refused_whatever_the_last_value_means(
    duplicated: str, line: int
) -> None:
    # `kind`/`apiVersion` given twice: the last value wins in PyYAML, which here turns the
    # RouteTable into something that is only warned about. The duplicate must still be an
    # error, or a typo silently drops a resource.
    bundle = load({"x.yaml": ROUTE_TABLE + duplicated})
    assert [(d.reason, d.source) for d in found(bundle, Reason.DuplicateKey)] == [
        (Reason.DuplicateKey, Source("x.yaml", line))
    ]
    assert refs(bundle) == []


# -- documents that are not objects -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("- a\n- b\n", 1, Reason.DocumentNotMapping),
        ("just a string\n", 1, Reason.DocumentNotMapping),
        ("---\n42\n", 2, Reason.DocumentNotMapping),
        ("kind: RouteTable\nmetadata: {name: a}\n", 1, Reason.MissingApiVersion),
        ("apiVersion: 2\nkind: RouteTable\nmetadata: {name: a}\n", 1, Reason.MissingApiVersion),
        ("apiVersion: ''\nkind: RouteTable\nmetadata: {name: a}\n", 1, Reason.MissingApiVersion),
        ("apiVersion: networking.gloo.solo.io/v2\nmetadata: {name: a}\n", 1, Reason.MissingKind),
        ("apiVersion: networking.gloo.solo.io/v2\nkind: [x]\n", 1, Reason.MissingKind),
        ("apiVersion: networking.gloo.solo.io/v2\nkind: RouteTable\n", 1, Reason.MissingName),
        (
            "apiVersion: networking.gloo.solo.io/v2\nkind: RouteTable\nmetadata: [a]\n",
            1,
            Reason.MissingName,
        ),
        (
            "apiVersion: networking.gloo.solo.io/v2\nkind: RouteTable\nmetadata: {name: ''}\n",
            1,
            Reason.MissingName,
        ),
    ],
    ids=[
        "list",
        "string",
        "int-in-second-doc",
        "no-apiVersion",
        "int-apiVersion",
        "empty-apiVersion",
        "no-kind",
        "list-kind",
        "no-metadata",
        "list-metadata",
        "empty-name",
    ],
)
def test_documents_that_are_not_objects_are_errors(text: str, line: int, reason: Reason) -> None:
    bundle = load({"mesh/x.yaml": text, **VALID})
    assert where(bundle) == {("mesh/x.yaml", line, reason)}
    assert reason.severity is Severity.ERROR
    assert refs(bundle) == [REVIEWS]


def test_duplicate_objects_refuse_every_copy() -> None:
    bundle = load(
        {
            "a.yaml": ROUTE_TABLE,
            "b/c.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + ROUTE_TABLE,
            # same name, other namespace or kind: different objects
            "other-ns.yaml": ROUTE_TABLE.replace("namespace: bookinfo-backends}", "namespace: x}"),
        }
    )
    dups = found(bundle, Reason.DuplicateObject)
    assert {(d.source, d.obj) for d in dups} == {
        (Source("a.yaml", 1), REVIEWS),
        (Source("b/c.yaml", 5), REVIEWS),
    }
    for d in dups:
        assert "a.yaml:1" in d.message and "b/c.yaml:5" in d.message
    assert refs(bundle) == [ObjectRef("RouteTable", "x", "reviews")]
    assert REVIEWS in bundle.invalid


def test_duplicate_objects_in_one_file_and_with_an_invalid_copy() -> None:
    broken = ROUTE_TABLE.replace("number: 9080", "number: 0")
    bundle = load({"a.yaml": ROUTE_TABLE + "---\n" + broken})
    assert {d.source for d in found(bundle, Reason.DuplicateObject)} == {
        Source("a.yaml", 1),
        Source("a.yaml", 12),
    }
    assert found(bundle, Reason.InvalidValue)
    assert refs(bundle) == []
    assert bundle.invalid == {REVIEWS}


# -- schema and values --------------------------------------------------------------------


def test_unknown_spec_field_names_the_camel_case_path_and_its_line() -> None:
    bundle = load({"x.yaml": ROUTE_TABLE.replace("    matchers:", "    matchrs:")})
    [d] = bundle.diagnostics
    assert (d.reason, d.source, d.obj) == (Reason.SchemaViolation, Source("x.yaml", 8), REVIEWS)
    assert d.field == "spec.http[0].matchrs"
    assert d.message == "spec.http[0].matchrs: unknown field"
    assert d.format() == (
        "x.yaml:8: error: RouteTable bookinfo-backends/reviews: SchemaViolation: "
        "spec.http[0].matchrs: unknown field"
    )
    assert refs(bundle) == []
    assert bundle.invalid == {REVIEWS}


def test_snake_case_spec_keys_are_refused() -> None:
    bundle = load({"x.yaml": ROUTE_TABLE.replace("forwardTo:", "forward_to:")})
    fields = {(d.reason, d.field, d.source) for d in bundle.diagnostics}
    assert (Reason.SchemaViolation, "spec.http[0].forward_to", Source("x.yaml", 9)) in fields
    assert refs(bundle) == []


def test_wrong_type_is_a_schema_violation_with_its_line() -> None:
    bundle = load({"x.yaml": ROUTE_TABLE.replace("number: 9080", "number: '9080'")})
    [d] = bundle.diagnostics
    assert d.reason is Reason.SchemaViolation
    assert d.field == "spec.http[0].forwardTo.destinations[0].port.number"
    assert d.source == Source("x.yaml", 10)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("number: 9080", "number: 0", "spec.http[0].forwardTo.destinations[0].port.number"),
        ("number: 9080", "number: 70000", "spec.http[0].forwardTo.destinations[0].port.number"),
    ],
)
def test_rule_violations_are_invalid_values(old: str, new: str, field: str) -> None:
    bundle = load({"x.yaml": ROUTE_TABLE.replace(old, new)})
    [d] = bundle.diagnostics
    assert (d.reason, d.field, d.source) == (Reason.InvalidValue, field, Source("x.yaml", 10))
    assert refs(bundle) == []


def test_unknown_top_level_key_is_a_schema_violation_at_its_line() -> None:
    bundle = load({"x.yaml": ROUTE_TABLE.replace("spec:\n", "stauts: {}\nspec:\n")})
    [d] = bundle.diagnostics
    assert (d.reason, d.field, d.source) == (Reason.SchemaViolation, "stauts", Source("x.yaml", 4))
    assert refs(bundle) == []


@pytest.mark.parametrize("stamp", ["yesterday", "'2024-05-01T12:00:00'", "2024-13-01T00:00:00Z"])
def test_bad_creation_timestamp_is_an_invalid_value(stamp: str) -> None:
    text = route_table("reviews", meta=f"creationTimestamp: {stamp}")
    bundle = load({"x.yaml": text})
    [d] = bundle.diagnostics
    assert (d.reason, d.field, d.source) == (
        Reason.InvalidValue,
        "metadata.creationTimestamp",
        Source("x.yaml", 3),
    )
    assert refs(bundle) == []


def test_unquoted_creation_timestamp_stays_a_string_and_loads() -> None:
    bundle = load(
        {"x.yaml": route_table("reviews", meta="creationTimestamp: 2024-05-01T12:00:00Z")}
    )
    assert bundle.diagnostics == ()
    [obj] = bundle.objects
    assert obj.meta.creationTimestamp == "2024-05-01T12:00:00Z"


def test_cluster_annotation_pins_the_cluster_and_must_be_a_valid_name() -> None:
    good = route_table("good", meta="annotations: {cluster.solo.io/cluster: east-1}")
    bad = route_table("bad", meta="annotations: {cluster.solo.io/cluster: East_1}")
    bundle = load({"good.yaml": good, "bad.yaml": bad, **VALID})
    assert {o.ref.name: o.cluster for o in bundle.objects} == {"good": "east-1", "reviews": "mgmt"}
    [d] = bundle.diagnostics
    assert (d.reason, d.source.file if d.source else None) == (
        Reason.InvalidClusterName,
        "bad.yaml",
    )
    assert d.field == "metadata.annotations.cluster.solo.io/cluster"
    assert "East_1" in d.message
    assert d.obj == ObjectRef("RouteTable", "bookinfo-backends", "bad")


def test_kubernetes_cluster_with_an_invalid_name_is_refused() -> None:
    text = (
        "apiVersion: admin.gloo.solo.io/v2\nkind: KubernetesCluster\n"
        "metadata: {name: Cluster_1, namespace: gloo-mesh}\nspec: {clusterDomain: cluster.local}\n"
        "---\n"
        "apiVersion: admin.gloo.solo.io/v2\nkind: KubernetesCluster\n"
        "metadata: {name: cluster-1, namespace: gloo-mesh}\nspec: {}\n"
    )
    bundle = load({"clusters.yaml": text})
    [d] = bundle.diagnostics
    assert (d.reason, d.source, d.field) == (
        Reason.InvalidClusterName,
        Source("clusters.yaml", 1),
        "metadata.name",
    )
    assert d.obj == ObjectRef("KubernetesCluster", "gloo-mesh", "Cluster_1")
    assert refs(bundle) == [ObjectRef("KubernetesCluster", "gloo-mesh", "cluster-1")]


# -- kinds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", Reason.UnknownKind, "v1"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n",
            Reason.UnknownKind,
            "apps/v1",
        ),
        (
            "apiVersion: security.policy.gloo.solo.io/v2\nkind: CORSPolicy\n"
            "metadata: {name: p, namespace: n}\nspec: {anything: [goes]}\n",
            Reason.UnsupportedKind,
            "CORSPolicy",
        ),
        (
            ROUTE_TABLE.replace("/v2", "/v1alpha1"),
            Reason.UnsupportedKind,
            "version v1alpha1",
        ),
    ],
    ids=["core", "apps", "other-gloo-kind", "unsupported-version"],
)
def test_kinds_that_are_not_translated_are_warnings(text: str, reason: Reason, words: str) -> None:
    bundle = load({"other.yaml": "# leading\n" + text, "valid/x.yaml": route_table("x")})
    [d] = bundle.diagnostics
    assert (d.reason, d.source, d.severity) == (reason, Source("other.yaml", 2), Severity.WARNING)
    assert words in d.message
    assert d.obj is not None and d.obj not in bundle.invalid
    assert [o.ref.name for o in bundle.objects] == ["x"]


# -- gitops.yaml ------------------------------------------------------------------------------

NARROWED: dict[str, Entry | str] = {
    "mesh/a.yaml": route_table("a"),
    "mesh/old/b.yaml": route_table("b"),
    "other/c.yaml": route_table("c"),
    "helm/mgmt-plane.yaml": "common: {cluster: east}\n",
}


def test_gitops_yaml_paths_and_exclude_narrow_what_is_read() -> None:
    bundle = load({"gitops.yaml": "paths: [mesh]\nexclude: ['mesh/old/**']\n", **NARROWED})
    assert bundle.diagnostics == ()
    assert [o.ref.name for o in bundle.objects] == ["a"]
    assert bundle.complete
    assert bundle.config_cluster == "east"
    assert set(bundle.files) == {"mesh/a.yaml"}


def test_gitops_yaml_through_a_link_inside_the_repository_is_used() -> None:
    entries: dict[str, Entry | str] = {
        "gitops.yaml": Link("conf/gitops.yaml"),
        "conf/gitops.yaml": "paths: [mesh]\n",
    }
    bundle = load({**entries, **NARROWED})
    assert [o.ref.name for o in bundle.objects] == ["a", "b"]
    assert bundle.complete


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("paths:\n- mesh\n- /etc\n", {3}),
        ("exclude: ['../elsewhere']\n", {1}),
        ("paths: [mesh/../../x]\nexclude: [/abs]\n", {1, 2}),
        ("paths: mesh\n", {1}),
        ("paths: [mesh]\nincludes: [x]\n", {2}),
        ("paths: [1]\n", {1}),
        ("- mesh\n", {1}),
    ],
    ids=["absolute", "dotdot", "both", "not-a-list", "unknown-key", "not-a-string", "a-list"],
)
def test_invalid_gitops_yaml_reads_nothing_but_helm(text: str, lines: set[int]) -> None:
    bundle = load({"gitops.yaml": text, **NARROWED})
    assert {(d.reason, d.source.file if d.source else "") for d in bundle.diagnostics} == {
        (Reason.InvalidGitopsConfig, "gitops.yaml")
    }
    assert {d.source.line for d in bundle.diagnostics if d.source} == lines
    assert not bundle.complete
    assert bundle.objects == ()
    assert bundle.config_cluster == "east"  # helm/ is still read


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ("paths: [mesh\n", Reason.YamlSyntaxError),
        (b"paths: [m\xe9sh]\n", Reason.InvalidEncoding),
        ("paths: &a [*a]\n", Reason.YamlAliasBomb),
    ],
)
def test_unparseable_gitops_yaml_reads_nothing_but_helm(settings: Entry, reason: Reason) -> None:
    bundle = load({"gitops.yaml": settings, **NARROWED})
    assert [(d.reason, d.source.file if d.source else "") for d in bundle.diagnostics] == [
        (reason, "gitops.yaml")
    ]
    assert not bundle.complete
    assert bundle.objects == ()
    assert bundle.config_cluster == "east"


@pytest.mark.parametrize(
    "settings",
    [
        Link("../outside/gitops.yaml"),
        Link("missing.yaml"),
        Link("gitops.yaml"),
        Link("README.md"),
        Oversize(MAX_FILE_BYTES + 1),
    ],
    ids=["escaping-link", "dangling-link", "looping-link", "non-yaml-target", "oversize"],
)
def test_unreadable_gitops_yaml_reads_nothing_but_helm(settings: Entry) -> None:
    # A gitops.yaml that exists but cannot be read is a broken gitops.yaml: reading the
    # whole repository instead could apply config the user excluded (docs/decisions.md).
    bundle = load({"gitops.yaml": settings, "README.md": Other(), **NARROWED})
    assert "gitops.yaml" in {d.source.file for d in bundle.diagnostics if d.source}
    assert not bundle.complete
    assert bundle.objects == ()


def test_gitops_yaml_with_a_duplicate_key_is_refused() -> None:
    bundle = load({"gitops.yaml": "paths: [mesh]\npaths: [other]\n", **NARROWED})
    assert [(d.reason, d.source) for d in bundle.diagnostics] == [
        (Reason.DuplicateKey, Source("gitops.yaml", 2))
    ]
    assert not bundle.complete
    assert bundle.objects == ()


def test_empty_gitops_yaml_narrows_nothing() -> None:
    bundle = load({"gitops.yaml": "# nothing yet\n", **NARROWED})
    assert [o.ref.name for o in bundle.objects] == ["a", "b", "c"]
    assert bundle.complete


# -- helm values ----------------------------------------------------------------------------


def test_config_cluster_defaults_to_mgmt_and_comes_from_mgmt_plane_values() -> None:
    assert load(VALID).config_cluster == "mgmt"
    bundle = load(
        {
            "helm/mgmt-plane.yaml": "common:\n  cluster: mgmt-east\nglooUi: {enabled: true}\n",
            "helm/data-plane/east-1.yaml": "common: {cluster: east-1}\n",
            "helm/data-plane/west.yml": "common: {cluster: west}\n",
            **VALID,
        }
    )
    assert bundle.diagnostics == ()
    assert bundle.config_cluster == "mgmt-east"
    assert bundle.helm.mgmt_plane == {
        "common": {"cluster": "mgmt-east"},
        "glooUi": {"enabled": True},
    }
    assert set(bundle.helm.data_plane) == {"east-1", "west"}
    assert [o.cluster for o in bundle.objects] == ["mgmt-east"]
    assert "helm/mgmt-plane.yaml" not in bundle.files


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("common: {cluster: Mgmt_1}\n", Reason.InvalidClusterName),
        ("common: {cluster: ''}\n", Reason.InvalidClusterName),
        ("common: {cluster: 7}\n", Reason.InvalidHelmValues),
        ("- a\n", Reason.InvalidHelmValues),
    ],
)
def test_bad_mgmt_plane_cluster_is_reported_and_the_default_kept(text: str, reason: Reason) -> None:
    bundle = load({"helm/mgmt-plane.yaml": text, **VALID})
    assert [(d.reason, d.source.file if d.source else "") for d in bundle.diagnostics] == [
        (reason, "helm/mgmt-plane.yaml")
    ]
    assert bundle.config_cluster == "mgmt"
    assert refs(bundle) == [REVIEWS]


def test_unknown_files_and_bad_cluster_names_under_helm() -> None:
    bundle = load(
        {
            "helm/values.yaml": "a: 1\n",
            "helm/data-plane/nested/x.yaml": "a: 1\n",
            "helm/data-plane/Cluster_2.yaml": "a: 1\n",
            "helm/data-plane/ok.yaml": "common: {cluster: ok}\n",
            **VALID,
        }
    )
    assert {(d.source.file if d.source else "", d.reason) for d in bundle.diagnostics} == {
        ("helm/values.yaml", Reason.UnknownHelmValuesFile),
        ("helm/data-plane/nested/x.yaml", Reason.UnknownHelmValuesFile),
        ("helm/data-plane/Cluster_2.yaml", Reason.InvalidClusterName),
    }
    assert Reason.UnknownHelmValuesFile.severity is Severity.WARNING
    assert set(bundle.helm.data_plane) == {"ok"}
    assert refs(bundle) == [REVIEWS]


def test_helm_values_are_read_even_when_gitops_yaml_excludes_them() -> None:
    bundle = load(
        {
            "gitops.yaml": "paths: [mesh]\nexclude: [helm, 'helm/**']\n",
            "helm/mgmt-plane.yaml": "common: {cluster: east}\n",
            "mesh/a.yaml": ROUTE_TABLE,
        }
    )
    assert bundle.config_cluster == "east"
    assert refs(bundle) == [REVIEWS]


def test_helm_values_with_a_duplicate_key_are_not_used() -> None:
    # A document with a duplicate key must not be used (gitops.parsing.Document.problems).
    bundle = load({"helm/mgmt-plane.yaml": "common:\n  cluster: east\n  cluster: west\n"})
    assert [(d.reason, d.source) for d in bundle.diagnostics] == [
        (Reason.DuplicateKey, Source("helm/mgmt-plane.yaml", 3))
    ]
    assert bundle.config_cluster != "west"
    assert bundle.helm.mgmt_plane == {}


def test_helm_values_files_that_cannot_be_read_are_listed_as_unreadable() -> None:
    bundle = load(
        {
            "helm/mgmt-plane.yaml": "common: [\n",
            "helm/data-plane/east.yaml": b"a: \xff\n",
            "helm/data-plane/west.yaml": Oversize(MAX_FILE_BYTES + 1),
        }
    )
    assert {d.reason for d in bundle.diagnostics} == {
        Reason.YamlSyntaxError,
        Reason.InvalidEncoding,
        Reason.FileTooLarge,
    }
    assert bundle.unreadable_files == {
        "helm/mgmt-plane.yaml",
        "helm/data-plane/east.yaml",
        "helm/data-plane/west.yaml",
    }


def test_two_values_files_for_the_same_cluster_are_not_silently_merged() -> None:
    bundle = load(
        {
            "helm/mgmt-plane.yaml": "common: {cluster: east}\n",
            "helm/mgmt-plane.yml": "common: {cluster: west}\n",
        }
    )
    named = {d.source.file for d in bundle.diagnostics if d.source}
    assert named & {"helm/mgmt-plane.yaml", "helm/mgmt-plane.yml"}


# -- the whole repository ---------------------------------------------------------------------


def test_a_repository_of_broken_files_still_loads_its_valid_objects() -> None:
    # Every hostile case above in its own folder of one repository, plus one valid file.
    entries: dict[str, Entry | str] = {
        f"{case[0]}/{path}": entry for case in HOSTILE for path, entry in case[1].items()
    }
    bundle = load({**entries, **VALID})
    assert refs(bundle) == [REVIEWS]
    named = {d.source.file for d in bundle.diagnostics if d.source}
    assert {name for name, *_ in HOSTILE if any(f.startswith(f"{name}/") for f in named)} == {
        name for name, *_ in HOSTILE
    }
    assert all(d.source is not None for d in bundle.diagnostics)


def _messy_repository() -> dict[str, Entry]:
    entries: dict[str, Entry | str] = {
        "z.yaml": ROUTE_TABLE,
        "a.yaml": route_table("a", meta="creationTimestamp: 2024-05-01T12:00:00Z"),
        "m.yaml": "- 1\n",
        "b.yaml": Link("/etc/passwd"),
        "e.yaml": Link("../x.yaml"),
        "c.yaml": Oversize(MAX_FILE_BYTES + 1),
        "d.yaml": "a: [\n",
        "gitops.yaml": "exclude: [skip]\n",
        "skip/x.yaml": route_table("skipped"),
        "helm/mgmt-plane.yaml": "common: {cluster: east}\n",
    }
    return {k: v.encode() if isinstance(v, str) else v for k, v in entries.items()}


def test_loading_the_same_tree_twice_gives_equal_bundles() -> None:
    tree = Tree(_messy_repository())
    first = loading.load(tree)
    assert loading.load(tree) == first
    assert [o.ref.name for o in first.objects] == ["a", "reviews"]
    assert len(first.diagnostics) == 5


def test_equal_trees_built_in_another_order_load_to_equal_bundles() -> None:
    # Sources sort their entries, but `Tree` equality ignores order: two equal trees are the
    # same repository and must give the same bundle, diagnostics in the same order.
    entries = _messy_repository()
    reordered = dict(reversed(list(entries.items())))
    assert Tree(entries) == Tree(reordered)
    assert loading.load(Tree(reordered)) == loading.load(Tree(entries))


def test_a_file_that_stops_parsing_keeps_the_objects_it_last_defined() -> None:
    ref = ObjectRef("RouteTable", "bookinfo-backends", "reviews")
    good = loading.load(Tree({"routes.yaml": REVIEWS_ROUTE_TABLE.encode()}))
    broken = Tree({"routes.yaml": b"apiVersion: [unclosed\n"})
    kept = loading.load(broken, previous=good)
    assert ref in kept.by_ref  # the last good RouteTable is still desired
    assert "routes.yaml" in kept.unreadable_files
    assert any(d.source and d.source.file == "routes.yaml" for d in kept.diagnostics)
    # Broken again on the next commit: still kept; a fresh start has nothing to keep.
    assert ref in loading.load(broken, previous=kept).by_ref
    assert ref not in loading.load(broken).by_ref
    # Deleting the file is a real change: its objects go.
    assert ref not in loading.load(Tree({}), previous=kept).by_ref


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ("name: <script>x</script>, namespace: bookinfo-backends", "metadata.name"),
        ("name: Reviews, namespace: bookinfo-backends", "metadata.name"),
        ("name: reviews, namespace: Bookinfo_Backends", "metadata.namespace"),
    ],
)
def test_a_name_kubernetes_would_refuse_is_invalid(meta: str, field: str) -> None:
    # Names become output object names, directory-cluster file paths, Redis keys and report
    # pages: one that Kubernetes would refuse stops at the loader, with its file and field.
    text = ROUTE_TABLE.replace("name: reviews, namespace: bookinfo-backends", meta, 1)
    assert text != ROUTE_TABLE
    bundle = load({"bad.yaml": text, **VALID})
    [d] = bundle.diagnostics
    assert (d.reason, d.field) == (Reason.InvalidValue, field)
    assert d.source is not None and d.source.file == "bad.yaml"
    assert "DNS-1123" in d.message and d.source.line == 3  # the metadata line
    assert [o.ref.name for o in bundle.objects] == ["reviews"]
