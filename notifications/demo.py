"""The partner's side in the demo: Coastal Roofing & Solar (flexible) edited its copy of an
adder, then Helios changed the same adder, so an update waits for Coastal; the runs that
follow the demo's commit tell the admins concerned (notifications, and emails on the
console). Done with the organizations it concerns, never again (``organizations.demo``)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model

from organizations.demo import DemoLoad
from organizations.models import Organization
from partnerships.models import Partnership
from settings_sync import engine, policy, tasks
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder

ADDER = "Trenching (per 50 ft)"


def load(demo: DemoLoad) -> None:
    coastal = Organization.objects.get(slug="coastal-roofing-solar")
    if not demo.is_new(coastal):
        return
    helios = Organization.objects.get(slug="helios-energy")
    partnership = Partnership.objects.get(upstream=helios, downstream=coastal)
    # The link (and the changes of Helios's catalogue) were recorded with the partnership and
    # would run after the demo's commit; applied now, so that Coastal holds the copy it edits.
    for queued in SyncRun.objects.filter(
        partnership=partnership, status=SyncRun.Status.QUEUED
    ).order_by("pk"):
        engine.execute(queued)
    copy = Adder.objects.get(organization=coastal, name=ADDER)
    copy.amount = Decimal("1400")  # Coastal's crews dig in sand: its own price
    copy.save()
    # Helios raises its price; the change runs after the commit keep Coastal's edit and
    # tell Priya (Coastal's admin) that an update is available.
    original = Adder.objects.get(organization=helios, name=ADDER)
    original.amount = Decimal("1325")
    original.save()
    # Its own change run, whatever the fan-out of that save shares with earlier edits.
    tasks.schedule(
        partnership,
        policy.CHANGE,
        trigger="Helios Energy Partners changed Adders",
        categories=["adders"],
    )
    priya = get_user_model().objects.get(username="coastal-admin")
    demo.accounts[:] = [
        (username, f"{description}; an update from Helios waits in Project, Adders")
        if username == priya.username
        else (username, description)
        for username, description in demo.accounts
    ]
