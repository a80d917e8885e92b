"""`gitops pki`: the relay's certificates and bootstrap token (DESIGN.md section 5).

Registered on the `gitops` command line by `controller.cli`. `init` parses its options, calls
`controller.pki.init` once and prints what it wrote and what to do next. It never prints the
token or a key. Exit codes: 0 written; 1 refused (an existing PKI without `--force`, an
unusable `--root-cert`/`--root-key`); 2 usage (bad cluster name, a missing option).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from controller import pki
from gitops import names


@click.group("pki")
def pki_group() -> None:
    """The relay's PKI: root CA, signing CA, server certificate, bootstrap token."""


def _check_clusters(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for name in value:
        if problem := names.cluster_name_problem(name):
            raise click.BadParameter(problem)
    return value


@pki_group.command("init")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Secrets directory to write (<out>/<secretName>/<key>).",
)
@click.option(
    "--cluster",
    "clusters",
    multiple=True,
    callback=_check_clusters,
    help="A workload cluster that will register (checked against the naming rules only; "
    "clusters are KubernetesClusters in Git). Repeatable.",
)
@click.option(
    "--server-name",
    "server_names",
    multiple=True,
    help="A DNS name of the relay's server certificate; repeatable. Default: "
    + ", ".join(pki.DEFAULT_SERVER_NAMES)
    + " (agents check glooAgent.relay.authority against these).",
)
@click.option(
    "--root-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Bring your own root CA: its certificate (PEM). Needs --root-key.",
)
@click.option(
    "--root-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Bring your own root CA: its private key (unencrypted PEM). Needs --root-cert.",
)
@click.option("--force", is_flag=True, help="Replace an existing PKI in --out.")
def init_command(
    out: Path,
    clusters: tuple[str, ...],
    server_names: tuple[str, ...],
    root_cert: Path | None,
    root_key: Path | None,
    force: bool,
) -> None:
    """Write the management server's relay Secrets into a secrets directory."""
    if (root_cert is None) != (root_key is None):
        raise click.UsageError("--root-cert and --root-key go together")
    root = None
    if root_cert is not None and root_key is not None:
        root = (root_key.read_bytes(), root_cert.read_bytes())
    try:
        pki.init(
            out,
            clusters=clusters,
            server_names=server_names or pki.DEFAULT_SERVER_NAMES,
            root=root,
            now=datetime.now(UTC),
            overwrite=force,
        )
    except pki.PkiError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(_summary(out, clusters, generated_root=root is None))


def _summary(out: Path, clusters: tuple[str, ...], *, generated_root: bool) -> str:
    server = (out / pki.SERVER_SECRET / "tls.crt").read_bytes()
    lines = [
        f"Wrote the relay PKI to {out}:",
        f"  {pki.ROOT_SECRET}/ca.crt           root CA (give it to every agent)",
        f"  {pki.SIGNING_SECRET}/          signs agent certificates",
        f"  {pki.SERVER_SECRET}/           server certificate, valid until "
        f"{pki.not_after(server):%Y-%m-%d}",
        f"  {pki.TOKEN_SECRET}/token    bootstrap token (give it to every agent)",
    ]
    if generated_root:
        lines.append(
            f"  {pki.ROOT_KEY_FILE}                       root CA key: not a Secret; keep it "
            "offline to re-issue later (--root-cert/--root-key)"
        )
    if clusters:
        lines.append(
            f"Clusters to register: {', '.join(clusters)} "
            "(each needs a KubernetesCluster in the config repository)"
        )
    lines += [
        "Next: create these Secrets in the management namespace (kubectl create secret "
        f"generic NAME --from-file={out}/NAME/), and {pki.ROOT_SECRET} and "
        f"{pki.TOKEN_SECRET} in each workload cluster's namespace. See docs/relay.md.",
    ]
    return "\n".join(lines)
