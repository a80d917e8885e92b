"""`gitops install render`: manifests on stdout or in a file, diagnostics on stderr, exit
codes (0 rendered, 1 invalid values, 2 usage)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]
MGMT_VALUES = ROOT / "deploy" / "values" / "mgmt-plane.yaml"
DATA_VALUES = ROOT / "deploy" / "values" / "data-plane.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["install", "render", *args])
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_render_prints_the_committed_manifests() -> None:
    code, out, err = run("--values", str(MGMT_VALUES))
    assert (code, err) == (0, "")
    assert out == (ROOT / "deploy" / "manifests" / "mgmt-plane.yaml").read_text()
    assert {d["kind"] for d in yaml.safe_load_all(out)} >= {"Deployment", "Service", "Role"}


def test_output_file_holds_exactly_what_stdout_would(tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    code, out, _ = run("--values", str(DATA_VALUES), "-o", str(target))
    assert (code, out) == (0, "")
    assert target.read_text() == run("--values", str(DATA_VALUES))[1]


def test_several_values_files_merge_in_order(tmp_path: Path) -> None:
    more = write(tmp_path, "more.yaml", "glooMgmtServer:\n  replicas: 5\n")
    code, out, _ = run("--values", str(MGMT_VALUES), "--values", more)
    assert code == 0
    [server] = [
        d
        for d in yaml.safe_load_all(out)
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "gloo-mesh-mgmt-server"
    ]
    assert server["spec"]["replicas"] == 5


def test_invalid_values_exit_1_with_file_and_line_and_print_no_manifests(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "glooMgmtServer:\n  enabled: true\n  replica: 2\n")
    code, out, err = run("--values", bad)
    assert (code, out) == (1, "")
    assert f"{bad}:3: error: InvalidHelmValues: glooMgmtServer.replica: unknown key" in err


def test_warnings_are_printed_and_the_manifests_rendered(tmp_path: Path) -> None:
    values = write(
        tmp_path, "v.yaml", "glooMgmtServer: {enabled: true}\nlicensing: {licenseKey: x}\n"
    )
    code, out, err = run("--values", values)
    assert code == 0 and out.startswith("---\n")
    assert f"{values}:2: warning: HelmValueIgnored: licensing is not needed" in err


def test_cluster_option_names_the_agent(tmp_path: Path) -> None:
    values = write(
        tmp_path,
        "agent.yaml",
        "glooAgent:\n  enabled: true\n  relay: {serverAddress: 'mgmt.example.com:9900'}\n",
    )
    code, _, err = run("--values", values)
    assert code == 1 and "MissingHelmValue: common.cluster is required" in err
    code, out, _ = run("--values", values, "--cluster", "west", "-n", "mesh-system")
    assert code == 0
    [config] = [d for d in yaml.safe_load_all(out) if d["kind"] == "ConfigMap"]
    assert config["metadata"]["namespace"] == "mesh-system"
    assert yaml.safe_load(config["data"]["values.yaml"])["common"]["cluster"] == "west"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run()[0] == 2  # --values is required
    assert run("--values", str(tmp_path / "missing.yaml"))[0] == 2
    code, _, err = run("--values", str(MGMT_VALUES), "--namespace", "Not_A_Namespace")
    assert code == 2 and "--namespace" in err
    code, _, err = run("--values", str(DATA_VALUES), "--cluster", "East_1")
    assert code == 2 and "--cluster" in err
