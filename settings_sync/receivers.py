"""Reactions to other apps' events."""

from __future__ import annotations

from . import registry


def create_singletons(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """Every organization has exactly one row of each singleton from the start (SPEC 3)."""
    if not created or raw:
        return
    for category in registry.all():
        if category.is_singleton:
            category.model.objects.get_or_create(organization=instance)
