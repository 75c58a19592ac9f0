"""Topic patterns: which dotted topics a subscription pattern matches.

A ``*`` segment at the end of a pattern matches one or more segments, a ``*``
segment elsewhere matches exactly one, and every other segment matches itself.
"""

from __future__ import annotations

from .._errors import UsageError

__all__ = ["check_pattern", "pattern_matches"]


def check_pattern(pattern: str) -> None:
    """Raise :class:`UsageError` unless ``pattern`` is a valid subscription pattern."""
    if not isinstance(pattern, str) or "" in pattern.split("."):
        raise UsageError(
            f"invalid topic pattern {pattern!r}: use dotted, non-empty segments "
            "such as 'task.started', 'task.*' or '*'"
        )
    for segment in pattern.split("."):
        if "*" in segment and segment != "*":
            raise UsageError(
                f"invalid topic pattern {pattern!r}: '*' must be a whole segment, "
                f"as in 'task.*', not part of {segment!r}"
            )


def pattern_matches(pattern: str, topic_parts: list[str]) -> bool:
    """Return whether ``pattern`` matches the topic split into ``topic_parts`` at the dots."""
    parts = pattern.split(".")
    if parts[-1] == "*":
        # A trailing '*' matches one or more segments.
        parts.pop()
        if len(topic_parts) <= len(parts):
            return False
    elif len(topic_parts) != len(parts):
        return False
    return all(p in ("*", t) for p, t in zip(parts, topic_parts, strict=False))
