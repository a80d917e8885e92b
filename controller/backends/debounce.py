"""Run a handler once per key after its events have been quiet for a while.

The directory backend (`controller/backends/directory.py`) gets several filesystem events
per file write (a truncate, writes, a close; both ends of a rename) and must read the file
only once it is whole. One `Debouncer` per backend holds a deadline per path and a single
thread that calls the handler when a deadline passes: an apply that writes a thousand files
costs a dictionary entry each, not a thread each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Debouncer:
    """`touch(key)` (re)starts the key's quiet period; `handler(key)` runs after it."""

    def __init__(self, quiet: float, handler: Callable[[str], None], name: str) -> None:
        self.quiet = quiet
        self.handler = handler
        self._due: dict[str, float] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def touch(self, key: str) -> None:
        with self._cond:
            if self._closed:
                return
            self._due[key] = time.monotonic() + self.quiet
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._due.clear()
            self._cond.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.monotonic()
                    ready = [k for k, at in self._due.items() if at <= now]
                    if ready:
                        for key in ready:
                            del self._due[key]
                        break
                    wait = min(self._due.values(), default=now + 3600) - now
                    self._cond.wait(wait)
                if self._closed:
                    return
            for key in sorted(ready):
                try:
                    self.handler(key)
                except Exception:  # a failing handler must not stop later keys
                    log.exception("handling %s failed", key)
