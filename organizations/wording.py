"""Words built from values: an English possessive of a name, a duration as a person says it.

Templates use them through the ``wording`` filters; code that writes sentences (notes of a
sync, warnings of a preview, the admin) calls them directly, so a name or a duration reads
the same everywhere.
"""

from __future__ import annotations

from datetime import timedelta


def possessive(name: object) -> str:
    """``"Sunrise Solar"`` → ``"Sunrise Solar's"``; ``"Helios Energy Partners"`` →
    ``"Helios Energy Partners'"`` (a name ending in s takes the apostrophe alone)."""
    text = str(name).strip()
    return f"{text}'" if text.endswith(("s", "S")) else f"{text}'s"


def duration(value: timedelta | None) -> str:
    """``0:00:00.062167`` → ``"0.06 seconds"``; two minutes → ``"2 minutes"``."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 0.01:
        return "under 0.01 seconds"
    if seconds < 10:
        shown = f"{seconds:.2f}".rstrip("0").rstrip(".")
        return "1 second" if shown == "1" else f"{shown} seconds"
    if seconds < 90:
        return f"{round(seconds)} seconds"
    if seconds < 90 * 60:
        minutes = round(seconds / 60)
        return f"{minutes} minutes"
    hours = round(seconds / 3600, 1)
    shown = f"{hours:g}"
    return "1 hour" if shown == "1" else f"{shown} hours"
