"""The reason vocabulary: one table, published unchanged in docs/diagnostics.md."""

from __future__ import annotations

import re
from pathlib import Path

from gitops.reasons import Reason, Severity, State, reference_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md"


def test_docs_diagnostics_is_generated_from_the_vocabulary() -> None:
    assert DOC.read_text() == reference_markdown(), (
        "docs/diagnostics.md is stale: run `python -m gitops.reasons > docs/diagnostics.md`"
    )


def test_every_reason_is_camel_case_with_meaning_and_fix() -> None:
    for reason in Reason:
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", reason.name), reason.name
        assert reason.meaning.endswith(".") and reason.fix.endswith("."), reason.name


def test_severity_follows_state() -> None:
    assert Reason.UnknownKind.severity is Severity.WARNING
    assert Reason.PolicyConflict.state is State.FAILED
    assert Reason.PolicyConflict.severity is Severity.ERROR
    assert Reason.SchemaViolation.state is State.INVALID
    # Worst wins by max(): the ranking the reports rely on.
    assert max(State.WARNING, State.INVALID, State.FAILED) is State.INVALID
