"""Repository layout (`gitops.layout`) on hand-built trees: links followed inside the
repository and refused otherwise, unsafe and hidden paths, the size cap, `helm/`, and the
glob rules of `gitops.yaml`."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from gitops import layout
from gitops.diagnostics import Diagnostic, Source
from gitops.reasons import Reason
from gitops.tree import MAX_FILE_BYTES, Entry, Link, Other, Oversize, Tree

A = b"kind: A\n"
B = b"kind: B\n"


def split(
    entries: Mapping[str, Entry], include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> layout.RepoFiles:
    return layout.split(Tree(dict(entries)), include, exclude)


def problems(files: layout.RepoFiles) -> set[tuple[str, Reason]]:
    """(file, reason) of every diagnostic; each must name a file."""
    out = set()
    for d in files.diagnostics:
        assert d.source is not None and d.source.file, d
        out.add((d.source.file, d.reason))
    return out


# -- links inside the repository --------------------------------------------------------


def test_link_to_a_file_inside_is_read_under_the_link_name_too() -> None:
    files = split({"a.yaml": A, "mesh/l.yaml": Link("../a.yaml"), "mesh/m.yml": Link("l.yaml")})
    assert files.config == {"a.yaml": A, "mesh/l.yaml": A, "mesh/m.yml": A}
    assert files.diagnostics == ()
    assert files.unreadable == frozenset()


def test_link_to_a_directory_inside_shows_its_files_under_the_link_path() -> None:
    entries: dict[str, Entry] = {
        "shared/a.yaml": A,
        "shared/deep/b.yml": B,
        "shared/README.md": Other(),
        "shared/rel.yaml": Link("a.yaml"),
        "env/prod/common": Link("../../shared"),
    }
    files = split(entries)
    assert files.config == {
        "shared/a.yaml": A,
        "shared/deep/b.yml": B,
        "shared/rel.yaml": A,
        "env/prod/common/a.yaml": A,
        "env/prod/common/deep/b.yml": B,
        # a link inside the linked folder resolves from where it physically is
        "env/prod/common/rel.yaml": A,
    }
    assert files.diagnostics == ()


def test_links_are_resolved_through_linked_directories_and_chains() -> None:
    entries: dict[str, Entry] = {
        "real/a.yaml": A,
        "alias": Link("real"),
        "x.yaml": Link("alias/a.yaml"),
        "y.yaml": Link("x.yaml"),
        "z.yaml": Link("./alias/../real/a.yaml"),
    }
    files = split(entries)
    assert files.config == {
        "real/a.yaml": A,
        "alias/a.yaml": A,
        "x.yaml": A,
        "y.yaml": A,
        "z.yaml": A,
    }
    assert files.diagnostics == ()


def test_a_chain_of_40_links_is_followed_and_41_is_a_loop() -> None:
    def chain(length: int) -> dict[str, Entry]:
        entries: dict[str, Entry] = {"target.yaml": A}
        for i in range(length):
            entries[f"l{i}.yaml"] = Link("target.yaml" if i == length - 1 else f"l{i + 1}.yaml")
        return entries

    assert layout.MAX_LINK_HOPS == 40
    assert split(chain(40)).config["l0.yaml"] == A
    files = split(chain(41))
    assert "l0.yaml" not in files.config
    assert ("l0.yaml", Reason.SymlinkLoop) in problems(files)
    assert files.config["l1.yaml"] == A  # 40 links from there


# -- links that leave ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "refused"),
    [
        ({"x.yaml": Link("../x.yaml")}, {"x.yaml"}),
        ({"x.yaml": Link("../../etc/passwd")}, {"x.yaml"}),
        ({"x.yaml": Link("/etc/passwd")}, {"x.yaml"}),
        ({"mesh/x.yaml": Link("sub/../../../x.yaml")}, {"mesh/x.yaml"}),
        ({"x.yaml": Link("..")}, {"x.yaml"}),
        ({"outside": Link("../outside")}, {"outside"}),  # a folder link, any name
        ({"abs": Link("/etc")}, {"abs"}),
        (
            {"x.yaml": Link("a.yaml"), "a.yaml": Link("b.yaml"), "b.yaml": Link("../out.yaml")},
            {"x.yaml", "a.yaml", "b.yaml"},
        ),
        (
            {"x.yaml": Link("d/up/out.yaml"), "d/up": Link("../..")},
            {"x.yaml", "d/up"},
        ),
        (
            {"real/in.yaml": Link("../../etc/passwd"), "alias": Link("real")},
            {"real/in.yaml", "alias/in.yaml"},
        ),
    ],
    ids=[
        "dotdot",
        "dotdot-deep",
        "absolute",
        "dotdot-after-subdir",
        "parent-folder",
        "folder-link",
        "absolute-folder",
        "chain",
        "via-linked-folder",
        "inside-linked-folder",
    ],
)
def test_links_leaving_the_repository_are_refused(
    entries: dict[str, Entry], refused: set[str]
) -> None:
    files = split({**entries, "ok.yaml": A})
    assert files.config == {"ok.yaml": A}
    assert problems(files) == {(path, Reason.SymlinkEscapesRepo) for path in refused}
    assert files.unreadable == {p for p in refused if p.endswith(".yaml")}
    for d in files.diagnostics:
        assert d.severity.value == "error"
        assert "->" in d.message


# -- loops, dangling links, non-YAML targets ---------------------------------------------


@pytest.mark.parametrize(
    ("entries", "looping"),
    [
        ({"a.yaml": Link("b.yaml"), "b.yaml": Link("a.yaml")}, {"a.yaml", "b.yaml"}),
        ({"self.yaml": Link("self.yaml")}, {"self.yaml"}),
        ({"a": Link("b"), "b": Link("a")}, {"a", "b"}),
        ({"mesh/up": Link(".."), "mesh/a.yaml": A}, {"mesh/up"}),
        ({"mesh/here": Link("."), "mesh/a.yaml": A}, {"mesh/here"}),
        ({"mesh/deep/top": Link("../.."), "mesh/a.yaml": A}, {"mesh/deep/top"}),
        ({"mesh/again": Link("../mesh"), "mesh/a.yaml": A}, {"mesh/again"}),
    ],
    ids=["files", "self", "folders", "parent", "dot", "grandparent", "own-folder-by-name"],
)
def test_link_loops_are_refused(entries: dict[str, Entry], looping: set[str]) -> None:
    files = split(entries)
    assert problems(files) == {(path, Reason.SymlinkLoop) for path in looping}
    assert not set(files.config) & looping
    assert files.config == {k: v for k, v in entries.items() if isinstance(v, bytes)}


def test_dangling_links_are_reported_only_for_yaml_names() -> None:
    entries: dict[str, Entry] = {
        "gone.yaml": Link("missing.yaml"),
        "gone.yml": Link("missing/dir/x.yaml"),
        "through-file.yaml": Link("a.yaml/b.yaml"),
        "a.yaml": A,
        "gone-folder": Link("missing"),
        "notes.md": Link("missing.md"),
    }
    files = split(entries)
    assert problems(files) == {
        ("gone.yaml", Reason.SymlinkBroken),
        ("gone.yml", Reason.SymlinkBroken),
        ("through-file.yaml", Reason.SymlinkBroken),
    }
    assert files.config == {"a.yaml": A}
    assert files.unreadable == {"gone.yaml", "gone.yml", "through-file.yaml"}


def test_yaml_named_link_to_a_non_yaml_file_is_refused() -> None:
    entries: dict[str, Entry] = {
        "README.md": Other(),
        "x.yaml": Link("README.md"),
        "y.yaml": Link("z.yaml"),
        "z.yaml": Link("README.md"),  # through a chain: what counts is the final name
        "docs": Link("a.yaml"),  # a non-YAML name pointing at YAML: simply not config
        "a.yaml": A,
    }
    files = split(entries)
    assert problems(files) == {
        ("x.yaml", Reason.SymlinkTargetNotYaml),
        ("y.yaml", Reason.SymlinkTargetNotYaml),
        ("z.yaml", Reason.SymlinkTargetNotYaml),
    }
    message = next(d.message for d in files.diagnostics if d.source == Source("x.yaml"))
    assert "README.md" in message
    assert files.config == {"a.yaml": A}


def test_yaml_link_to_an_oversized_file_is_too_large_under_both_names() -> None:
    files = split({"big.yaml": Oversize(MAX_FILE_BYTES + 1), "l.yaml": Link("big.yaml")})
    assert problems(files) == {("big.yaml", Reason.FileTooLarge), ("l.yaml", Reason.FileTooLarge)}
    assert files.unreadable == {"big.yaml", "l.yaml"}


# -- unsafe, hidden and oversized paths -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../a.yaml",
        "mesh/../../a.yaml",
        "/etc/a.yaml",
        "C:/a.yaml",
        "mesh//a.yaml",
        "./a.yaml",
        "mesh/./a.yaml",
        "mesh/a.yaml/",
        "",
        "mesh\\a.yaml",
        "mesh/a\x00.yaml",
    ],
)
def test_unsafe_paths_are_refused(path: str) -> None:
    files = split({path: A, "ok.yaml": B})
    assert files.config == {"ok.yaml": B}
    [d] = files.diagnostics
    assert d.reason is Reason.UnsafePath and d.source == Source(path)
    assert files.unreadable == ({path} if path.endswith(".yaml") else set())
    assert layout.unsafe_path_problem(path) is not None
    assert layout.unsafe_path_problem("ok.yaml") is None


def test_hidden_files_and_folders_are_never_read_or_reported() -> None:
    entries: dict[str, Entry] = {
        ".gitlab-ci.yml": A,
        ".github/workflows/ci.yaml": A,
        "mesh/.draft.yaml": A,
        "mesh/.cache/x.yaml": A,
        ".escape.yaml": Link("../../etc/passwd"),
        ".big.yaml": Oversize(MAX_FILE_BYTES * 2),
        "mesh/a.yaml": B,
    }
    files = split(entries)
    assert files.config == {"mesh/a.yaml": B}
    assert files.diagnostics == ()
    assert files.unreadable == frozenset()


def test_link_into_a_hidden_folder_does_not_read_it() -> None:
    files = split({".secret/creds.yaml": A, "x.yaml": Link(".secret/creds.yaml")})
    assert files.config == {}
    assert [d.source for d in files.diagnostics] == [Source("x.yaml")]


def test_oversized_file_is_refused_and_listed_as_unreadable() -> None:
    size = 6 * 1024 * 1024
    files = split({"big.yaml": Oversize(size), "ok.yaml": A})
    assert files.config == {"ok.yaml": A}
    [d] = files.diagnostics
    assert (d.reason, d.source) == (Reason.FileTooLarge, Source("big.yaml"))
    assert f"{size:,}" in d.message and f"{MAX_FILE_BYTES:,}" in d.message
    assert files.unreadable == {"big.yaml"}


def test_non_yaml_files_and_gitops_yaml_are_not_config() -> None:
    files = split({"README.md": Other(), "gitops.yaml": b"paths: [x]\n", "x.yaml": A})
    assert files.config == {"x.yaml": A}
    assert files.helm == {}


# -- helm/ and narrowing ------------------------------------------------------------------


def test_helm_is_always_read_whatever_paths_and_exclude_say() -> None:
    entries: dict[str, Entry] = {
        "helm/mgmt-plane.yaml": A,
        "helm/data-plane/east.yaml": B,
        "mesh/a.yaml": A,
        "other/b.yaml": B,
    }
    files = split(entries, include=("mesh",), exclude=("helm", "helm/**", "**"))
    assert files.helm == {"helm/mgmt-plane.yaml": A, "helm/data-plane/east.yaml": B}
    assert files.config == {}
    files = split(entries, include=("mesh",))
    assert files.config == {"mesh/a.yaml": A}
    assert set(files.helm) == {"helm/mgmt-plane.yaml", "helm/data-plane/east.yaml"}


def test_excluded_oversized_files_are_not_reported() -> None:
    entries: dict[str, Entry] = {"vendor/big.yaml": Oversize(MAX_FILE_BYTES + 1), "a.yaml": A}
    files = split(entries, exclude=("vendor",))
    assert files.config == {"a.yaml": A}
    assert files.diagnostics == ()
    files = split(entries, include=("a.yaml",))
    assert files.diagnostics == ()


def test_a_linked_file_outside_the_included_paths_is_read_under_its_link_name() -> None:
    entries: dict[str, Entry] = {"shared/a.yaml": A, "prod/a.yaml": Link("../shared/a.yaml")}
    assert split(entries, include=("prod",)).config == {"prod/a.yaml": A}


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.yaml", "a.yaml", True),
        ("*.yaml", "mesh/a.yaml", False),  # `*` does not cross '/'
        ("mesh/*.yaml", "mesh/a.yaml", True),
        ("mesh/*.yaml", "mesh/deep/a.yaml", False),
        ("mesh/**", "mesh/deep/er/a.yaml", True),  # `**` does
        ("mesh/**.yaml", "mesh/deep/a.yaml", True),
        ("**/a.yaml", "a.yaml", True),
        ("**/a.yaml", "x/y/a.yaml", True),
        ("**/a.yaml", "x/ba.yaml", False),
        ("mesh/**/rt.yaml", "mesh/rt.yaml", True),
        ("mesh/**/rt.yaml", "mesh/x/y/rt.yaml", True),
        ("mesh", "mesh/a.yaml", True),  # a folder includes everything under it
        ("mesh", "mesh/deep/a.yaml", True),
        ("mesh/", "mesh/deep/a.yaml", True),
        ("mesh", "meshes/a.yaml", False),
        ("mesh", "other/mesh/a.yaml", False),
        ("?.yaml", "a.yaml", True),
        ("?.yaml", "ab.yaml", False),
        ("m?sh/a.yaml", "m/sh/a.yaml", False),  # `?` does not match '/'
        ("a+b.yaml", "a+b.yaml", True),  # regex characters are literal
        ("a+b.yaml", "aab.yaml", False),
        ("(x)|y.yaml", "y.yaml", False),
        ("a.yaml", "a.yaml", True),
        ("a.yaml", "a.yaml.bak/b.yaml", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert layout.matches(path, (pattern,)) is expected
    files = split({path: A}, include=(pattern,))
    assert (path in files.config) is expected
    files = split({path: A}, exclude=(pattern,))
    assert (path in files.config) is not expected


def test_exclude_wins_over_paths() -> None:
    entries: dict[str, Entry] = {"mesh/a.yaml": A, "mesh/old/b.yaml": B, "x.yaml": A}
    files = split(entries, include=("mesh/**",), exclude=("mesh/old",))
    assert files.config == {"mesh/a.yaml": A}


@pytest.mark.parametrize(
    ("glob", "problem"),
    [
        ("/etc", "absolute"),
        ("/", "absolute"),
        ("..", "leaves"),
        ("../other", "leaves"),
        ("mesh/../../x", "leaves"),
        ("", "not a glob"),
        ("   ", "not a glob"),
        (5, "not a glob"),
        (None, "not a glob"),
    ],
)
def test_glob_problem_refuses_absolute_and_climbing_globs(glob: object, problem: str) -> None:
    found = layout.glob_problem(glob)
    assert found is not None and problem in found


@pytest.mark.parametrize("glob", ["mesh", "mesh/**", "**/*.yaml", "a..b/x", "..x", "./mesh"])
def test_glob_problem_accepts_relative_globs(glob: str) -> None:
    assert layout.glob_problem(glob) is None


# -- expand and settings_bytes -------------------------------------------------------------


def test_expand_maps_logical_paths_and_collects_diagnostics() -> None:
    diagnostics: list[Diagnostic] = []
    expanded = layout.expand(
        Tree({"d/a.yaml": A, "e": Link("d"), "bad.yaml": Link("/x"), ".h.yaml": A}), diagnostics
    )
    assert expanded == {"d/a.yaml": A, "e/a.yaml": A}
    assert [(d.reason, d.source) for d in diagnostics] == [
        (Reason.SymlinkEscapesRepo, Source("bad.yaml"))
    ]


@pytest.mark.parametrize(
    ("entries", "expected", "reason"),
    [
        ({"gitops.yaml": b"paths: [a]\n"}, b"paths: [a]\n", None),
        (
            {"gitops.yaml": Link("conf/g.yaml"), "conf/g.yaml": b"paths: [b]\n"},
            b"paths: [b]\n",
            None,
        ),
        ({}, None, None),
        ({"gitops.yaml": Link("../g.yaml")}, None, Reason.SymlinkEscapesRepo),
        ({"gitops.yaml": Link("missing.yaml")}, None, Reason.SymlinkBroken),
        ({"gitops.yaml": Link("README"), "README": Other()}, None, Reason.SymlinkTargetNotYaml),
        ({"gitops.yaml": Oversize(6 << 20)}, None, Reason.FileTooLarge),
        ({"mesh/gitops.yaml": b"paths: [a]\n"}, None, None),  # only the root one counts
    ],
)
def test_settings_entry(
    entries: dict[str, Entry], expected: bytes | None, reason: Reason | None
) -> None:
    data, problem = layout.settings_entry(Tree(entries))
    assert data == expected
    assert (problem.reason if problem else None) is reason
