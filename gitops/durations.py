"""Durations: Go/Kubernetes syntax in, protobuf-JSON syntax out.

Gloo resources take durations as Go `time.ParseDuration` strings (`0.5s`, `2m`,
`1h30m`, `250ms`). Istio objects take protobuf `Duration` JSON (`0.500s`), which
is also what Gloo emits. Used by the models (validation) and the translators
(output formatting).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
#: Largest duration protobuf allows (10,000 years), in nanoseconds.
MAX_NANOS = 315_576_000_000 * 1_000_000_000


class DurationError(ValueError):
    """A string that is not a duration; the message says why."""


def parse(text: str) -> int:
    """Nanoseconds in a Go duration string. Negative durations are refused."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration string like '0.5s' or '1h30m', got {text!r}")
    s = text.strip()
    if s in ("0", ""):
        if s == "":
            raise DurationError("empty duration")
        return 0
    if s.startswith("-"):
        raise DurationError(f"duration {text!r} is negative")
    s = s.removeprefix("+")
    pos, total = 0, Decimal(0)
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise DurationError(
                f"{text!r} is not a duration (use Go syntax such as '0.5s', '250ms', '2m', '1h30m')"
            )
        try:
            total += Decimal(m.group(1)) * _UNIT_NANOS[m.group(2)]
        except InvalidOperation as exc:  # pragma: no cover - regex guarantees digits
            raise DurationError(f"{text!r} is not a duration") from exc
        pos = m.end()
    nanos = int(total)
    if nanos > MAX_NANOS:
        raise DurationError(f"duration {text!r} is too long")
    return nanos


def to_proto(nanos: int) -> str:
    """Protobuf JSON form: seconds with 0, 3, 6 or 9 fractional digits (`2s`, `0.500s`)."""
    seconds, frac = divmod(nanos, 1_000_000_000)
    if frac == 0:
        return f"{seconds}s"
    if frac % 1_000_000 == 0:
        return f"{seconds}.{frac // 1_000_000:03d}s"
    if frac % 1_000 == 0:
        return f"{seconds}.{frac // 1_000:06d}s"
    return f"{seconds}.{frac:09d}s"
