"""Where an item came from at the top of its chain (docs/design.md §14.2).

A copy of a copy points at the copy above it (``synced_from``); the sync writes the chain's
top organization on every copy (``synced_origin``), so a list names each row's origin without
walking chains. A singleton row is overwritten as a whole, so its origin is found by
following the partnerships that last overwrote it (a few queries, for one row on one page).
"""

from __future__ import annotations

from organizations.models import Organization

#: More levels than any network: a guard against a chain that would not end.
MAX_DEPTH = 32


def origin(item) -> Organization:
    """The organization at the top of ``item``'s chain (its own organization for an own item)."""
    if hasattr(item, "synced_origin_id"):
        if item.synced_origin_id is not None:
            return item.synced_origin
        partnership = item.synced_partnership if item.synced_partnership_id else None
        return partnership.upstream if partnership else item.organization
    if not hasattr(item, "synced_partnership_id"):
        return getattr(item, "organization", item)  # invite-only data: the partner's own
    row, organization = item, item.organization
    for _ in range(MAX_DEPTH):
        if row is None or row.synced_partnership_id is None:
            return organization
        organization = row.synced_partnership.upstream
        row = (
            type(item)
            .objects.select_related("synced_partnership__upstream")
            .filter(organization=organization)
            .first()
        )
    return organization


def synced_from(item) -> Organization | None:
    """The organization ``item`` was copied from directly (None for an own item)."""
    partnership = getattr(item, "synced_partnership", None)
    return partnership.upstream if partnership is not None else None
