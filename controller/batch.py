"""Garbage-collector settings for batch work (render, validate, benchmarks).

Python's cyclic collector walks every live container on each full collection. A
render holds hundreds of thousands of parsed input records for its whole run, so
with default thresholds it spent 11.8 s of a 25.8 s translation re-walking them
(bench/translate.py, 100 clusters x 1,000 services). The objects we build are
almost all acyclic and freed by reference counting, so during a batch run we:

- raise the thresholds (fewer collections; each young collection stays small),
- freeze what has been built at each stage boundary (parsed inputs, the fleet-wide
  translation), moving it out of the collector's sight for the rest of the run, and
- switch the collector off once the fleet-wide translation is done: rendering and
  serialising clusters makes no reference cycles (`gc.collect()` after rendering every
  cluster of the benchmark fleets finds 0 objects; bench/translate.py prints the count on
  every run), so the collections it still made there - 2 to 5 s of a 20 s translation
  at 100 clusters x 1,000 services with isolation - found nothing to free. Anything
  cyclic would only be held until the run ends; the collector is back on at exit.

Used by the CLI and bench/ around `gitops.pipeline.run`; the long-running server
will not use it (frozen objects are never collected).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: gen0 allocations before a young collection, then young collections per older one.
BATCH_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def collector_tuned() -> Iterator[Callable[[str], None]]:
    """Tune the collector for one batch run; yields the stage callback that freezes."""
    previous = gc.get_threshold()
    gc.set_threshold(*BATCH_THRESHOLDS)

    def stage_done(stage: str) -> None:
        # Only fleet-wide stages build what lives to the end; a rendered cluster's
        # output has already been written and dropped.
        if not stage.startswith("rendered"):
            gc.freeze()
        if stage == "translated":
            gc.disable()

    try:
        yield stage_done
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*previous)
