"""The directory backend's settle timer: one call per key, after its events go quiet."""

from __future__ import annotations

import threading

from controller.backends.debounce import Debouncer
from tests.support.runtime import wait_until


def test_a_burst_of_touches_is_handled_once_per_key_after_it_goes_quiet() -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def handler(key: str) -> None:
        with lock:
            calls.append(key)

    settle = Debouncer(0.05, handler, "test-settle")
    try:
        for _ in range(20):
            settle.touch("a.yaml")
        settle.touch("b.yaml")
        wait_until(lambda: len(calls) >= 2, timeout=5, what="both keys handled")
        assert sorted(calls) == ["a.yaml", "b.yaml"]
        settle.touch("a.yaml")
        wait_until(lambda: len(calls) >= 3, timeout=5, what="a touched again")
        assert calls.count("a.yaml") == 2
    finally:
        settle.close()
    settle.touch("c.yaml")  # after close: ignored, no thread left to run it
    assert "c.yaml" not in calls


def test_a_failing_handler_does_not_stop_later_keys() -> None:
    seen: list[str] = []

    def handler(key: str) -> None:
        seen.append(key)
        if key == "bad":
            raise RuntimeError("boom")

    settle = Debouncer(0.01, handler, "test-settle")
    try:
        settle.touch("bad")
        wait_until(lambda: "bad" in seen, timeout=5, what="bad handled")
        settle.touch("good")
        wait_until(lambda: "good" in seen, timeout=5, what="good handled")
    finally:
        settle.close()
