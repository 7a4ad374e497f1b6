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


def is_item_locked(item) -> bool:
    """Whether the partner may not edit or archive ``item``.

    A collection item carries the organization that locks it (``managed_by``, written by the
    sync with every copy), so asking costs no query; a singleton row is locked with its
    category (docs/design.md §12.3).
    """
    if hasattr(item, "managed_by_id"):
        return item.managed_by_id is not None
    category = registry.for_model(type(item))
    if category is None or not category.lockable:
        return False
    return managing_partnership(item.organization) is not None


def lock_through(partnership: Partnership, key: str) -> tuple[bool, bool]:
    """How a copy of category ``key`` made through ``partnership`` is locked: (it keeps the
    lock its source holds, the partnership locks it itself).

    Locks travel through exclusive partnerships; a strict one adds its own channel manager's
    (docs/design.md §12.3). The engine's rules and its ``INSERT … SELECT`` copy both ask here.
    """
    mode = category_mode(partnership, key)
    return mode in (modes.FLEXIBLE, modes.STRICT), mode == modes.STRICT


def category_mode(partnership: Partnership, key: str) -> str:
    """The mode in which ``partnership`` syncs the category ``key``.

    Today every category follows the partnership's flags; this is the one place the network's
    code asks, so a per-category mode needs changing only here (docs/design.md §12).
    """
    return partnership.mode
