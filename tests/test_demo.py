"""The demo command loads realistic data once; a second run changes nothing."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command

from organizations.models import License, Membership, Organization
from partnerships import services
from partnerships.models import Partnership
from settings_sync import registry
from settings_sync.models import SyncRun
from settings_sync.project.models import Equipment

pytestmark = pytest.mark.django_db(transaction=True)

def counts() -> tuple[int, ...]:
    return (
        Organization.objects.count(),
        Membership.objects.count(),
        License.all_objects.count(),
        get_user_model().objects.count(),
    )


def every_row() -> dict[str, list[dict]]:
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values())
        for model in apps.get_models()
    }


def test_demo_is_idempotent_and_prints_accounts(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    out = io.StringIO()
    call_command("demo", no_serve=True, stdout=out)
    first = counts()
    assert first[0] >= 4
    assert "helios-admin" in out.getvalue()
    assert "password: " in out.getvalue()
    assert Organization.objects.get(slug="helios-energy").logo
    call_command("demo", no_serve=True, stdout=io.StringIO())
    assert counts() == first


def test_a_second_run_overwrites_nothing_people_changed_and_starts_no_run(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    call_command("demo", no_serve=True, stdout=io.StringIO())
    # What a newcomer does while clicking through the demo.
    helios = Organization.objects.get(slug="helios-energy")
    alex = get_user_model().objects.get(username="helios-admin")
    expiration = registry.get("proposal_expiration").model.for_organization(helios)
    expiration.days_valid = 30  # back to the default
    expiration.save()
    Equipment.objects.filter(organization=helios).first().archive(by=alex)
    helios.logo.delete()
    License.objects.filter(organization=helios).first().archive(by=alex)
    services.end_partnership(
        Partnership.objects.get(downstream__slug="desert-sun-dealers"), by=alex
    )
    Membership.objects.filter(user__username="coastal-member").delete()
    before, runs = every_row(), SyncRun.objects.count()

    call_command("demo", no_serve=True, stdout=io.StringIO())

    assert SyncRun.objects.count() == runs
    assert every_row() == before
