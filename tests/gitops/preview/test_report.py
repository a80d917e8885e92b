"""Markdown parts, the JSON report and the one-line status description."""

from __future__ import annotations

import json

from gitops.preview import MAX_PART_CHARS, diff_clusters, from_json, markdown, one_line, to_json
from gitops.preview.diff import ClusterDiff, Preview
from tests.gitops.preview.objects import PRODUCTPAGE, REVIEWS, authz, peer_auth, vs


def _preview() -> Preview:
    return diff_clusters(
        {
            "cluster1": [vs(), peer_auth("PERMISSIVE"), authz(PRODUCTPAGE, REVIEWS)],
            "cluster2": [vs()],
        },
        {
            "cluster1": [vs(weights=(50, 50)), peer_auth("STRICT"), authz(PRODUCTPAGE)],
            "cluster2": [vs()],
        },
    )


def _big_preview(objects: int = 400) -> Preview:
    def policy(i: int, principals: int) -> dict[str, object]:
        obj = authz(*(f"cluster.local/ns/n{i}/sa/caller-{j}" for j in range(principals)))
        obj["metadata"] = {"name": f"policy-{i:04}", "namespace": "bookinfo"}
        return obj

    base = [policy(i, 0) for i in range(objects)]
    head = [policy(i, 12) for i in range(objects)]
    return diff_clusters({"cluster1": base}, {"cluster1": head})


def test_one_line() -> None:
    assert one_line(_preview()) == "cluster1: +0 ~3 -0; cluster2: no change"


def test_one_line_stays_under_140_with_many_clusters() -> None:
    many = Preview(tuple(ClusterDiff(f"cluster-with-a-long-name-{i:03}") for i in range(50)))
    line = one_line(many)
    assert len(line) <= 140
    assert line == "0 of 50 clusters changed: +0 ~0 -0"


def test_markdown_has_summary_bullets_and_diffs() -> None:
    (text,) = markdown(_preview())
    assert "### cluster1: +0 ~3 -0" in text
    assert "### cluster2: no change" in text
    assert "- mTLS mode PeerAuthentication bookinfo/default: PERMISSIVE -> STRICT" in text
    assert f"- {REVIEWS} lost access to bookinfo/app=ratings" in text
    assert "```diff\n--- base\n+++ head" in text


def test_long_diffs_are_collapsed() -> None:
    (text,) = markdown(_big_preview(objects=1))
    assert "<details><summary>~ security.istio.io AuthorizationPolicy bookinfo/policy-0000" in text


def test_big_report_splits_under_the_limit_between_code_blocks() -> None:
    parts = markdown(_big_preview())
    assert len(parts) > 1
    for i, part in enumerate(parts, 1):
        assert len(part) < MAX_PART_CHARS
        # Every fence opened in a part is closed in it.
        assert part.count("```") % 2 == 0
        assert part.rstrip().endswith(f"_Part {i} of {len(parts)}._")
    joined = "".join(parts)
    assert all(f"policy-{i:04}" in joined for i in range(400))


def test_a_single_huge_diff_is_cut_inside_its_block() -> None:
    preview = diff_clusters({"c": [authz()]}, {"c": [authz(*(f"sa-{i}" for i in range(5000)))]})
    parts = markdown(preview, limit=10_000)
    assert all(len(p) < 10_000 for p in parts)
    assert any("more lines (see the JSON report)" in p for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)


def test_json_round_trip() -> None:
    preview = _preview()
    data = json.loads(json.dumps(to_json(preview)))
    assert data["summary"] == one_line(preview)
    assert data["clusters"][0]["counts"] == {"added": 0, "changed": 3, "removed": 0}
    assert from_json(data) == preview
