"""The hypothesis profiles, chosen by HYPOTHESIS_PROFILE: small and fast by default (the suite
runs in CI's time), ``deep`` exploring much further."""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.register_profile("default", max_examples=25, deadline=None)
settings.register_profile("deep", max_examples=500, deadline=None)


def load() -> None:
    settings.load_profile(PROFILE)


def examples(by_default: int) -> int:
    """The examples of a property far slower than the others: ``by_default`` in the default
    profile, and as many as any other property in the others (deep: 500)."""
    return by_default if PROFILE == "default" else settings.get_profile(PROFILE).max_examples
