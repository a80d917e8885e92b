"""`Trigger` coalescing, `PollTimer`, and `LocalWatch` on real repositories with real watchdog.

Waits are generous deadlines on events, never sleeps that a slow machine could miss;
the only fixed sleeps are where a test proves that something did *not* happen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.loop.triggers import LocalWatch, PollTimer, Trigger
from tests.support.git_servers import run_git

WAIT = 10.0


class Runs:
    """The callback: records each run's reasons; `gate` can hold a run in progress."""

    def __init__(self) -> None:
        self.reasons: list[frozenset[str]] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.cond = threading.Condition()

    def __call__(self, reasons: frozenset[str]) -> None:
        with self.cond:
            self.reasons.append(reasons)
            self.cond.notify_all()
        self.started.set()
        assert self.gate.wait(WAIT)

    def wait_for(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.reasons) >= count, WAIT)


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def make_trigger(runs: Runs) -> Iterator[Callable[[float], Trigger]]:
    made: list[Trigger] = []

    def make(coalesce: float) -> Trigger:
        made.append(Trigger(runs, coalesce))
        return made[-1]

    yield make
    runs.gate.set()
    for trigger in made:
        trigger.close()


def test_a_burst_of_fires_is_one_run_with_every_reason(
    runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    # A long window so the whole burst lands in it however slow the machine is.
    trigger = make_trigger(0.5)
    for i in range(50):
        trigger.fire(f"hook-{i % 3}")
    assert trigger.wait_idle(WAIT)
    assert runs.reasons == [frozenset({"hook-0", "hook-1", "hook-2"})]


def test_fires_during_a_run_make_exactly_one_more_run(
    runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    trigger = make_trigger(0.01)
    runs.gate.clear()
    trigger.fire("poll")
    assert runs.started.wait(WAIT)
    for i in range(20):
        trigger.fire("webhook" if i % 2 else "local")
    runs.gate.set()
    assert trigger.wait_idle(WAIT)
    assert runs.reasons == [frozenset({"poll"}), frozenset({"webhook", "local"})]


def test_a_failing_run_does_not_stop_the_trigger(make_trigger: Callable[[float], Trigger]) -> None:
    calls: list[frozenset[str]] = []

    def flaky(reasons: frozenset[str]) -> None:
        calls.append(reasons)
        if len(calls) == 1:
            raise RuntimeError("fetch failed")

    trigger = Trigger(flaky, 0.01)
    try:
        trigger.fire("a")
        assert trigger.wait_idle(WAIT)
        trigger.fire("b")
        assert trigger.wait_idle(WAIT)
    finally:
        trigger.close()
    assert calls == [frozenset({"a"}), frozenset({"b"})]


def test_close_drops_pending_fires(runs: Runs) -> None:
    trigger = Trigger(runs, 60.0)
    trigger.fire("never")
    trigger.close()
    trigger.fire("after close")
    assert runs.reasons == []


def test_poll_timer_fires_only_when_the_check_says_moved(
    runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    answers = iter([False, True, False, False, True])
    checked = threading.Semaphore(0)

    def check() -> bool:
        answer = next(answers, False)
        checked.release()
        return answer

    trigger = make_trigger(0.01)
    timer = PollTimer(0.01, check, trigger)
    try:
        for _ in range(5):
            assert checked.acquire(timeout=WAIT)
        timer.close()
        assert trigger.wait_idle(WAIT)
    finally:
        timer.close()
    # The two "moved" answers may share one coalescing window, but never zero runs and
    # never more than two.
    assert 1 <= len(runs.reasons) <= 2
    assert all(reasons == frozenset({"poll"}) for reasons in runs.reasons)


# -- LocalWatch -----------------------------------------------------------------------------


def commit(repo: Path, name: str) -> None:
    (repo / name).write_text(f"{name}\n")
    run_git(repo, "add", name)
    run_git(repo, "commit", "-q", "-m", f"add {name}")


@pytest.fixture
def working_copy(tmp_path: Path) -> Path:
    repo = tmp_path / "config"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    commit(repo, "first.yaml")
    return repo


def test_local_watch_fires_on_a_new_commit(
    working_copy: Path, runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    trigger = make_trigger(0.05)
    watch = LocalWatch(working_copy, trigger)
    try:
        assert watch.watched == (working_copy / ".git").resolve()
        commit(working_copy, "second.yaml")
        assert runs.wait_for(1)
    finally:
        watch.close()
    assert runs.reasons[0] == frozenset({"local"})


def test_local_watch_ignores_uncommitted_edits_in_a_working_copy(
    working_copy: Path, runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    trigger = make_trigger(0.01)
    watch = LocalWatch(working_copy, trigger)
    try:
        (working_copy / "first.yaml").write_text("edited but not committed\n")
        (working_copy / "draft.yaml").write_text("new\n")
        run_git(working_copy, "status", "--short")  # reads the index, writes no ref
        time.sleep(0.5)  # proving absence: give watchdog time to (wrongly) report
    finally:
        watch.close()
    assert runs.reasons == []


def test_local_watch_on_a_plain_directory_fires_on_file_edits(
    tmp_path: Path, runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "policy.yaml").write_text("a: 1\n")
    trigger = make_trigger(0.05)
    watch = LocalWatch(plain, trigger)
    try:
        assert watch.watched == plain.resolve()
        (plain / "policy.yaml").read_text()  # reading alone must not count
        time.sleep(0.3)
        assert runs.reasons == []
        (plain / "policy.yaml").write_text("a: 2\n")
        assert runs.wait_for(1)
    finally:
        watch.close()
    assert runs.reasons[0] == frozenset({"local"})


def test_local_watch_ignores_the_servers_own_git_notes(
    working_copy: Path, runs: Runs, make_trigger: Callable[[float], Trigger]
) -> None:
    # Commit statuses are notes in the watched repository; the first one creates the
    # `refs/notes` directory itself, an event for `refs/notes` without a trailing part.
    head = run_git(working_copy, "rev-parse", "HEAD").strip()
    trigger = make_trigger(0.01)
    watch = LocalWatch(working_copy, trigger)
    try:
        for n in range(3):
            run_git(working_copy, "notes", "--ref=mesh-gitops", "add", "-f", "-m", f"s{n}", head)
        time.sleep(0.5)  # proving absence: give watchdog time to (wrongly) report
    finally:
        watch.close()
    assert runs.reasons == []
