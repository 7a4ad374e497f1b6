"""In a real browser: a partnership's flags edited in place (htmx) and without JavaScript,
the partner's read-only view, and the Partnerships tab with a partner in each mode."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from partnerships.models import Partnership
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, make_partnership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ALLOW_EDIT = "Allow Downstream to Edit Synced Settings"


@pytest.fixture
def helios(db):
    return OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")


@pytest.fixture
def helios_admin(helios):
    return MembershipFactory(organization=helios, role="admin").user


@pytest.fixture
def sunrise(db):
    return OrganizationFactory(name="Sunrise Solar Installers", slug="sunrise-solar")


@pytest.fixture
def partnership(helios, sunrise):
    """Data Sync only: the Non-exclusive mode."""
    return make_partnership(helios, sunrise, data_sync_enabled=True)


def _details(page):
    return page.get_by_role("region", name="Partnership Details", exact=True)


def _edit_form(page):
    return page.get_by_role("region", name="Edit Partnership Details", exact=True)


def _flags(partnership: Partnership) -> tuple[bool, bool, bool]:
    partnership.refresh_from_db()
    return (
        partnership.is_exclusive,
        partnership.data_sync_enabled,
        partnership.allow_downstream_edit,
    )


def test_channel_manager_edits_flags_in_place(
    page, live_server, sign_in, screenshot, helios_admin, partnership
):
    sign_in(helios_admin)
    page.get_by_role("navigation", name="Organization Settings").get_by_role(
        "link", name="Partnerships"
    ).click()
    expect(page).to_have_url(f"{live_server.url}/o/helios-energy/settings/partnerships/")
    page.get_by_role("link", name="Sunrise Solar Installers (sunrise-solar)", exact=True).click()
    detail_url = f"{live_server.url}/o/helios-energy/settings/partnerships/{partnership.pk}/"
    expect(page).to_have_url(detail_url)
    expect(_details(page).get_by_test_id("mode-badge")).to_have_text("Non-exclusive")

    _details(page).get_by_role("link", name="Edit", exact=True).click()
    form = _edit_form(page)
    expect(form).to_be_visible()
    expect(page).to_have_url(detail_url)  # swapped in by htmx, not a new page

    mode = page.get_by_test_id("form-mode")
    exclusive = page.get_by_label("Exclusive")
    data_sync = page.get_by_label("Data Sync")
    allow = page.get_by_label(ALLOW_EDIT)
    expect(mode).to_have_text("Non-exclusive")
    expect(data_sync).to_be_checked()
    expect(allow).to_have_count(0)

    exclusive.check()
    expect(allow).to_be_visible()
    expect(allow).not_to_be_checked()
    expect(data_sync).to_be_checked()
    expect(mode).to_have_text("Strict")

    allow.check()
    expect(mode).to_have_text("Flexible")

    data_sync.uncheck()
    expect(allow).to_have_count(0)
    expect(mode).to_have_text("Off")

    data_sync.check()
    expect(allow).to_be_visible()
    expect(allow).not_to_be_checked()  # cleared while it was hidden
    expect(mode).to_have_text("Strict")

    allow.check()
    expect(mode).to_have_text("Flexible")
    expect(exclusive).to_be_checked()
    expect(data_sync).to_be_checked()
    expect(allow).to_be_checked()
    screenshot("partnership-flags-form")

    page.get_by_role("button", name="Save", exact=True).click()
    details = _details(page)
    expect(details.get_by_role("status")).to_have_text("Partnership flags saved.")
    expect(details.get_by_test_id("mode-badge")).to_have_text("Flexible")
    expect(details.get_by_test_id("flag-allow_downstream_edit")).to_have_text("Yes")
    expect(form).to_have_count(0)
    expect(page).to_have_url(detail_url)
    assert _flags(partnership) == (True, True, True)

    page.reload()
    expect(_details(page).get_by_test_id("mode-badge")).to_have_text("Flexible")


def test_flags_edit_without_javascript(browser, live_server, helios_admin, partnership):
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(helios_admin.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("current-organization")).to_have_text("Helios Energy Partners")

        detail_url = f"{live_server.url}/o/helios-energy/settings/partnerships/{partnership.pk}/"
        page.goto(detail_url)
        expect(_details(page).get_by_test_id("mode-badge")).to_have_text("Non-exclusive")
        _details(page).get_by_role("link", name="Edit", exact=True).click()
        expect(page).to_have_url(f"{detail_url}edit/")
        expect(_edit_form(page)).to_be_visible()

        page.get_by_label("Data Sync").uncheck()
        page.get_by_role("button", name="Save", exact=True).click()

        expect(page).to_have_url(detail_url)
        expect(page.get_by_text("Partnership with Sunrise Solar Installers saved.")).to_be_visible()
        details = _details(page)
        expect(details.get_by_test_id("mode-badge")).to_have_text("Off")
        expect(details.get_by_test_id("flag-data_sync_enabled")).to_have_text("Off")
        assert _flags(partnership) == (False, False, False)
    finally:
        context.close()


def test_downstream_admin_sees_flags_read_only(page, live_server, sign_in, sunrise, partnership):
    sunrise_admin = MembershipFactory(organization=sunrise, role="admin").user
    sign_in(sunrise_admin)
    expect(page.get_by_test_id("current-organization")).to_have_text("Sunrise Solar Installers")
    page.get_by_role("navigation", name="Organization Settings").get_by_role(
        "link", name="Partnerships"
    ).click()
    channel_managers = page.get_by_role("region", name="Channel managers")
    channel_managers.get_by_role(
        "link", name="Helios Energy Partners (helios-energy)", exact=True
    ).click()

    detail_url = f"{live_server.url}/o/sunrise-solar/settings/partnerships/{partnership.pk}/"
    expect(page).to_have_url(detail_url)
    details = _details(page)
    expect(details).to_be_visible()
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(details.get_by_test_id("flag-is_exclusive")).to_have_text("No")
    expect(details.get_by_test_id("flag-data_sync_enabled")).to_have_text("On")
    expect(details.get_by_test_id("mode-badge")).to_have_text("Non-exclusive")
    expect(details).to_contain_text("Helios Energy Partners (helios-energy) sets these flags.")

    response = page.goto(f"{detail_url}edit/")
    assert response is not None
    assert response.status == 403
    assert _flags(partnership) == (False, True, False)


def test_partnerships_tab_lists_partners_in_every_mode(
    page, live_server, sign_in, screenshot, helios, helios_admin
):
    partners = {
        "Blue Ridge Electric": ({}, "Off"),
        "Canyon Roofing & Solar": ({"data_sync_enabled": True}, "Non-exclusive"),
        "Delta Power Co": (
            {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
            "Flexible",
        ),
        "Evergreen Installers": ({"is_exclusive": True, "data_sync_enabled": True}, "Strict"),
    }
    shown = {}
    for name, (flags, _label) in partners.items():
        partner = OrganizationFactory(name=name)
        make_partnership(helios, partner, **flags)
        shown[name] = partner.name_with_slug

    sign_in(helios_admin)
    page.get_by_role("navigation", name="Organization Settings").get_by_role(
        "link", name="Partnerships"
    ).click()
    downstream = page.get_by_role("region", name="Downstream partners")
    expect(downstream).to_contain_text("4 partners")
    for name, (_flags, label) in partners.items():
        row = downstream.get_by_role("row").filter(
            has=page.get_by_role("link", name=shown[name], exact=True)
        )
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("mode-badge")).to_have_text(label)
    screenshot("partnerships-tab")
