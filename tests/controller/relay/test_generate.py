"""The committed relay stubs are what `python -m controller.relay.generate` makes from
relay.proto (DESIGN.md section 5: regeneration is a no-op), and are typed for mypy."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from controller.relay import generate, relay_pb2


def test_regeneration_is_a_no_op() -> None:
    result = CliRunner().invoke(generate.main, ["--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_check_names_a_stale_file(tmp_path: Path) -> None:
    generated = generate.generate()
    assert set(generated) == set(generate.GENERATED)
    for name, content in generated.items():
        (tmp_path / name).write_bytes(content)
    assert generate.stale(generated, tmp_path) == []
    (tmp_path / "relay_pb2_grpc.py").write_bytes(b"# edited by hand\n")
    (tmp_path / "relay_pb2.pyi").unlink()
    assert generate.stale(generated, tmp_path) == ["relay_pb2.pyi", "relay_pb2_grpc.py"]


def test_stubs_import_as_a_package_and_carry_the_service() -> None:
    grpc_module = (Path(generate.HERE) / "relay_pb2_grpc.py").read_text()
    assert "from controller.relay import relay_pb2" in grpc_module
    service = relay_pb2.DESCRIPTOR.services_by_name["Relay"]
    assert [m.name for m in service.methods] == ["Register", "Renew", "Push", "Pull"]
    assert relay_pb2.DESCRIPTOR.name == "controller/relay/relay.proto"
    typed = (Path(generate.HERE) / "relay_pb2_grpc.pyi").read_text()
    assert "Push: grpc.StreamStreamMultiCallable[relay_pb2.InputDelta, relay_pb2.PushAck]" in typed
