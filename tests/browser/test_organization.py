"""In a real browser: sign in, switch organization, rename it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from organizations.models import Organization
from tests.factories import LicenseFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_switch_organization_and_rename(page, live_server, sign_in, screenshot):
    helios = MembershipFactory(
        organization__name="Helios Energy Partners", organization__slug="helios-energy"
    )
    user = helios.user
    sunrise = MembershipFactory(
        user=user,
        organization__name="Sunrise Solar Installers",
        organization__slug="sunrise-solar",
    ).organization
    LicenseFactory(organization=helios.organization, number="1045821")
    LicenseFactory(organization=sunrise, license_type="C-10 Electrical", number="998104")

    page.goto(live_server.url)
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    sign_in(user)

    current = page.get_by_test_id("current-organization")
    expect(current).to_have_text("Helios Energy Partners")
    expect(page.get_by_role("cell", name="1045821", exact=True)).to_be_visible()
    screenshot("organization-tab")

    page.get_by_role("button", name="Switch organization").click()
    page.get_by_role("link", name="Sunrise Solar Installers").click()
    expect(current).to_have_text("Sunrise Solar Installers")
    expect(page.get_by_role("cell", name="998104", exact=True)).to_be_visible()

    page.get_by_label("Name").fill("Sunrise Solar & Storage")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_contain_text("Organization details saved.")
    expect(current).to_have_text("Sunrise Solar & Storage")
    assert Organization.objects.get(pk=sunrise.pk).name == "Sunrise Solar & Storage"

    # The switch is remembered: the home page opens the organization used last.
    page.goto(live_server.url)
    expect(current).to_have_text("Sunrise Solar & Storage")


def test_member_sees_read_only_tab(page, live_server, sign_in):
    membership = MembershipFactory(role="member", organization__name="Blue Ridge Electric")
    sign_in(membership.user)
    expect(page.get_by_text("Read-only: you are a member")).to_be_visible()
    expect(page.get_by_role("button", name="Save profile")).to_have_count(0)
    expect(page.get_by_role("link", name="Add license")).to_have_count(0)
