"""The demo command loads realistic data once; a second run changes nothing."""

from __future__ import annotations

import io
import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.core.management.commands import runserver
from django.test import Client

from organizations.models import License, Membership, Organization
from partnerships import services
from partnerships.models import Partnership
from settings_sync import registry
from settings_sync.models import SyncRun
from settings_sync.project.models import Equipment

pytestmark = pytest.mark.django_db(transaction=True)

CONSOLE_MAIL = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}


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


def test_invitation_links_point_at_the_address_the_demo_serves(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    call_command("demo", addrport="127.0.0.1:8101", no_serve=True, stdout=io.StringIO())
    (email,) = [e for e in mail.outbox if "invites" in e.subject]  # to Summit Solar Co.
    assert re.search(r"^http://127\.0\.0\.1:8101/invitations/[\w-]+/$", email.body, re.MULTILINE)
    for sent in mail.outbox:  # the invitation and the notifications
        assert "127.0.0.1:8000" not in sent.body


def test_the_console_prints_the_invitation_as_written(settings, capsys):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.MAILERS = CONSOLE_MAIL
    call_command("demo", no_serve=True, stdout=io.StringIO())
    printed = capsys.readouterr().out
    assert "quoted-printable" not in printed
    assert (
        "Subject: Helios Energy Partners invites Summit Solar Co. to Channel Data Sync" in printed
    )
    assert (
        "Alex Rivera of Helios Energy Partners (helios-energy) invites Summit Solar Co. to "
        "partner with them on Channel Data Sync." in printed
    )
    assert re.search(r"^http://127\.0\.0\.1:8000/invitations/[\w-]+/$", printed, re.MULTILINE)
    assert "— Channel Data Sync" in printed


def test_the_demo_serves_the_products_error_pages(settings, monkeypatch):
    """Another organization's page answers with the product's 404, as in production."""
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.DEBUG = True  # the demo's settings (config.settings.base)
    served = {}

    def serve(command, *args, **options):  # instead of Django's development server
        served["addrport"] = options["addrport"]
        client = Client()
        client.force_login(get_user_model().objects.get(username="prairie-admin"))
        served["other"] = client.get("/o/helios-energy/settings/partnerships/")

    monkeypatch.setattr(runserver.Command, "handle", serve)
    call_command("demo", addrport="127.0.0.1:8101", stdout=io.StringIO())
    assert served["addrport"] == "127.0.0.1:8101"
    assert served["other"].status_code == 404
    page = served["other"].content.decode()
    assert "Page not found" in page
    assert "it belongs to an organization you are not a member of" in page
    assert "Django tried these URL patterns" not in page
    assert "DEBUG = True" not in page


def test_an_update_waits_for_the_flexible_partner_with_a_few_notifications(settings):
    from notifications.models import Notification
    from settings_sync import conflicts
    from settings_sync.project.models import Adder

    settings.SITE_URL = "http://127.0.0.1:8000"
    call_command("demo", no_serve=True, stdout=io.StringIO())
    copy = Adder.objects.get(organization__slug="coastal-roofing-solar", name__startswith="Trench")
    assert conflicts.update_available(copy)
    coastal_admin = get_user_model().objects.get(username="coastal-admin")
    assert Notification.objects.filter(user=coastal_admin, event="update_available").count() == 1
    notifications = Notification.objects.count()
    assert notifications >= 3
    call_command("demo", no_serve=True, stdout=io.StringIO())
    assert Notification.objects.count() == notifications


def test_the_demo_has_three_levels(settings):
    """Helios → Sunrise Solar (strict) → two installers: Helios's items reach the third
    level, locked through the flexible partnership and editable through the non-exclusive
    one, each saying where it came from originally."""
    from settings_sync.locks import is_item_locked
    from settings_sync.project.models import Adder
    from settings_sync.provenance import origin

    settings.SITE_URL = "http://127.0.0.1:8000"
    call_command("demo", no_serve=True, stdout=io.StringIO())
    helios = Organization.objects.get(slug="helios-energy")
    for slug, locked in [("bright-path-installers", True), ("canyon-crew-solar", False)]:
        trenching = Adder.objects.get(organization__slug=slug, name="Trenching (per 50 ft)")
        assert trenching.synced_partnership.upstream.slug == "sunrise-solar"
        assert origin(trenching) == helios
        assert is_item_locked(trenching) is locked
    assert SyncRun.objects.filter(
        partnership__downstream__slug="bright-path-installers", caused_by__isnull=False
    ).exists()
