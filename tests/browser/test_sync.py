"""In a real browser: the flag form's preview, a resync of 200 partners followed by a progress
bar that advances (database task backend and a worker), and a partner's locked settings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from organizations.models import Organization
from partnerships import services
from partnerships.models import Partnership
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def helios(db):
    organization = OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")
    Adder.objects.create(organization=organization, name="Trenching", amount=1250)
    Adder.objects.create(organization=organization, name="Tile roof", amount=Decimal("0.35"))
    return organization


@pytest.fixture
def helios_admin(helios):
    return MembershipFactory(organization=helios, role="admin").user


def test_flag_preview_updates_before_saving_and_matches(
    page, live_server, sign_in, screenshot, helios, helios_admin
):
    sunrise = OrganizationFactory(name="Sunrise Solar")
    Adder.objects.create(organization=sunrise, name="Tree removal", amount=900)
    partnership = services.create_partnership(
        helios,
        sunrise,
        by=None,
        is_exclusive=True,
        data_sync_enabled=True,
        allow_downstream_edit=True,
    )
    from settings_sync import engine

    engine.run(partnership, "link")
    sign_in(helios_admin)
    page.goto(f"{live_server.url}/o/helios-energy/settings/partnerships/{partnership.pk}/")
    page.get_by_role("link", name="Edit").click()
    preview = page.locator("#sync-preview")
    expect(preview).to_contain_text("Saving these flags starts no sync")

    page.get_by_label("Allow Downstream to Edit Synced Settings").uncheck()
    expect(page.get_by_test_id("form-mode")).to_have_text("Strict")
    expect(preview).to_contain_text("1 of Sunrise Solar's own adders will be archived.")
    expect(preview.locator('[data-category="adders"] [data-action="archived"]')).to_have_text(
        "1 archived"
    )
    # The two copies become read-only: a change of lock is a write (docs/design.md §14.3).
    expect(preview.locator('[data-category="adders"] [data-action="updated"]')).to_have_text(
        "2 updated"
    )
    screenshot("flag-preview")

    page.get_by_label("Data Sync").uncheck()
    expect(preview.locator('[data-category="adders"] [data-action="detached"]')).to_have_text(
        "2 detached"
    )
    page.get_by_label("Data Sync").check()
    page.get_by_label("Allow Downstream to Edit Synced Settings").uncheck()
    expect(preview.locator('[data-category="adders"] [data-action="archived"]')).to_have_text(
        "1 archived"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Partnership flags saved.")).to_be_visible()

    run = SyncRun.objects.filter(partnership=partnership).latest("pk")
    assert (run.event, run.mode, run.status) == ("link", "strict", "succeeded")
    assert run.counts["adders"] == {"archived": 1, "updated": 2}
    assert not Adder.objects.filter(organization=sunrise, name="Tree removal").exists()


def test_resync_all_partners_shows_progress(
    page, live_server, sign_in, screenshot, helios, helios_admin, database_tasks, worker
):
    partners = Organization.objects.bulk_create(
        Organization(name=f"Installer {n:03}", slug=f"installer-{n:03}") for n in range(200)
    )
    Partnership.objects.bulk_create(
        Partnership(upstream=helios, downstream=partner, data_sync_enabled=True)
        for partner in partners
    )
    sign_in(helios_admin)
    page.goto(f"{live_server.url}/o/helios-energy/settings/partnerships/")
    page.get_by_role("link", name="Resync all partners").click()
    page.get_by_role("button", name="Resync 200 partners").click()
    progress = page.get_by_test_id("progress-text")
    expect(progress).to_have_text("0 of 200 partners done.")

    # One task (a batch of 50 partners applied together), then the rest: the bar follows.
    worker(max_tasks=1)
    expect(progress).to_have_text("50 of 200 partners done.", timeout=30_000)
    worker()
    expect(progress).to_have_text("200 of 200 partners done.")
    summary = page.get_by_test_id("batch-summary")
    expect(summary).to_contain_text("200 succeeded, 0 failed, 0 skipped.")
    expect(summary.locator('[data-category="adders"] [data-action="created"]')).to_have_text(
        "400 created"
    )
    screenshot("resync-progress")
    assert Adder.objects.filter(synced_partnership__upstream=helios).count() == 400


def test_strict_partner_sees_locked_settings(page, live_server, sign_in, screenshot, helios):
    sunrise = OrganizationFactory(name="Sunrise Solar", slug="sunrise-solar")
    partnership = services.create_partnership(
        helios, sunrise, by=None, is_exclusive=True, data_sync_enabled=True
    )
    from settings_sync import engine

    engine.run(partnership, "link")
    partner_admin = MembershipFactory(organization=sunrise, role="admin").user
    sign_in(partner_admin)
    page.goto(f"{live_server.url}/o/sunrise-solar/settings/project/adders/")
    expect(page.get_by_test_id("lock-notice")).to_contain_text("Managed by Helios Energy Partners.")
    expect(page.get_by_test_id("item-row")).to_have_count(2)
    expect(page.get_by_text("Managed by Helios Energy Partners").first).to_be_visible()
    expect(page.get_by_role("link", name="Add adder")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit Trenching")).to_have_count(0)
    screenshot("locked-settings")
    # Licenses are copied once, never locked.
    page.goto(f"{live_server.url}/o/sunrise-solar/settings/organization/")
    expect(page.get_by_role("link", name="Add license")).to_be_visible()
