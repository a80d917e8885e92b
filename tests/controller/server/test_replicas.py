"""A follower's copy of the leader's outputs: a delta from the version it held."""

from __future__ import annotations

from typing import Any

from controller.server.published import Outputs
from controller.server.replicas import adopt
from gitops.objects import ObjectId


def route(name: str, attempts: int) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "bookinfo"},
        "spec": {"http": [{"retries": {"attempts": attempts}}]},
    }


def test_a_new_version_carries_what_changed_since_the_one_the_follower_held() -> None:
    old = Outputs.loaded(4, [route("a", 3), route("b", 3), route("c", 3)])
    new = Outputs.loaded(6, [route("a", 6), route("b", 3), route("d", 3)])

    adopted = adopt(old, new)

    assert adopted.version == 6 and adopted.base == 4
    assert adopted.changed == (ObjectId.of(route("a", 6)), ObjectId.of(route("d", 3)))
    assert adopted.removed == (ObjectId.of(route("c", 3)),)
    assert adopted.encoded == new.encoded


def test_a_follower_that_held_nothing_takes_the_whole_set() -> None:
    new = Outputs.loaded(2, [route("a", 3)])

    adopted = adopt(Outputs(), new)

    assert adopted.base == 0 and adopted.version == 2
    assert dict(adopted.objects) == dict(new.objects)
