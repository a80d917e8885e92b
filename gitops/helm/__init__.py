"""Typed Helm values: the schema, the cross-field rules, and Helm-style merging.

The management plane's and every data plane's values (`helm/` in the config repository, or
the files given to `gitops install render`) share one schema, `Values`: the Gloo Platform
chart's keys mesh-gitops understands plus its own `gitops.*` block (DESIGN.md section 10).

- `models` (with `fields` and `gitops_block`): the schema; `Values` is the root.
- `rules`: cross-field rules (`safeStartWindow` under safe mode, Redis threads vs. CPU, ...).
- `merge`: later files override earlier ones; maps merge, lists replace, null removes.
- `validation`: files in, typed values and diagnostics (with file and line) out. The loader
  and the install renderer call `validation.parse` and `validation.check`.

Pure, like all of `gitops`: no I/O.
"""

from gitops.helm.models import Values

__all__ = ["Values"]
