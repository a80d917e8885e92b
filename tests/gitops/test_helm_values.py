"""Typed Helm values (`gitops.helm`): defaults, schema errors with key path and line, every
cross-field rule on both sides, FIPS detection, and how the loader uses them for `helm/`."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pydantic
import pytest

from gitops import loading
from gitops.bundle import Bundle
from gitops.diagnostics import Diagnostic, Source
from gitops.helm import validation
from gitops.helm.fields import Image, Resources, quantity_value
from gitops.helm.models import Values
from gitops.reasons import Reason, Severity
from gitops.tree import Tree

ROOT = Path(__file__).resolve().parents[2]
MS = 1_000_000
S = 1000 * MS


def check(text: str, cluster: str | None = None) -> validation.Checked:
    layer, problems = validation.parse("values.yaml", text.encode())
    assert problems == [] and layer is not None
    return validation.check([layer], cluster)


def found(checked: validation.Checked) -> list[tuple[Reason, int, str]]:
    return [(d.reason, d.source.line if d.source else 0, d.message) for d in checked.diagnostics]


def reasons(text: str) -> list[Reason]:
    return [d.reason for d in check(text).diagnostics]


def load(entries: dict[str, str]) -> Bundle:
    return loading.load(Tree({k: v.encode() for k, v in entries.items()}))


# -- defaults -------------------------------------------------------------------------------


def test_an_empty_file_means_the_defaults() -> None:
    values = check("").values
    assert values == Values()
    server, agent, redis = values.gloo_mgmt_server, values.gloo_agent, values.redis
    assert (server.enabled, server.replicas, server.safe_mode, server.safe_start_window) == (
        False,
        1,
        True,
        0,
    )
    assert server.service_type == "LoadBalancer"
    assert server.relay.tls_secret.name == "relay-server-tls-secret"
    assert server.relay.signing_tls_secret.name == "relay-tls-signing-secret"
    assert (server.relay.token_secret.name, server.relay.token_secret.key) == (
        "relay-identity-token-secret",
        "token",
    )
    assert agent.relay.authority == "gloo-mesh-mgmt-server.gloo-mesh"
    assert agent.relay.client_tls_secret.name == "relay-client-tls-secret"
    assert agent.relay.root_tls_secret.name == "relay-root-tls-secret"
    assert server.image.reference("1.2.3") == "ghcr.io/mesh-gitops/mesh-gitops:1.2.3"
    assert redis.deployment.image.reference("ignored") == "docker.io/library/redis:7.4.6-alpine"
    assert server.resources.manifest() == {"requests": {"cpu": "125m", "memory": "256Mi"}}
    assert redis.deployment.enabled and redis.address is None
    assert (redis.auth.username_key, redis.auth.password_key, redis.certs.ca_cert_key) == (
        "username",
        "password",
        "ca.crt",
    )
    assert values.prometheus.enabled and not values.gloo_ui.enabled


def test_redis_connection_defaults_are_go_redis_v8s() -> None:
    connection = check("").values.redis.connection
    assert (connection.dial_timeout, connection.read_timeout) == (5 * S, 3 * S)
    assert connection.write_timeout is None and connection.effective_write_timeout == 3 * S
    assert connection.pool_size is None
    assert (connection.max_retries, connection.min_retry_backoff, connection.max_retry_backoff) == (
        3,
        8 * MS,
        512 * MS,
    )
    assert (connection.idle_timeout, connection.idle_check_frequency) == (300 * S, 60 * S)
    assert connection.pool_timeout is None and connection.effective_pool_timeout == 4 * S
    tuned = check("redis:\n  connection: {readTimeout: 10s, writeTimeout: 1s}\n").values
    assert tuned.redis.connection.effective_write_timeout == S
    assert tuned.redis.connection.effective_pool_timeout == 11 * S


def test_gitops_block_defaults() -> None:
    block = check("").values.gitops
    assert (block.repo.ref, block.repo.interval, block.repo.verify) == ("main", 30 * S, "none")
    assert block.repo.paths == [] and block.repo.url is None
    sync = block.sync
    assert (sync.automated, sync.prune, sync.self_heal, sync.allow_empty, sync.fail_on_invalid) == (
        True,
        True,
        True,
        False,
        False,
    )
    assert (block.status.provider, block.status.prefix) == ("notes", "mesh-gitops")
    assert block.previews.refs == ["refs/pull/*/head", "refs/merge-requests/*/head"]
    assert block.mesh.trust_domain is None


def test_setting_one_key_keeps_its_siblings_defaults() -> None:
    # Helm merges user values over the chart's, key by key; so do nested defaults here.
    values = check("glooMgmtServer:\n  relay:\n    tokenSecret: {key: bootstrap}\n").values
    token = values.gloo_mgmt_server.relay.token_secret
    assert (token.name, token.key) == ("relay-identity-token-secret", "bootstrap")


def test_null_means_the_default() -> None:
    values = check("glooMgmtServer:\n  safeMode: null\n  extraEnvs: {A: {value: x}, B: null}\n")
    assert values.diagnostics == ()
    assert values.values.gloo_mgmt_server.safe_mode is True
    assert set(values.values.gloo_mgmt_server.extra_envs) == {"A"}


def test_the_examples_and_sample_values_are_clean() -> None:
    for path in [
        *sorted((ROOT / "examples-repo" / "helm").rglob("*.yaml")),
        *sorted((ROOT / "deploy" / "values").glob("*.yaml")),
    ]:
        layer, problems = validation.parse(str(path), path.read_bytes())
        assert problems == [] and layer is not None
        checked = validation.check([layer])
        assert checked.diagnostics == (), path
        assert checked.values is not None


# -- schema errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("glooMgr: {enabled: true}\n", 1, "glooMgr: unknown key"),
        (
            "glooMgmtServer:\n  relay:\n    tlsSecret:\n      nmae: x\n",
            4,
            "glooMgmtServer.relay.tlsSecret.nmae: unknown key",
        ),
        ("glooMgmtServer:\n  safe_mode: false\n", 2, "glooMgmtServer.safe_mode: unknown key"),
        ("redis:\n  deployment:\n    foo: 1\n", 3, "redis.deployment.foo: unknown key"),
        ("gitops:\n  repo:\n    branch: main\n", 3, "gitops.repo.branch: unknown key"),
    ],
    ids=["top-level", "nested", "snake-case", "redis", "gitops-block"],
)
def test_unknown_keys_are_errors_with_path_and_line(text: str, line: int, message: str) -> None:
    checked = check(text)
    assert found(checked) == [(Reason.InvalidHelmValues, line, message)]
    assert checked.values is None and checked.failed


@pytest.mark.parametrize(
    ("text", "line", "path"),
    [
        ("glooMgmtServer:\n  replicas: '2'\n", 2, "glooMgmtServer.replicas"),
        ("common:\n  insecure: 'false'\n", 2, "common.insecure"),
        ("glooMgmtServer:\n  serviceType: Ingress\n", 2, "glooMgmtServer.serviceType"),
        ("redis:\n  connection:\n    dialTimeout: 5\n", 3, "redis.connection.dialTimeout"),
        ("redis:\n  connection:\n    readTimeout: 5 seconds\n", 3, "redis.connection.readTimeout"),
        ("glooAgent:\n  relay:\n    serverAddress: mgmt\n", 3, "glooAgent.relay.serverAddress"),
        ("gitops:\n  repo:\n    paths:\n    - mesh\n    - ../x\n", 5, "gitops.repo.paths[1]"),
        ("gitops:\n  repo:\n    interval: 100ms\n", 3, "gitops.repo.interval"),
        ("gitops:\n  repo:\n    verify: always\n", 3, "gitops.repo.verify"),
        ("gitops:\n  repo:\n    authSecret: Git_Auth\n", 3, "gitops.repo.authSecret"),
        ("gitops:\n  mesh:\n    trustDomain: a/b\n", 3, "gitops.mesh.trustDomain"),
        ("glooMgmtServer:\n  extraEnvs:\n    1X: {value: a}\n", 3, "glooMgmtServer.extraEnvs.1X"),
        (
            "glooMgmtServer:\n  extraEnvs:\n    X: {value: 1}\n",
            3,
            "glooMgmtServer.extraEnvs.X.value",
        ),
        ("glooAgent:\n  extraEnvs:\n    X: {}\n", 3, "glooAgent.extraEnvs.X"),
        (
            "glooAgent:\n  resources:\n    requests:\n      cpu: lots\n",
            4,
            "glooAgent.resources.requests.cpu",
        ),
        (
            "glooAgent:\n  resources:\n    requests: {cpu: 2}\n    limits: {cpu: 1}\n",
            2,
            "glooAgent.resources",
        ),
        ("glooAgent:\n  image:\n    tag: 'a b'\n", 3, "glooAgent.image.tag"),
        ("redis:\n  deployment:\n    ioThreads: 0\n", 3, "redis.deployment.ioThreads"),
        ("- a\n", 1, ""),
    ],
)
def test_wrong_types_and_values_are_errors_with_path_and_line(
    text: str, line: int, path: str
) -> None:
    layer, problems = validation.parse("values.yaml", text.encode())
    diagnostics = problems if layer is None else list(validation.check([layer]).diagnostics)
    [d] = diagnostics
    assert (d.reason, d.source) == (Reason.InvalidHelmValues, Source("values.yaml", line))
    assert d.message.startswith(f"{path}: ") if path else "mapping" in d.message


def test_a_valid_env_source_and_numeric_quantities_are_accepted() -> None:
    values = check(
        "glooAgent:\n"
        "  extraEnvs:\n"
        "    TOKEN: {valueFrom: {secretKeyRef: {name: s, key: k}}}\n"
        "  resources: {requests: {cpu: 0.5, memory: 1Gi}, limits: {cpu: 2}}\n"
    ).values
    assert values.gloo_agent.extra_envs["TOKEN"].manifest("TOKEN") == {
        "name": "TOKEN",
        "valueFrom": {"secretKeyRef": {"key": "k", "name": "s"}},
    }
    assert values.gloo_agent.resources.manifest() == {
        "limits": {"cpu": "2"},
        "requests": {"cpu": "0.5", "memory": "1Gi"},
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("1Gi", Decimal(1024**3)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("250u", Decimal("0.00025")),
    ],
)
def test_quantities(text: str, value: Decimal) -> None:
    assert quantity_value(text) == value


@pytest.mark.parametrize("text", ["", "m", "-1", "1.5.5", "2 cores", "1KB"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity_value(text)


# -- cross-field rules: each triggers, and does not trigger ----------------------------------------

SAFE = "glooMgmtServer:\n  safeMode: {mode}\n  safeStartWindow: {window}\n"


def test_safe_start_window_under_safe_mode_is_ignored() -> None:
    checked = check(SAFE.format(mode="true", window=30))
    [d] = checked.diagnostics
    assert (d.reason, d.severity, d.source) == (
        Reason.HelmValueIgnored,
        Severity.WARNING,
        Source("values.yaml", 3),
    )
    assert (
        "glooMgmtServer.safeStartWindow: 30" in d.message and "glooMgmtServer.safeMode" in d.message
    )
    assert checked.values is not None and not checked.failed
    assert reasons(SAFE.format(mode="false", window=30)) == []
    assert reasons(SAFE.format(mode="true", window=0)) == []


THREADS = "redis:\n  deployment:\n    ioThreads: {threads}\n    resources: {resources}\n"


@pytest.mark.parametrize(
    ("threads", "resources", "says"),
    [
        (
            4,
            "{requests: {cpu: 500m}, limits: {cpu: 2}}",
            "requests.cpu is 500m and redis.deployment.resources.limits.cpu is 2",
        ),
        (2, "{requests: {cpu: 3}}", "redis.deployment.resources.limits.cpu is unset"),
        (2, "{requests: {cpu: 2999m}, limits: {cpu: 3}}", "requests.cpu is 2999m"),
    ],
)
def test_redis_io_threads_need_a_core_each_plus_one(
    threads: int, resources: str, says: str
) -> None:
    [d] = check(THREADS.format(threads=threads, resources=resources)).diagnostics
    assert (d.reason, d.severity, d.source) == (
        Reason.InsufficientResources,
        Severity.WARNING,
        Source("values.yaml", 3),
    )
    assert f"redis.deployment.ioThreads: {threads} needs" in d.message
    assert f"at least {threads + 1} cores" in d.message and says in d.message


@pytest.mark.parametrize(
    ("threads", "resources"),
    [
        (4, "{requests: {cpu: 5}, limits: {cpu: 5}}"),
        (2, "{requests: {cpu: 3000m}, limits: {cpu: '3.5'}}"),
        (1, "{requests: {cpu: 100m}}"),
    ],
)
def test_redis_io_threads_with_enough_cpu_are_fine(threads: int, resources: str) -> None:
    assert reasons(THREADS.format(threads=threads, resources=resources)) == []


def test_redis_io_threads_of_a_disabled_bundled_redis_are_not_checked() -> None:
    text = "redis:\n  address: r:6379\n  deployment: {enabled: false, ioThreads: 8}\n"
    assert reasons(text) == []


def test_without_the_bundled_redis_an_address_is_required() -> None:
    checked = check("redis:\n  deployment:\n    enabled: false\n")
    assert found(checked) == [
        (
            Reason.MissingHelmValue,
            3,
            "redis.address is required when redis.deployment.enabled is false (the server "
            "needs a Redis to store snapshots in)",
        )
    ]
    assert checked.failed and checked.values is not None  # well-formed, but not installable
    assert reasons("redis:\n  deployment: {enabled: false}\n  address: r.example.com:6379\n") == []


@pytest.mark.parametrize("section", ["auth", "certs"])
def test_redis_auth_and_certs_need_a_secret_name(section: str) -> None:
    external = "redis:\n  address: r.example.com:6379\n"
    [d] = check(f"{external}  {section}:\n    enabled: true\n").diagnostics
    assert (d.reason, d.source) == (Reason.MissingHelmValue, Source("values.yaml", 4))
    assert f"redis.{section}.secretName is required" in d.message
    assert reasons(f"{external}  {section}: {{enabled: true, secretName: redis-{section}}}\n") == []
    assert reasons(f"{external}  {section}: {{enabled: false}}\n") == []


def test_redis_auth_with_the_bundled_redis_is_ignored() -> None:
    text = "redis:\n  auth: {enabled: true, secretName: redis-auth}\n"
    [d] = check(text).diagnostics
    assert d.reason is Reason.HelmValueIgnored and "redis.auth.enabled is ignored" in d.message


def test_licensing_is_accepted_and_reported_as_not_needed() -> None:
    [d] = check("licensing:\n  glooMeshLicenseKey: s3cr3t\n  anything: [1]\n").diagnostics
    assert (d.reason, d.severity, d.source) == (
        Reason.HelmValueIgnored,
        Severity.WARNING,
        Source("values.yaml", 1),
    )
    assert "licensing is not needed by mesh-gitops" in d.message and "s3cr3t" not in d.message
    assert reasons("licensing: {}\n") == []
    assert reasons("common: {}\n") == []


AGENT = "common:\n  insecure: {insecure}\nglooAgent:\n  enabled: {enabled}\n{relay}"


def test_a_secure_agent_needs_the_relay_address() -> None:
    [d] = check(AGENT.format(insecure="false", enabled="true", relay="")).diagnostics
    assert (d.reason, d.source) == (Reason.MissingHelmValue, Source("values.yaml", 4))
    assert "glooAgent.relay.serverAddress is required" in d.message
    address = "  relay: {serverAddress: 'mgmt.example.com:9900'}\n"
    assert reasons(AGENT.format(insecure="false", enabled="true", relay=address)) == []
    assert reasons(AGENT.format(insecure="true", enabled="true", relay="")) == []
    assert reasons(AGENT.format(insecure="false", enabled="false", relay="")) == []


def test_head_verification_needs_the_allowed_keys() -> None:
    [d] = check("gitops:\n  repo:\n    verify: head\n").diagnostics
    assert (d.reason, d.source) == (Reason.MissingHelmValue, Source("values.yaml", 3))
    assert "gitops.repo.allowedKeysSecret is required" in d.message
    assert reasons("gitops:\n  repo: {verify: head, allowedKeysSecret: signers}\n") == []
    assert reasons("gitops:\n  repo: {verify: none}\n") == []


def test_a_git_host_status_provider_needs_a_token() -> None:
    [d] = check("gitops:\n  status:\n    provider: gitlab\n").diagnostics
    assert d.reason is Reason.MissingHelmValue and "gitops.status.tokenSecret" in d.message
    assert reasons("gitops:\n  status: {provider: gitlab, tokenSecret: gl-token}\n") == []
    assert reasons("gitops:\n  status: {provider: notes}\n") == []


def test_ui_auth_needs_every_oidc_setting() -> None:
    partial = (
        "glooUi:\n  auth:\n    enabled: true\n    oidc: {clientId: ui, issuerUrl: 'https://idp'}\n"
    )
    [d] = check(partial).diagnostics
    assert d.reason is Reason.MissingHelmValue
    assert "glooUi.auth.oidc.appUrl, glooUi.auth.oidc.clientSecretName required" in d.message
    complete = partial.replace(
        "issuerUrl:", "appUrl: 'https://ui', clientSecretName: ui, issuerUrl:"
    )
    assert reasons(complete) == []


@pytest.mark.parametrize("key", ["createGlobalWorkspace", "registerCluster"])
def test_gloo_only_management_settings_are_ignored(key: str) -> None:
    [d] = check(f"glooMgmtServer:\n  {key}: true\n").diagnostics
    assert (d.reason, d.source) == (Reason.HelmValueIgnored, Source("values.yaml", 2))
    assert reasons(f"glooMgmtServer:\n  {key}: false\n") == []


# -- FIPS -------------------------------------------------------------------------------------


def test_fips_images_are_recognised_by_their_tag() -> None:
    assert Image(tag="2.6.1-fips").fips
    assert not Image(tag="2.6.1").fips and not Image().fips
    mgmt = "glooMgmtServer:\n  enabled: true\n  image: {{tag: {tag}}}\n"
    assert check(mgmt.format(tag="1.0.0-fips")).values.fips
    assert not check(mgmt.format(tag="1.0.0")).values.fips
    both = mgmt.format(tag="1.0.0-fips") + "glooAgent:\n  enabled: true\n  insecure: true\n"
    assert not check(both).values.fips  # the agent is not a FIPS build
    assert not check("glooMgmtServer: {image: {tag: 1.0-fips}}\n").values.fips  # not enabled


# -- cluster names ------------------------------------------------------------------------------


def test_common_cluster_must_be_a_valid_name_and_match_the_expected_cluster() -> None:
    bad = check("common:\n  cluster: East_1\n")
    assert [(d.reason, d.source) for d in bad.diagnostics] == [
        (Reason.InvalidClusterName, Source("values.yaml", 2))
    ]
    assert bad.values is None
    other = check("common:\n  cluster: east\n", cluster="west")
    assert found(other) == [
        (
            Reason.InvalidHelmValues,
            2,
            "common.cluster is 'east' but these values are for cluster 'west'",
        )
    ]
    assert other.values is None
    assert check("common:\n  cluster: west\n", cluster="west").values is not None
    assert check("common: {}\n", cluster="west").values is not None


# -- the loader ---------------------------------------------------------------------------------


def test_the_loader_types_helm_values_and_exposes_trust_domains() -> None:
    bundle = load(
        {
            "helm/mgmt-plane.yaml": "common: {cluster: hub}\nglooMgmtServer: {enabled: true}\n",
            "helm/data-plane/east.yaml": "gitops:\n  mesh: {trustDomain: east.example.com}\n",
            "helm/data-plane/west.yaml": "common: {cluster: west}\n",
        }
    )
    assert bundle.diagnostics == () and bundle.complete
    assert bundle.helm.mgmt is not None and bundle.helm.mgmt.gloo_mgmt_server.enabled
    assert set(bundle.helm.data_plane) == {"east", "west"}
    assert bundle.helm.trust_domain("east") == "east.example.com"
    assert bundle.helm.trust_domain("west") == "west"
    assert bundle.helm.trust_domain("north") == "north"  # no values at all


def test_without_mgmt_plane_values_the_chart_defaults_apply() -> None:
    bundle = load({})
    assert bundle.helm.mgmt == Values() and bundle.complete


def test_a_data_plane_file_naming_another_cluster_is_not_used() -> None:
    bundle = load(
        {
            "helm/data-plane/east.yaml": "common:\n  cluster: west\ngitops:\n"
            "  mesh: {trustDomain: west.example.com}\n"
        }
    )
    assert [(d.reason, d.source) for d in bundle.diagnostics] == [
        (Reason.InvalidHelmValues, Source("helm/data-plane/east.yaml", 2))
    ]
    assert "east" not in bundle.helm.data_plane
    assert "helm/data-plane/east.yaml" in bundle.unreadable_files
    assert bundle.helm.trust_domain("east") == "east"
    assert bundle.complete  # a data plane's values do not place config objects


def test_schema_errors_in_mgmt_plane_values_make_the_bundle_incomplete() -> None:
    bundle = load(
        {"helm/mgmt-plane.yaml": "common:\n  cluster: hub\nglooMgmtServer:\n  replicas: two\n"}
    )
    [d] = bundle.diagnostics
    assert (d.reason, d.source, d.field) == (
        Reason.InvalidHelmValues,
        Source("helm/mgmt-plane.yaml", 4),
        "glooMgmtServer.replicas",
    )
    assert bundle.helm.mgmt is None and not bundle.complete
    assert bundle.config_cluster == "hub"  # the best guess, kept from the raw file
    assert "helm/mgmt-plane.yaml" in bundle.unreadable_files


def test_rule_findings_in_helm_values_keep_the_values_usable() -> None:
    bundle = load({"helm/mgmt-plane.yaml": "redis:\n  deployment: {enabled: false}\n"})
    assert [d.reason for d in bundle.diagnostics] == [Reason.MissingHelmValue]
    assert bundle.helm.mgmt is not None and bundle.complete
    assert bundle.unreadable_files == frozenset()


def test_helm_diagnostics_are_printable_with_file_and_line() -> None:
    bundle = load({"helm/mgmt-plane.yaml": "glooMgmtServer:\n  safeStartWindow: 10\n"})
    [d] = bundle.diagnostics
    assert d.format() == (
        "helm/mgmt-plane.yaml:2: warning: HelmValueIgnored: glooMgmtServer.safeStartWindow: 10 "
        "is ignored while glooMgmtServer.safeMode is true (safe mode waits for every cluster, "
        "however long)"
    )
    assert isinstance(d, Diagnostic)


# -- the reference -------------------------------------------------------------------------------


def _keys(model: type[pydantic.BaseModel], prefix: str = "") -> Iterator[str]:
    """Every key path of the schema; images, resources and maps (`extraEnvs`) are
    documented as a whole."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        options = (info.annotation, *typing.get_args(info.annotation))
        nested = [t for t in options if isinstance(t, type) and issubclass(t, pydantic.BaseModel)]
        if typing.get_origin(info.annotation) is dict:
            nested = []
        if nested and not issubclass(nested[0], Image | Resources):
            yield from _keys(nested[0], f"{path}.")
        else:
            yield path


def test_docs_helm_values_lists_every_key() -> None:
    text = (ROOT / "docs" / "helm-values.md").read_text()
    keys = list(_keys(Values))
    assert len(keys) > 80
    assert [key for key in keys if f"`{key}`" not in text] == []
