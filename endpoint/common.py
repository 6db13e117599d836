"""What both halves of the endpoint share: the log and how a sender-controlled value is logged."""

from __future__ import annotations

import logging

log = logging.getLogger("endpoint")


def _reason(err: Exception) -> str:
    cause = getattr(err, "cause", None)
    return str(getattr(cause, "message", None) or cause or err)


def _short(value: object, limit: int = 80) -> str:
    """A sender-controlled value as it may appear in a log line: repr'd (no line breaks), bounded."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
