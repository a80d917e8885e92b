"""Naming rules: cluster names, Kubernetes-safe output names, virtual IPs.

Used by the loader (cluster names), the discovery parser (snapshot folders) and
every translator (output names, spec section 3.2 of gloo-semantics.md).
"""

from __future__ import annotations

import functools
import hashlib
import re

_CLUSTER_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

#: Replaced by '-' in SanitizeNameV2 (solo-io/k8s-utils).
_SANITIZE_REPLACE = str.maketrans({"*": "-", "/": "-", ".": "-", ":": "-", "_": "-", " ": "-"})
#: Dropped by SanitizeNameV2.
_SANITIZE_DROP = str.maketrans("", "", "[]\"'\n")


def cluster_name_problem(name: str) -> str | None:
    """Why `name` is not a valid cluster name, or None if it is.

    Rules (DESIGN.md section 5): lowercase alphanumerics and '-', starts with a
    letter, no '_', at most 63 characters. They make the name usable as a DNS
    label, a label value, a certificate SAN and a Redis key part.
    """
    if not name:
        return "cluster name is empty"
    if len(name) > 63:
        return f"cluster name {name!r} is {len(name)} characters long (at most 63)"
    if "_" in name:
        return f"cluster name {name!r} contains '_' (use '-')"
    if not name[0].isalpha() or not name[0].islower():
        return f"cluster name {name!r} must start with a lowercase letter"
    if not _CLUSTER_NAME.fullmatch(name):
        return (
            f"cluster name {name!r} may contain only lowercase letters, digits and '-', "
            "and must not end with '-'"
        )
    return None


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and _DNS_LABEL.fullmatch(name) is not None


def object_name_problem(name: str, namespace: str) -> tuple[str, str] | None:
    """(field, why) when Kubernetes would refuse this object name or namespace, else None.

    Names are DNS-1123 subdomains, namespaces DNS-1123 labels. Config names end up in
    output object names, directory-cluster file paths, Redis keys and report pages."""
    if not is_dns_label(namespace):
        return "metadata.namespace", (
            f"namespace {namespace!r} is not a DNS-1123 label: lowercase letters, digits "
            "and '-', starting and ending with a letter or digit, at most 63 characters"
        )
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(part) for part in name.split(".")):
        return "metadata.name", (
            f"name {name!r} is not a DNS-1123 subdomain: lowercase letters, digits, '-' "
            "and '.', starting and ending with a letter or digit"
        )
    return None


@functools.lru_cache(maxsize=1 << 16)
def sanitize(name: str) -> str:
    """Gloo's SanitizeNameV2: a Kubernetes object name from arbitrary parts.

    Replace `* / . : _ space` by '-', drop brackets, quotes and newlines; names
    over 63 characters keep their first 31 characters, then '-' and the md5 of
    the whole (sanitized) name, cut to 63. Lowercased.
    """
    out = name.translate(_SANITIZE_REPLACE).translate(_SANITIZE_DROP)
    if len(out) > 63:
        digest = hashlib.md5(out.encode(), usedforsecurity=False).hexdigest()
        out = f"{out[:31]}-{digest}"[:63]
    return out.replace(".", "-").lower()


def virtual_ip(*parts: str) -> str:
    """A stable address in 240.0.0.0/4 for a ServiceEntry, from Gloo 1.x's algorithm.

    FNV-1 32-bit over the concatenated parts, bytes little-endian, the first byte
    OR 0xF0 so the address always falls in the reserved class-E range.
    """
    h = 0x811C9DC5
    for byte in "".join(parts).encode():
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= byte
    b = h.to_bytes(4, "little")
    return f"{b[0] | 0xF0}.{b[1]}.{b[2]}.{b[3]}"
