"""Helm-style merging (`gitops.helm.merge`): maps merge recursively, lists replace whole,
null removes, later layers win, and inputs are never modified."""

from __future__ import annotations

import copy
from typing import Any

from gitops.helm import merge

TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "server", "labels": {"app": "server", "tier": "control"}},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [{"name": "server", "image": "a:1"}],
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "X"}},
            }
        },
    },
}


def test_map_keys_replace_and_add_recursively() -> None:
    out = merge.overlay(
        TEMPLATE,
        {"metadata": {"labels": {"tier": "edge", "team": "mesh"}}, "spec": {"replicas": 3}},
    )
    assert out["metadata"] == {
        "name": "server",
        "labels": {"app": "server", "tier": "edge", "team": "mesh"},
    }
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["template"] == TEMPLATE["spec"]["template"]  # untouched siblings


def test_lists_replace_whole() -> None:
    out = merge.overlay(
        TEMPLATE, {"spec": {"template": {"spec": {"containers": [{"name": "other"}]}}}}
    )
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "other"}]


def test_null_removes_a_key_at_any_depth() -> None:
    out = merge.overlay(
        TEMPLATE,
        {
            "metadata": {"labels": {"tier": None}},
            "spec": {"template": {"spec": {"securityContext": {"seccompProfile": None}}}},
        },
    )
    assert out["metadata"]["labels"] == {"app": "server"}
    assert out["spec"]["template"]["spec"]["securityContext"] == {"runAsNonRoot": True}


def test_null_for_a_key_the_template_lacks_leaves_no_null_behind() -> None:
    out = merge.overlay(TEMPLATE, {"spec": {"strategy": None, "paused": None}})
    assert "strategy" not in out["spec"] and "paused" not in out["spec"]


def test_a_mapping_over_a_scalar_and_a_scalar_over_a_mapping_replace() -> None:
    assert merge.merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert merge.merge({"a": {"b": 2}}, {"a": "x"}) == {"a": "x"}


def test_later_values_files_win_in_order() -> None:
    first = {"glooMgmtServer": {"replicas": 1, "serviceType": "ClusterIP"}, "tags": ["a", "b"]}
    second = {"glooMgmtServer": {"replicas": 2}, "tags": ["c"]}
    third = {"glooMgmtServer": {"replicas": 3}}
    assert merge.merge_all([first, second, third]) == {
        "glooMgmtServer": {"replicas": 3, "serviceType": "ClusterIP"},
        "tags": ["c"],
    }
    assert merge.merge_all([third, second, first])["glooMgmtServer"]["replicas"] == 1


def test_a_null_in_a_later_file_removes_the_key_from_every_layer_below() -> None:
    # Helm keeps nulls while merging -f files; they delete keys when laid over the chart.
    first = {"glooMgmtServer": {"deploymentOverrides": {"spec": {"replicas": 5}}, "x": 1}}
    second = {"glooMgmtServer": {"deploymentOverrides": {"spec": {"replicas": None}}, "x": None}}
    merged = merge.merge_all([first, second])
    assert merged == {
        "glooMgmtServer": {"deploymentOverrides": {"spec": {"replicas": None}}, "x": None}
    }
    assert merge.prune(merged) == {"glooMgmtServer": {"deploymentOverrides": {"spec": {}}}}
    overrides = merged["glooMgmtServer"]["deploymentOverrides"]
    assert "replicas" not in merge.overlay(TEMPLATE, overrides)["spec"]


def test_inputs_are_never_modified_and_results_share_nothing() -> None:
    base, override = copy.deepcopy(TEMPLATE), {"metadata": {"labels": {"tier": None}}}
    out = merge.overlay(base, override)
    assert base == TEMPLATE and override == {"metadata": {"labels": {"tier": None}}}
    out["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert len(base["spec"]["template"]["spec"]["containers"]) == 1
    assert merge.overlay(TEMPLATE, None) == TEMPLATE
