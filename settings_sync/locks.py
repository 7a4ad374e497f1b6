"""Which settings an organization may not change: in a strict partnership, the synced
categories belong to the channel manager (docs/design.md §6)."""

from __future__ import annotations

from organizations.models import Organization
from partnerships import modes
from partnerships.models import Partnership

from . import registry


def managing_partnership(organization: Organization) -> Partnership | None:
    """The active strict partnership whose channel manager manages this organization's
    synced settings, if any (at most one: a strict partnership is exclusive)."""
    return (
        Partnership.objects.active()
        .with_mode()
        .filter(downstream=organization, mode_value=modes.STRICT)
        .select_related("upstream")
        .first()
    )


def is_locked(organization: Organization, key: str) -> bool:
    """Whether ``organization`` may not change the synced category ``key``.

    Keys outside the registry (financing, integrations, …) are never synced, so never locked.
    """
    category = registry.find(key)
    return (
        category is not None
        and category.lockable
        and managing_partnership(organization) is not None
    )


def lock_for(organization: Organization, page) -> Partnership | None:
    """The partnership that locks ``page`` for ``organization`` (None when editable)."""
    if not getattr(page, "synced", False) or not page.lockable:
        return None
    return managing_partnership(organization)


def category_mode(partnership: Partnership, key: str) -> str:
    """The mode in which ``partnership`` syncs the category ``key``.

    Today every category follows the partnership's flags; this is the one place the network's
    code asks, so a per-category mode needs changing only here (docs/design.md §12).
    """
    return partnership.mode
