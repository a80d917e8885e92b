"""An agent applies Istio kinds only, whatever a server sends it (a relay that pushes a
Secret, a ClusterRole or a deletion of one is NACKed for those objects)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc

from controller.agent.streams import AppliedVersion, PullLoop
from controller.backends.directory import DirectoryBackend
from controller.relay import credentials, relay_pb2, wire
from gitops.objects import OWNER_LABELS, ObjectId
from tests.support.pki import relay_server
from tests.support.runtime import wait_until

VS = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": dict(OWNER_LABELS)},
    "spec": {"hosts": ["reviews"]},
}
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "stolen", "namespace": "bookinfo", "labels": dict(OWNER_LABELS)},
    "data": {"token": "c2VjcmV0"},
}
ROLE = ObjectId("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "admin")


def test_an_agent_refuses_to_apply_or_delete_anything_but_istio_kinds(tmp_path: Path) -> None:
    replies: list[relay_pb2.PullRequest] = []
    got_reply = threading.Event()

    def hostile_pull(
        cluster: str, requests: Iterator[relay_pb2.PullRequest], context: grpc.ServicerContext
    ) -> Iterator[relay_pb2.OutputDelta]:
        next(requests)  # the agent's hello
        patch = next(wire.patches([VS, SECRET], [ROLE]))
        yield relay_pb2.OutputDelta(version="g:1", nonce="n1", full=False, patch=patch)
        for request in requests:
            if request.response_nonce:
                replies.append(request)
                got_reply.set()

    root = tmp_path / "cluster"
    root.mkdir()
    backend = DirectoryBackend("cluster1", root, tmp_path / "state")
    stop = threading.Event()
    with relay_server(None, insecure=True, pull=hostile_pull) as running:
        channel = credentials.plaintext_channel(running.relay)
        loop = PullLoop(
            "cluster1", backend, lambda: channel, stop, AppliedVersion(tmp_path / "v.json")
        )
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        try:
            wait_until(got_reply.is_set, what="the agent's reply")
        finally:
            stop.set()
            loop.close()
            channel.close()
            thread.join(timeout=10)
            backend.close()
    (reply,) = replies
    refused = {str(wire.object_id(e.id)): e.message for e in reply.errors}
    # A NACK naming both refused objects; the VirtualService was applied.
    assert set(refused) == {"Secret bookinfo/stolen", "ClusterRole admin"}
    assert all("not an Istio kind" in m for m in refused.values())
    written = sorted(p.name for p in root.rglob("*.yaml"))
    assert written == ["VirtualService.reviews.yaml"]
    assert reply.version == ""  # not recorded as applied
