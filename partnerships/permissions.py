"""Who may do what with a partnership (checked by views before any change)."""

from __future__ import annotations

from organizations.models import Membership

from .models import Partnership


def can_manage_partnerships(membership: Membership) -> bool:
    """Invite, request, accept or decline: the organization's admins."""
    return membership.is_admin


def can_edit_flags(membership: Membership, partnership: Partnership) -> bool:
    """Only the channel manager's admins change flags, while the partnership is active."""
    return (
        membership.is_admin
        and partnership.is_active
        and partnership.upstream_id == membership.organization_id
    )


def can_end(membership: Membership, partnership: Partnership) -> bool:
    """Either side's admins may end an active partnership."""
    return (
        membership.is_admin
        and partnership.is_active
        and membership.organization_id in (partnership.upstream_id, partnership.downstream_id)
    )
