"""Which settings an organization may not change: a synced category whose effective mode is
strict belongs to the channel manager, and locks travel down exclusive partnerships with the
copies (docs/design.md §6, §12, §14.3)."""

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


def locked_keys(organization: Organization) -> set[str]:
    """The lockable categories ``organization`` may not change, with two queries at most (its
    exclusive partnership, that partnership's overrides)."""
    partnership = managing_partnership(organization)
    if partnership is None:
        partnership = (
            Partnership.objects.active()
            .filter(downstream=organization, is_exclusive=True, data_sync_enabled=True)
            .first()
        )
    if partnership is None:
        return set()
    modes_by_key = overrides.effective_modes(partnership)
    return {
        category.key
        for category in registry.all()
        if category.lockable and modes_by_key[category.key] == modes.STRICT
    }


def lock_for(organization: Organization, page) -> Partnership | None:
    """The partnership that locks ``page`` for ``organization`` (None when editable)."""
    if not getattr(page, "synced", False) or not page.lockable:
        return None
    return managing_partnership(organization, page.key)


def is_item_locked(item) -> bool:
    """Whether the partner may not edit or archive ``item``.

    A collection item carries the organization that locks it (``managed_by``, written by the
    sync with every copy), so asking costs no query; a singleton row is locked with its
    category (docs/design.md §14.3).
    """
    if hasattr(item, "managed_by_id"):
        return item.managed_by_id is not None
    category = registry.for_model(type(item))
    if category is None or not category.lockable:
        return False
    return managing_partnership(item.organization, category.key) is not None


def lock_through(partnership: Partnership, key: str) -> tuple[bool, bool]:
    """How a copy of category ``key`` made through ``partnership`` is locked: (it keeps the
    lock its source holds, the partnership locks it itself).

    Locks travel through exclusive partnerships; a strict one adds its own channel manager's
    (docs/design.md §14.3). The engine's rules and its ``INSERT … SELECT`` copy both ask here.
    """
    mode = category_mode(partnership, key)
    return mode in (modes.FLEXIBLE, modes.STRICT), mode == modes.STRICT


def category_mode(partnership: Partnership, key: str) -> str:
    """The mode in which ``partnership`` syncs the category ``key``: its effective mode, the
    override's or the flags' (docs/design.md §12.1, §14.3)."""
    return overrides.effective_mode(partnership, key)
