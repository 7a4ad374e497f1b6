"""Demo data for organizations: a channel manager, its partners, their people and licenses.

Loaded by ``manage.py demo``, which passes one :class:`DemoLoad` to every app's loader. The
loaders only create, never overwrite: an organization's data is loaded with the organization
itself, so an organization that already exists (and whatever people did in it since) is left
as it is, and loading twice changes nothing.
"""

from __future__ import annotations

import datetime
import io
import math
from dataclasses import dataclass, field
from typing import TextIO

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from .models import License, Membership, Organization

DEMO_PASSWORD = "solar-demo-2026"  # noqa: S105 (printed for the demo accounts)

CHANNEL_MANAGER = ("helios-energy", "Helios Energy Partners")
PARTNERS = [
    ("sunrise-solar", "Sunrise Solar Installers"),
    ("coastal-roofing-solar", "Coastal Roofing & Solar"),
    ("blue-ridge-electric", "Blue Ridge Electric Co."),
    ("desert-sun-dealers", "Desert Sun Dealers"),
    ("prairie-power", "Prairie Power Solutions"),
]
#: A third level: Sunrise Solar, a dealer of Helios, manages installers of its own.
INSTALLERS = [
    ("bright-path-installers", "Bright Path Installers"),
    ("canyon-crew-solar", "Canyon Crew Solar"),
]
LICENSES = {
    "helios-energy": [
        ("C-10 Electrical Contractor", "1045821", "California", 2028),
        ("C-46 Solar Contractor", "1045822", "California", 2027),
    ],
    "sunrise-solar": [("C-46 Solar Contractor", "998104", "California", 2027)],
    "coastal-roofing-solar": [
        ("Certified Solar Contractor", "CVC57231", "Florida", 2028),
        ("Roofing Contractor", "CCC1332918", "Florida", 2027),
    ],
    "blue-ridge-electric": [("Electrical Contractor Class A", "2705178342", "Virginia", 2028)],
    "desert-sun-dealers": [("ROC B-1 General", "ROC 334210", "Arizona", 2027)],
    "prairie-power": [("Electrical Contractor", "EC-21-0087", "Colorado", 2027)],
    "bright-path-installers": [("C-46 Solar Contractor", "1102877", "California", 2028)],
    "canyon-crew-solar": [("C-10 Electrical Contractor", "1099310", "California", 2027)],
}


@dataclass
class DemoLoad:
    """One run of ``manage.py demo``, as the apps' loaders share it."""

    out: TextIO
    #: slugs of the organizations this run created: only their data is loaded
    new_organizations: set[str] = field(default_factory=set)
    #: (account, what it is), printed at the end
    accounts: list[tuple[str, str]] = field(default_factory=list)

    def is_new(self, organization: Organization) -> bool:
        return organization.slug in self.new_organizations


def sun_logo(color: tuple[int, int, int] = (245, 158, 11)) -> bytes:
    """A small sun mark, drawn rather than shipped, as a PNG."""
    size = 256
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    centre = size / 2
    for ray in range(12):
        angle = ray * math.pi / 6
        inner, outer = 70, 118
        draw.line(
            [
                (centre + inner * math.cos(angle), centre + inner * math.sin(angle)),
                (centre + outer * math.cos(angle), centre + outer * math.sin(angle)),
            ],
            fill=color,
            width=14,
        )
    draw.ellipse([centre - 58, centre - 58, centre + 58, centre + 58], fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _user(username: str, first: str, last: str, *, staff: bool = False):
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username,
        defaults={
            "first_name": first,
            "last_name": last,
            "email": f"{username}@example.com",
            "is_staff": staff,
            "is_superuser": staff,
        },
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _organization(demo: DemoLoad, slug: str, name: str) -> Organization:
    organization, created = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    if created:
        demo.new_organizations.add(slug)
    return organization


def load(demo: DemoLoad) -> None:
    """Create the demo organizations and accounts (listed in ``demo.accounts``)."""
    accounts = demo.accounts
    staff = _user("staff", "Sam", "Staff", staff=True)
    accounts.append((staff.username, "platform staff (Django admin at /admin/)"))

    people = {
        "helios-energy": ("Alex", "Rivera", "Maya", "Chen"),
        "sunrise-solar": ("Jordan", "Patel", "Luis", "Ortega"),
        "coastal-roofing-solar": ("Priya", "Nair", "Tom", "Becker"),
        "blue-ridge-electric": ("Hannah", "Brooks", "Eli", "Foster"),
        "desert-sun-dealers": ("Carlos", "Mendez", "Ava", "Singh"),
        "prairie-power": ("Grace", "Olsen", "Noah", "Kim"),
        "bright-path-installers": ("Mia", "Lopez", "Sam", "Whitaker"),
        "canyon-crew-solar": ("Diego", "Ramos", "Ivy", "Park"),
    }
    for slug, name in [CHANNEL_MANAGER, *PARTNERS, *INSTALLERS]:
        organization = _organization(demo, slug, name)
        admin_first, admin_last, member_first, member_last = people[slug]
        admin = _user(f"{slug.split('-')[0]}-admin", admin_first, admin_last)
        member = _user(f"{slug.split('-')[0]}-member", member_first, member_last)
        accounts.append((admin.username, f"admin of {name}"))
        accounts.append((member.username, f"member of {name}"))
        if not demo.is_new(organization):
            continue
        if slug == CHANNEL_MANAGER[0]:
            organization.logo.save("helios-energy.png", ContentFile(sun_logo()), save=True)
        Membership.objects.create(user=admin, organization=organization, role=Membership.Role.ADMIN)
        Membership.objects.create(
            user=member, organization=organization, role=Membership.Role.MEMBER
        )
        License.objects.bulk_create(
            License(
                organization=organization,
                license_type=license_type,
                number=number,
                jurisdiction=jurisdiction,
                expires_on=datetime.date(year, 6, 30),
            )
            for license_type, number, jurisdiction, year in LICENSES[slug]
        )

    # One person in two organizations, to show the organization switcher.
    sunrise = Organization.objects.get(slug="sunrise-solar")
    if demo.is_new(sunrise):
        Membership.objects.create(
            user=get_user_model().objects.get(username="helios-admin"),
            organization=sunrise,
            role=Membership.Role.MEMBER,
        )
    accounts[1] = ("helios-admin", "admin of Helios Energy Partners, member of Sunrise Solar")
