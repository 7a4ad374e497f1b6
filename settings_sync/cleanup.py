"""Remove organizations with everything that hangs off them, without starting any sync.

For benchmark and load-test data; partnerships are never deleted in normal use.
"""

from __future__ import annotations

from organizations.models import Organization
from partnerships.models import Invitation, Partnership, PartnershipRequest

from . import registry
from .models import SyncRun


def delete_organizations(organizations) -> None:
    organizations = Organization.objects.filter(pk__in=organizations.values("pk"))
    partnerships = Partnership.objects.filter(
        upstream__in=organizations
    ) | Partnership.objects.filter(downstream__in=organizations)
    partnerships.update(status=Partnership.Status.ENDED)  # the deletions below sync nothing
    for category in registry.all():
        model = category.model
        if model is Organization:
            continue
        manager = getattr(model, "all_objects", model._default_manager)
        rows = manager.filter(organization__in=organizations)
        if hasattr(model, "synced_from"):
            rows.update(synced_from=None)
        rows.delete()
    SyncRun.objects.filter(partnership__in=partnerships).delete()
    Invitation.objects.filter(upstream__in=organizations).delete()
    PartnershipRequest.objects.filter(upstream__in=organizations).delete()
    partnerships.delete()
    organizations.delete()
