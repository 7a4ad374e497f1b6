"""Demo partnerships: Helios Energy Partners with a partner in each mode, one pending
invitation and one pending request, and a third level: Sunrise Solar (strict under Helios)
with two installers of its own, so a change at Helios travels two levels down. Created with
the organizations they join, never again (``organizations.demo.DemoLoad``)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from organizations.demo import DemoLoad
from organizations.models import Organization

from . import services

PARTNERS = {
    "sunrise-solar": {"is_exclusive": True, "data_sync_enabled": True},  # strict
    "coastal-roofing-solar": {
        "is_exclusive": True,
        "data_sync_enabled": True,
        "allow_downstream_edit": True,
    },  # flexible
    "blue-ridge-electric": {"data_sync_enabled": True},  # non-exclusive
    "desert-sun-dealers": {},  # off
}
#: Sunrise Solar's own installers (docs/design.md §14).
INSTALLERS = {
    "bright-path-installers": {
        "is_exclusive": True,
        "data_sync_enabled": True,
        "allow_downstream_edit": True,
    },  # flexible: Helios's items arrive locked, Sunrise's own are editable
    "canyon-crew-solar": {"data_sync_enabled": True},  # non-exclusive: everything editable
}


def load(demo: DemoLoad) -> None:
    helios = Organization.objects.get(slug="helios-energy")
    alex = get_user_model().objects.get(username="helios-admin")
    for slug, flags in PARTNERS.items():
        partner = Organization.objects.get(slug=slug)
        if demo.is_new(partner):
            services.create_partnership(helios, partner, by=alex, **flags)
    sunrise = Organization.objects.get(slug="sunrise-solar")
    jordan = get_user_model().objects.get(username="sunrise-admin")
    for slug, flags in INSTALLERS.items():
        installer = Organization.objects.get(slug=slug)
        if demo.is_new(installer):
            services.create_partnership(sunrise, installer, by=jordan, **flags)
    prairie = Organization.objects.get(slug="prairie-power")
    if demo.is_new(prairie):
        services.request_partnership(
            helios,
            prairie,
            by=alex,
            message="We'd like to bring Prairie Power into the Helios network for 2027.",
            data_sync_enabled=True,
        )
    if demo.is_new(helios):
        services.invite_organization(
            helios,
            name="Summit Solar Co.",
            email="owner@summitsolar.example",
            invited_by=alex,
            is_exclusive=True,
            data_sync_enabled=True,
        )
