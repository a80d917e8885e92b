"""Who is calling: the cluster named by the caller's verified client certificate.

Called by `controller.relay.service` on every Push, Pull and Renew. The only source of a
caller's identity is the certificate the TLS handshake verified (DESIGN.md section 5):
never metadata, never a field of a message. The relay listener requires and verifies client
certificates against the relay root CA (`controller.relay.credentials`), so a certificate in
the auth context has been verified; the registration listener asks for none, so calls there
carry no identity and `peer_cluster` returns None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import grpc

from controller import pki

#: Keys gRPC puts in `ServicerContext.auth_context()` for a TLS peer with a certificate.
TRANSPORT_KEY = "transport_security_type"
PEM_KEY = "x509_pem_cert"


def auth_properties(context: grpc.ServicerContext) -> Mapping[str, Sequence[bytes]]:
    """The auth context as gRPC returns it: each property maps to a list of values.

    (grpc-stubs types the values as bytes; the runtime gives lists.)
    """
    return cast(Mapping[str, Sequence[bytes]], context.auth_context())


def peer_cluster(context: grpc.ServicerContext) -> str | None:
    """The cluster of the verified client certificate on this call, or None if there is none.

    The cluster is the certificate's single DNS SAN (`controller.pki.cluster_of`): what
    `Registrar` issues. A certificate naming several DNS names, or a name that breaks the
    cluster naming rules, identifies nobody.
    """
    properties = auth_properties(context)
    if [bytes(v) for v in properties.get(TRANSPORT_KEY, ())] != [b"ssl"]:
        return None
    pems = properties.get(PEM_KEY, ())
    if len(pems) != 1:
        return None
    try:
        return pki.cluster_of(bytes(pems[0]))
    except pki.PkiError:
        return None
