"""Layering Helm-style values: later layers override earlier ones, `null` removes.

Used twice, with one set of rules:
- `gitops install render --values A --values B` merges the files in order
  (`merge_all`), before validation;
- the install renderer lays `deploymentOverrides`/`serviceOverrides` over the Deployment and
  Service it rendered (`overlay`).

The rules are Helm's:
- a mapping over a mapping merges key by key, recursively: keys of the override replace or
  add to the base's, keys it does not name are kept;
- anything else in the override (scalar, list, or a mapping over a non-mapping) replaces the
  base's value whole. Lists are never merged item by item;
- a `null` in the override removes the key. While layers are being stacked the null is kept
  as a marker (a "tombstone"), so it also removes the key from the layers under it that
  are applied later: a null in `deploymentOverrides` removes a field from the rendered
  template even when it arrives through a second values file. `prune` applies the markers
  at the end. Helm does the same: `-f` files are merged with nulls kept, and the nulls
  delete keys when the result is laid over the chart's defaults.

Inputs are never modified; results share no containers with them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`; nulls in `override` stay as removal markers."""
    out = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = merge(below, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_all(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several values files, in order (later files win); markers kept."""
    out: dict[str, Any] = {}
    for layer in layers:
        out = merge(out, layer)
    return out


def prune(value: Any) -> Any:
    """Apply removal markers: drop every mapping key whose value is null, at any depth."""
    if isinstance(value, Mapping):
        return {k: prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def overlay(template: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """A rendered object with user overrides laid over it; no nulls remain."""
    merged = merge(template, overrides or {})
    pruned: dict[str, Any] = prune(merged)
    return pruned
