"""Which settings an organization may not change: a synced category whose effective mode is
strict belongs to the channel manager (docs/design.md §6, §12)."""

from __future__ import annotations

from organizations.models import Organization
from partnerships import modes
from partnerships.models import Partnership

from . import overrides, registry


def managing_partnership(organization: Organization, key: str | None = None) -> Partnership | None:
    """The active exclusive partnership whose channel manager manages this organization's
    category ``key`` (its effective mode is strict), if any: at most one, a strict
    partnership is exclusive. Without ``key``: the partnership if it is strict."""
    partnership = (
        Partnership.objects.active()
        .with_mode()
        .filter(downstream=organization, mode_value__in=[modes.FLEXIBLE, modes.STRICT])
        .select_related("upstream")
        .first()
    )
    if partnership is None:
        return None
    mode = overrides.effective_mode(partnership, key) if key else partnership.mode
    return partnership if mode == modes.STRICT else None


def is_locked(organization: Organization, key: str) -> bool:
    """Whether ``organization`` may not change the synced category ``key``.

    Keys outside the registry (financing, integrations, …) are never synced, so never locked.
    """
    category = registry.find(key)
    return (
        category is not None
        and category.lockable
        and managing_partnership(organization, key) is not None
    )


def lock_for(organization: Organization, page) -> Partnership | None:
    """The partnership that locks ``page`` for ``organization`` (None when editable)."""
    if not getattr(page, "synced", False) or not page.lockable:
        return None
    return managing_partnership(organization, page.key)
