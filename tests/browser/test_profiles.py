"""In a real browser: a sync profile applied from the Partnerships tab to all 200 partners,
with its fleet preview, then one progress bar that follows the batched runs (database task
backend and a worker), as docs/design.md §12.3 describes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from organizations.models import Organization
from partnerships.models import Partnership
from settings_sync import overrides, profiles
from settings_sync.models import SyncBatch
from settings_sync.project.models import Adder
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STRICT = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": False}


@pytest.fixture
def helios(db):
    organization = OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")
    Adder.objects.create(organization=organization, name="Trenching", amount=1250)
    Adder.objects.create(organization=organization, name="Tile roof", amount=35)
    return organization


@pytest.fixture
def helios_admin(helios):
    return MembershipFactory(organization=helios, role="admin").user


def test_a_profile_applied_to_200_partners(
    page, live_server, sign_in, screenshot, helios, helios_admin, database_tasks, worker
):
    partners = Organization.objects.bulk_create(
        Organization(name=f"Installer {n:03}", slug=f"installer-{n:03}") for n in range(200)
    )
    Partnership.objects.bulk_create(
        Partnership(upstream=helios, downstream=partner, data_sync_enabled=True)
        for partner in partners
    )
    profiles.save_profile(
        helios, name="Approved catalogue", flags=STRICT, values={"adders": "flexible"}
    )
    sign_in(helios_admin)
    page.goto(f"{live_server.url}/o/helios-energy/settings/partnerships/")
    page.get_by_role("link", name="Sync profiles").click()
    page.get_by_role("link", name="Apply to partners").click()
    expect(page.get_by_test_id("apply-partners").locator('input[type="checkbox"]')).to_have_count(
        50
    )
    page.get_by_role("button", name="Preview for all 200 partners").click()

    fleet = page.get_by_test_id("fleet-preview")
    expect(fleet).to_contain_text("Preview for 200 partners")
    expect(page.get_by_test_id("fleet-changing")).to_have_text(
        "200 of them change how they sync; the others are already in this profile's state."
    )
    expect(page.locator('[data-testid="fleet-totals"] tr[data-action="created"] td')).to_have_text(
        "400"
    )
    expect(page.get_by_test_id("fleet-most-affected").locator("li")).to_have_count(10)
    screenshot("profile-fleet-preview")
    assert not Adder.objects.filter(synced_partnership__upstream=helios).exists()  # a preview

    page.get_by_role("button", name="Apply to 200 partners").click()
    progress = page.get_by_test_id("progress-text")
    expect(page.get_by_test_id("progress-bar")).to_have_count(1)
    expect(progress).to_have_text("0 of 200 partners done.")
    worker(max_tasks=1)
    expect(progress).to_have_text("50 of 200 partners done.", timeout=30_000)
    worker()
    expect(progress).to_have_text("200 of 200 partners done.", timeout=30_000)
    expect(page.get_by_test_id("batch-summary")).to_contain_text("200 succeeded, 0 failed")
    screenshot("profile-progress")

    batch = SyncBatch.objects.get(profile__name="Approved catalogue")
    assert batch.runs.count() == 200
    assert Adder.objects.filter(synced_partnership__upstream=helios).count() == 400
    strict = Partnership.objects.filter(upstream=helios, is_exclusive=True)
    assert strict.count() == 200
    assert {overrides.effective_mode(p, "adders") for p in strict} == {"flexible"}
