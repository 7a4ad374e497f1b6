"""The signed-in user's organizations, for the header's organization switcher."""

from __future__ import annotations

from django.http import HttpRequest

from .models import Membership
from .tabs import for_organization


def organizations(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships():
        # An organization's page has read them already (organizations.access).
        read = getattr(request, "memberships", None)
        return read if read is not None else list(Membership.objects.for_user(user))

    organization = getattr(request, "organization", None)

    def settings_tabs():
        return for_organization(organization) if organization is not None else []

    # Lazy: pages that never render the header (fragments, redirects) cost no query.
    return {
        "my_memberships": memberships,
        "current_organization": getattr(request, "organization", None),
        "current_membership": getattr(request, "membership", None),
        "settings_tabs": settings_tabs,
    }
