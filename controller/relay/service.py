"""The relay's gRPC servicer: establishes who is calling, then hands the call on.

`gitops serve` builds one `RelayService` and serves it on both listeners with
`controller.relay.credentials.start_server`. Register and Renew are answered here with the
`Registrar`; Push and Pull go to the stream handlers (the server's input store and output
publisher), which receive the caller's cluster and the request stream and never look at
identity themselves.

Identity (DESIGN.md section 5): on Push, Pull and Renew it is the cluster of the verified
client certificate (`identity.peer_cluster`), never metadata or a message field. A call
without one (the registration listener, or plaintext) is refused with UNAUTHENTICATED. Every
Push/Pull message carries `cluster`; a message naming another cluster than the certificate
ends the call with PERMISSION_DENIED naming both, so a confused or misconfigured agent cannot
feed one cluster's inputs into another's.

`insecure` (plaintext, demos; the caller logs a warning): there are no certificates, so the
claimed cluster is believed: the `x-cluster-id` metadata if the agent sends it, else the
first message's `cluster`. The identity checks are lazy: the handler starts at once (on
Push the server may speak first) and each request is checked as the handler reads it. Only
an insecure call without the metadata waits for the first message.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import grpc

from controller.relay import relay_pb2, relay_pb2_grpc
from controller.relay.identity import peer_cluster
from controller.relay.registration import Registrar, RegistrationRefused, check_cluster_name

PushHandler = Callable[
    [str, Iterator[relay_pb2.InputDelta], grpc.ServicerContext], Iterator[relay_pb2.PushAck]
]
PullHandler = Callable[
    [str, Iterator[relay_pb2.PullRequest], grpc.ServicerContext],
    Iterator[relay_pb2.OutputDelta],
]
#: Metadata naming the agent's cluster; believed in insecure mode only (Gloo agents send it).
CLUSTER_METADATA = "x-cluster-id"


class _Claims(Protocol):
    @property
    def cluster(self) -> str: ...


M = TypeVar("M", bound=_Claims)


class RelayService(relay_pb2_grpc.RelayServicer):
    """Register, Renew, Push and Pull of one management server."""

    def __init__(
        self,
        registrar: Registrar | None,
        push: PushHandler,
        pull: PullHandler,
        *,
        insecure: bool = False,
    ) -> None:
        #: None: this server issues no certificates (`disableCa`, or insecure).
        self._registrar = registrar
        self._push = push
        self._pull = pull
        self._insecure = insecure

    def _need_registrar(self, context: grpc.ServicerContext) -> Registrar:
        if self._registrar is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this server issues no certificates (glooMgmtServer.relay.disableCa or "
                "insecure): agents bring their own",
            )
        return self._registrar

    def Register(
        self, request: relay_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> relay_pb2.RegisterResponse:
        registrar = self._need_registrar(context)
        try:
            chain, root = registrar.register(request.cluster, request.token, request.csr_pem)
        except RegistrationRefused as exc:
            context.abort(exc.code, exc.reason)
        return relay_pb2.RegisterResponse(cert_chain_pem=chain, ca_bundle_pem=root)

    def Renew(
        self, request: relay_pb2.RenewRequest, context: grpc.ServicerContext
    ) -> relay_pb2.RenewResponse:
        # Identity from the certificate only, also in insecure mode: a claimed name cannot
        # be traded for a certificate.
        cluster = peer_cluster(context)
        if cluster is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, _no_certificate("Renew"))
        registrar = self._need_registrar(context)
        try:
            chain, root = registrar.renew(cluster, request.csr_pem)
        except RegistrationRefused as exc:
            context.abort(exc.code, exc.reason)
        return relay_pb2.RenewResponse(cert_chain_pem=chain, ca_bundle_pem=root)

    def Push(
        self, request_iterator: Iterator[relay_pb2.InputDelta], context: grpc.ServicerContext
    ) -> Iterator[relay_pb2.PushAck]:
        identified = self._identify("Push", request_iterator, context)
        if identified is not None:
            yield from self._push(*identified, context)

    def Pull(
        self, request_iterator: Iterator[relay_pb2.PullRequest], context: grpc.ServicerContext
    ) -> Iterator[relay_pb2.OutputDelta]:
        identified = self._identify("Pull", request_iterator, context)
        if identified is not None:
            yield from self._pull(*identified, context)

    def _identify(
        self, rpc: str, requests: Iterator[M], context: grpc.ServicerContext
    ) -> tuple[str, Iterator[M]] | None:
        """The caller's cluster and its requests, each checked to name that cluster; None if
        the (insecure) caller closed before saying who it is. Aborts the call if no
        identity."""
        if not self._insecure:
            cluster = peer_cluster(context)
            if cluster is None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, _no_certificate(rpc))
            return cluster, _checked(rpc, cluster, "the client certificate", requests, context)
        claimed = dict(context.invocation_metadata() or ()).get(CLUSTER_METADATA)
        source = f"the {CLUSTER_METADATA} metadata"
        if not isinstance(claimed, str) or not claimed:
            first = next(requests, None)
            if first is None:
                return None
            claimed, source = first.cluster, "its first message"
            requests = itertools.chain([first], requests)
        if not claimed:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"{rpc} names no cluster (insecure relay: set `cluster` on every message)",
            )
        if reason := check_cluster_name(claimed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, reason)
        return claimed, _checked(rpc, claimed, source, requests, context)


def _checked(
    rpc: str, cluster: str, source: str, requests: Iterator[M], context: grpc.ServicerContext
) -> Iterator[M]:
    """`requests`, ending the call with PERMISSION_DENIED at the first message claiming
    another cluster. (The abort raises out of the handler's `next()`; a handler reading in
    another thread must end the call when its reader fails.)"""
    for message in requests:
        if message.cluster != cluster:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{rpc} message claims cluster {message.cluster!r} but {source} "
                f"is for cluster {cluster!r}",
            )
        yield message


def _no_certificate(rpc: str) -> str:
    return (
        f"{rpc} needs the client certificate of a registered cluster: call the relay port "
        "(mutual TLS); the registration port serves Register only"
    )
