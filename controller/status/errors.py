"""Errors of the status writers, classified by what the reconcile loop does next.

    StatusError            base; never carries a token (writers scrub their messages)
    ├── StatusUnavailable  the host or remote is down or rate-limiting past our retries:
    │                      log, and let the next reconcile post again
    └── StatusRejected     the host refused the request (401, 404, a bad repository):
                           a settings problem; retrying will not help

`gitops.statuses.InvalidSha` (a ValueError) is raised before any request for a SHA that is
not a full object name: a bug in the caller, not a runtime condition.
"""

from __future__ import annotations


class StatusError(Exception):
    """A commit status could not be written."""


class StatusUnavailable(StatusError):
    """Transient: the host or the notes remote did not answer in time."""


class StatusRejected(StatusError):
    """Final: the host refused the request; fix the settings or the token."""
