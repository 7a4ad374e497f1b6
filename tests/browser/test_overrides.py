"""In a real browser: the per-category rows of Partnership Details (docs/design.md §12) are
shown by the flags' rule and keep their values while hidden, with JavaScript (htmx) and
without it, and the preview shown before saving is what the run does."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from settings_sync.models import CategoryOverride, SyncRun
from tests.browser.htmx import settled
from tests.factories import (
    PASSWORD,
    AdderFactory,
    MembershipFactory,
    OrganizationFactory,
    make_partnership,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}


@pytest.fixture
def helios(db):
    return OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")


@pytest.fixture
def helios_admin(helios):
    return MembershipFactory(organization=helios, role="admin").user


@pytest.fixture
def partnership(helios):
    """Flexible, run: the partner has a copy of Trenching beside its own Tree removal."""
    sunrise = OrganizationFactory(name="Sunrise Solar Installers", slug="sunrise-solar")
    AdderFactory(organization=helios, name="Trenching", amount=1250)
    AdderFactory(organization=sunrise, name="Tree removal", amount=900)
    return make_partnership(helios, sunrise, **FLEXIBLE)


def edit_url(live_server, partnership) -> str:
    return f"{live_server.url}/o/helios-energy/settings/partnerships/{partnership.pk}/edit/"


def options(page, key: str) -> list[str]:
    return page.locator(f'select[name="override-{key}"] option').evaluate_all(
        "options => options.map(o => o.value)"
    )


def preview_row(page, key: str):
    return page.locator("#sync-preview").locator(f'tr[data-category="{key}"]')


def test_rows_follow_the_flags_and_the_preview_is_the_run(
    page, live_server, sign_in, helios_admin, partnership
):
    sign_in(helios_admin)
    page.goto(f"{live_server.url}/o/helios-energy/settings/partnerships/{partnership.pk}/")
    page.get_by_role("region", name="Partnership Details", exact=True).get_by_role(
        "link", name="Edit", exact=True
    ).click()
    adders = page.get_by_label("Adders", exact=True)
    expect(adders).to_be_visible()
    assert options(page, "adders") == ["follow", "off", "flexible", "strict"]
    assert options(page, "logo") == ["follow", "off"]

    adders.select_option("strict")
    expect(preview_row(page, "adders").locator("[data-outcome]")).to_have_attribute(
        "data-outcome", "match"
    )
    expect(preview_row(page, "adders").locator('[data-action="archived"]')).to_have_text(
        "1 archived"
    )
    expect(page.get_by_test_id("preview-sentence")).to_contain_text(
        "Saving changes how these categories sync with Sunrise Solar Installers"
    )

    page.get_by_label("Exclusive").uncheck()  # flexible and strict are no longer offered…
    expect(page.get_by_label("Equipment", exact=True).locator("option")).to_have_count(2)
    assert options(page, "adders") == ["follow", "off", "strict"]  # …but a chosen one is kept
    expect(page.get_by_label("Adders", exact=True)).to_have_value("strict")

    page.get_by_label("Data Sync").uncheck()  # no rows at all
    expect(page.get_by_test_id("override-rows")).to_have_count(0)

    page.get_by_label("Data Sync").check()
    expect(page.get_by_test_id("override-rows")).to_have_count(1)
    page.get_by_label("Exclusive").check()
    expect(page.get_by_test_id("form-mode")).to_have_text("Strict")
    page.get_by_label("Allow Downstream to Edit Synced Settings").check()
    expect(page.get_by_test_id("form-mode")).to_have_text("Flexible")
    expect(page.get_by_label("Adders", exact=True)).to_have_value("strict")  # not cleared
    settled(page)  # the swapped-in rows listen for changes once htmx has settled them
    page.get_by_label("Equipment", exact=True).select_option("off")
    expect(preview_row(page, "equipment").locator("[data-outcome]")).to_have_attribute(
        "data-outcome", "detach"
    )
    shown = {
        key: {
            action: int(text.split()[0])
            for action, text in preview_row(page, key)
            .locator("[data-action]")
            .evaluate_all("spans => spans.map(s => [s.dataset.action, s.textContent])")
        }
        for key in ("adders", "equipment")
    }

    before = set(SyncRun.objects.values_list("pk", flat=True))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Partnership flags saved.")
    runs = SyncRun.objects.exclude(pk__in=before)
    assert {run.categories[0]: run.status for run in runs} == {
        "adders": "succeeded",
        "equipment": "succeeded",
    }
    ran = {run.categories[0]: run.counts.get(run.categories[0], {}) for run in runs}
    assert ran == shown
    assert dict(CategoryOverride.objects.values_list("category", "value")) == {
        "adders": "strict",
        "equipment": "off",
    }
    details = page.get_by_test_id("effective-modes")
    expect(
        details.locator('tr[data-category="adders"] [data-testid="effective-mode"]')
    ).to_have_text("Strict")


def test_rows_follow_the_flags_without_javascript(browser, live_server, helios_admin, partnership):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(helios_admin.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(edit_url(live_server, partnership))
        update = page.get_by_role("button", name="Update preview")

        page.get_by_label("Adders", exact=True).select_option("strict")
        update.click()
        expect(preview_row(page, "adders").locator("[data-outcome]")).to_have_attribute(
            "data-outcome", "match"
        )

        page.get_by_label("Exclusive").uncheck()
        update.click()
        expect(page.get_by_label("Equipment", exact=True).locator("option")).to_have_count(2)
        expect(page.get_by_label("Adders", exact=True)).to_have_value("strict")

        page.get_by_label("Data Sync").uncheck()
        update.click()
        expect(page.get_by_test_id("override-rows")).to_have_count(0)

        page.get_by_label("Data Sync").check()
        page.get_by_label("Exclusive").check()
        update.click()
        expect(page.get_by_label("Adders", exact=True)).to_have_value("strict")
        assert options(page, "adders") == ["follow", "off", "flexible", "strict"]
        assert not CategoryOverride.objects.exists()  # nothing saved by a redraw

        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text("Partnership with Sunrise Solar Installers saved.")).to_be_visible()
        assert CategoryOverride.objects.get().value == "strict"
    finally:
        context.close()
