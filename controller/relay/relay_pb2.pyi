# mypy: disable-error-code="type-arg"
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GVK(_message.Message):
    __slots__ = ("group", "version", "kind")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    group: str
    version: str
    kind: str
    def __init__(self, group: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class ResourceId(_message.Message):
    __slots__ = ("gvk", "namespace", "name")
    GVK_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    gvk: GVK
    namespace: str
    name: str
    def __init__(self, gvk: _Optional[_Union[GVK, _Mapping]] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("id", "json")
    ID_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    id: ResourceId
    json: bytes
    def __init__(self, id: _Optional[_Union[ResourceId, _Mapping]] = ..., json: _Optional[bytes] = ...) -> None: ...

class ResourcePatch(_message.Message):
    __slots__ = ("resources", "removed")
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    removed: _containers.RepeatedCompositeFieldContainer[ResourceId]
    def __init__(self, resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., removed: _Optional[_Iterable[_Union[ResourceId, _Mapping]]] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("cluster", "token", "csr_pem")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    token: str
    csr_pem: bytes
    def __init__(self, cluster: _Optional[str] = ..., token: _Optional[str] = ..., csr_pem: _Optional[bytes] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("cert_chain_pem", "ca_bundle_pem")
    CERT_CHAIN_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    cert_chain_pem: bytes
    ca_bundle_pem: bytes
    def __init__(self, cert_chain_pem: _Optional[bytes] = ..., ca_bundle_pem: _Optional[bytes] = ...) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("csr_pem",)
    CSR_PEM_FIELD_NUMBER: _ClassVar[int]
    csr_pem: bytes
    def __init__(self, csr_pem: _Optional[bytes] = ...) -> None: ...

class RenewResponse(_message.Message):
    __slots__ = ("cert_chain_pem", "ca_bundle_pem")
    CERT_CHAIN_PEM_FIELD_NUMBER: _ClassVar[int]
    CA_BUNDLE_PEM_FIELD_NUMBER: _ClassVar[int]
    cert_chain_pem: bytes
    ca_bundle_pem: bytes
    def __init__(self, cert_chain_pem: _Optional[bytes] = ..., ca_bundle_pem: _Optional[bytes] = ...) -> None: ...

class InputDelta(_message.Message):
    __slots__ = ("cluster", "nonce", "full", "more", "patch")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    nonce: str
    full: bool
    more: bool
    patch: ResourcePatch
    def __init__(self, cluster: _Optional[str] = ..., nonce: _Optional[str] = ..., full: _Optional[bool] = ..., more: _Optional[bool] = ..., patch: _Optional[_Union[ResourcePatch, _Mapping]] = ...) -> None: ...

class PushAck(_message.Message):
    __slots__ = ("nonce", "error", "watch")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    nonce: str
    error: str
    watch: _containers.RepeatedCompositeFieldContainer[GVK]
    def __init__(self, nonce: _Optional[str] = ..., error: _Optional[str] = ..., watch: _Optional[_Iterable[_Union[GVK, _Mapping]]] = ...) -> None: ...

class ObjectError(_message.Message):
    __slots__ = ("id", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: ResourceId
    message: str
    def __init__(self, id: _Optional[_Union[ResourceId, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class DriftItem(_message.Message):
    __slots__ = ("id", "change")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    id: ResourceId
    change: str
    def __init__(self, id: _Optional[_Union[ResourceId, _Mapping]] = ..., change: _Optional[str] = ...) -> None: ...

class PullRequest(_message.Message):
    __slots__ = ("cluster", "version", "response_nonce", "errors", "drift")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_NONCE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    version: str
    response_nonce: str
    errors: _containers.RepeatedCompositeFieldContainer[ObjectError]
    drift: _containers.RepeatedCompositeFieldContainer[DriftItem]
    def __init__(self, cluster: _Optional[str] = ..., version: _Optional[str] = ..., response_nonce: _Optional[str] = ..., errors: _Optional[_Iterable[_Union[ObjectError, _Mapping]]] = ..., drift: _Optional[_Iterable[_Union[DriftItem, _Mapping]]] = ...) -> None: ...

class OutputDelta(_message.Message):
    __slots__ = ("version", "nonce", "full", "more", "patch")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    version: str
    nonce: str
    full: bool
    more: bool
    patch: ResourcePatch
    def __init__(self, version: _Optional[str] = ..., nonce: _Optional[str] = ..., full: _Optional[bool] = ..., more: _Optional[bool] = ..., patch: _Optional[_Union[ResourcePatch, _Mapping]] = ...) -> None: ...
