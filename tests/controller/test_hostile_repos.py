"""Hostile repositories end to end: a real folder and a real Git repository full of links
that leave, oversized files, YAML bombs and broken documents, checked by the real
`gitops validate` process. Every problem is one diagnostic line naming its file and reason,
the valid object is still accepted, the exit code is 1, and nothing prints a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitops.tree import MAX_FILE_BYTES
from tests.support.configs import REVIEWS_ROUTE_TABLE
from tests.support.git_servers import git_env, run_git

VALID = REVIEWS_ROUTE_TABLE
RATINGS = VALID.replace("name: reviews, namespace", "name: ratings, namespace", 1)
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
MISSING = """\
kind: RouteTable
metadata: {name: no-api-version, namespace: bookinfo-backends}
---
apiVersion: networking.gloo.solo.io/v2
metadata: {name: no-kind, namespace: bookinfo-backends}
---
apiVersion: networking.gloo.solo.io/v2
kind: RouteTable
metadata: {namespace: bookinfo-backends}
"""

#: (file, line, reason) of every problem the hostile repository holds; line 0 = whole file.
EXPECTED = {
    ("passwd.yaml", 0, "SymlinkEscapesRepo"),
    ("outside", 0, "SymlinkEscapesRepo"),
    ("chain.yaml", 0, "SymlinkEscapesRepo"),
    ("hops/one.yaml", 0, "SymlinkEscapesRepo"),
    ("hops/two.yaml", 0, "SymlinkEscapesRepo"),
    ("big.yaml", 0, "FileTooLarge"),
    ("bomb.yaml", 5, "YamlAliasBomb"),
    ("dup-key.yaml", 11, "DuplicateKey"),
    ("latin1.yaml", 3, "InvalidEncoding"),
    ("not-mapping.yaml", 1, "DocumentNotMapping"),
    ("missing.yaml", 1, "MissingApiVersion"),
    ("missing.yaml", 4, "MissingKind"),
    ("missing.yaml", 7, "MissingName"),
    ("copies/one.yaml", 1, "DuplicateObject"),
    ("copies/two.yaml", 1, "DuplicateObject"),
}
#: file[:line]: severity: [Kind ns/name: ]Reason: message
LINE = re.compile(
    r"^(?P<file>[^:\s]+)(?::(?P<line>\d+))?: (?P<severity>error|warning): "
    r"(?:(?P<obj>[A-Za-z]+ [\w.-]+(?:/[\w.-]+)?): )?(?P<reason>[A-Z][A-Za-z]+): (?P<message>.+)$"
)


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def build_hostile_repo(root: Path) -> None:
    """The repository under test, next to a folder `<root>/../outside` it must never read."""
    outside = root.parent / "outside"
    _write(
        outside / "secret.yaml", VALID.replace("name: reviews, namespace", "name: stolen, ns", 1)
    )
    _write(root / "mesh" / "reviews.yaml", VALID)
    _link(root / "passwd.yaml", "../../etc/passwd")
    _link(root / "outside", "../outside")  # a folder link that leaves
    _link(root / "chain.yaml", "hops/one.yaml")
    _link(root / "hops" / "one.yaml", "two.yaml")
    _link(root / "hops" / "two.yaml", "../../outside/secret.yaml")
    _write(root / "big.yaml", b"# " + b"x" * (6 * 1024 * 1024) + b"\n")
    _write(root / "bomb.yaml", BOMB)
    details = VALID.replace("name: reviews, namespace", "name: details, namespace", 1)
    _write(root / "dup-key.yaml", details + "  hosts: [evil.example.com]\n")
    _write(root / "latin1.yaml", b"a: 1\n\nb: caf\xe9\n")
    _write(root / "not-mapping.yaml", "- apiVersion: networking.gloo.solo.io/v2\n- kind: X\n")
    _write(root / "missing.yaml", MISSING)
    _write(root / "copies" / "one.yaml", RATINGS)
    _write(root / "copies" / "two.yaml", RATINGS)
    assert (root / "big.yaml").stat().st_size > MAX_FILE_BYTES


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def gitops(cwd: Path, *args: str) -> Run:
    """The real command, in its own process (as users and CI run it)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache"), **git_env()}
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


def problems_in_text(stdout: str) -> set[tuple[str, int, str]]:
    """Parse every diagnostic line; the last line is the summary."""
    *lines, summary = stdout.strip().splitlines()
    assert re.match(r"^\d+ resources: ", summary), summary
    out = set()
    for line in lines:
        match = LINE.match(line)
        assert match, f"not in the file:line: severity: Kind ns/name: reason: message form: {line}"
        assert match["severity"] == "error", line
        out.add((match["file"], int(match["line"] or 0), match["reason"]))
    assert len(out) == len(lines), "one line per problem"
    return out


def assert_hostile_outcome(cwd: Path, *args: str, revision: str | None) -> None:
    text = gitops(cwd, "validate", *args)
    assert text.code == 1, text.stderr
    assert problems_in_text(text.stdout) == EXPECTED
    assert text.stderr == ""

    result = gitops(cwd, "validate", *args, "--format", "json")
    assert result.code == 1
    report = result.json()
    assert report["failed"] is True
    assert report["revision"] == revision
    assert {(d["file"], d["line"], d["reason"]) for d in report["diagnostics"]} == EXPECTED
    accepted = [
        (r["kind"], r["namespace"], r["name"], r["file"])
        for r in report["reports"]
        if r["state"] == "ACCEPTED"
    ]
    assert accepted == [("RouteTable", "bookinfo-backends", "reviews", "mesh/reviews.yaml")]
    # Nothing outside the repository was read: its object would have a report.
    assert "stolen" not in result.stdout
    assert {r["name"] for r in report["reports"]} == {
        "reviews",
        "details",
        "ratings",
        "no-api-version",
    }


def test_hostile_directory_is_reported_file_by_file(tmp_path: Path) -> None:
    root = tmp_path / "work" / "repo"
    build_hostile_repo(root)
    assert_hostile_outcome(tmp_path, str(root), revision=None)


def test_hostile_git_repository_is_reported_at_a_ref(tmp_path: Path) -> None:
    root = tmp_path / "work" / "repo"
    build_hostile_repo(root)
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "hostile")
    run_git(root, "tag", "hostile")
    hostile = run_git(root, "rev-parse", "HEAD")
    assert run_git(root, "ls-files", "-s", "chain.yaml").startswith("120000")  # a real link
    # Clean everything up in a later commit, and leave an uncommitted broken file behind.
    for path in root.iterdir():
        if path.name not in (".git", "mesh"):
            run_git(root, "rm", "-rq", path.name)
    run_git(root, "commit", "-q", "-m", "clean")
    _write(root / "mesh" / "draft.yaml", "not: [closed\n")

    assert_hostile_outcome(tmp_path, str(root), "--ref", "hostile", revision=hostile)
    assert_hostile_outcome(tmp_path, str(root), "--ref", hostile[:10], revision=hostile)

    clean = gitops(tmp_path, "validate", str(root))  # HEAD: committed content only
    assert (clean.code, clean.stderr) == (0, ""), clean.stdout
    assert "1 accepted; 0 errors, 0 warnings" in clean.stdout


def test_nonexistent_path_is_a_usage_error(tmp_path: Path) -> None:
    result = gitops(tmp_path, "validate", str(tmp_path / "nowhere"))
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "nowhere" in result.stderr and "does not exist" in result.stderr


def test_unknown_ref_is_a_usage_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _write(root / "mesh" / "reviews.yaml", VALID)
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "one")
    result = gitops(tmp_path, "validate", str(root), "--ref", "no-such-branch")
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ref 'no-such-branch' not found")
    assert "main" in result.stderr  # the known branches are listed


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("int-tag.yaml", "a: 1\nb: !!int x\n"),
        ("bool-tag.yaml", "a: 1\nb: !!bool maybe\n"),
        ("set-tag.yaml", "a: 1\nb: !!set {x, y}\n"),
        ("binary-tag.yaml", 'a: 1\nb: !!binary "%%%"\n'),
        ("compact-keys.yaml", "? " * 40_000 + "x\n"),  # 40,000 levels: a C stack overflow
    ],
)
def test_yaml_that_crashes_the_parser_is_reported_not_fatal(
    tmp_path: Path, name: str, content: str
) -> None:
    root = tmp_path / "repo"
    _write(root / "mesh" / "reviews.yaml", VALID)
    _write(root / name, content)
    result = gitops(tmp_path, "validate", str(root))
    assert result.code == 1, f"exit {result.code}: {result.stderr[-300:]}"
    assert {(file, reason) for file, _, reason in problems_in_text(result.stdout)} == {
        (name, "YamlSyntaxError")
    }
