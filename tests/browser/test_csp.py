"""In a real browser, under the site's Content-Security-Policy: the main pages and their htmx
interactions work, and Chromium refuses nothing on them (the ``csp_violations`` fixture, used
by every browser test, collects each refusal Chromium reports)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from settings_sync.project.models import Adder
from tests.factories import MembershipFactory, OrganizationFactory, make_partnership
from tests.images import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_main_pages_and_htmx_work_under_the_policy(page, live_server, sign_in, csp_violations):
    helios = OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")
    helios.logo.save("logo.png", ContentFile(image_bytes("PNG")))
    Adder.objects.create(organization=helios, name="Trenching", amount=Decimal("1250"))
    sunrise = OrganizationFactory(name="Sunrise Solar Installers", slug="sunrise-solar")
    OrganizationFactory(name="Summit Solar", slug="summit-solar")
    partnership = make_partnership(helios, sunrise, data_sync_enabled=True)
    user = MembershipFactory(organization=helios, role="admin").user
    user.is_staff = user.is_superuser = True
    user.save()
    sign_in(user)
    base = f"{live_server.url}/o/helios-energy/settings"

    # A page whose scripts, styles, fonts and logo all load.
    page.goto(f"{base}/organization/")
    logo = page.get_by_role("img", name="Current logo of Helios Energy Partners")
    expect(logo).to_be_visible()
    assert logo.evaluate("image => image.naturalWidth") == 16
    page.get_by_role("button", name="Switch organization").click()  # Bootstrap's script runs
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()

    for path in ["/partnerships/", "/project/adders/", "/project/adders/add/", "/sync/"]:
        page.goto(f"{base}{path}")
        expect(page.get_by_role("main")).to_be_visible()

    # htmx: the flag form swapped in place, redrawn when a flag changes.
    page.goto(f"{base}/partnerships/{partnership.pk}/")
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_test_id("form-mode")).to_have_text("Non-exclusive")
    page.get_by_label("Exclusive").check()
    expect(page.get_by_label("Allow Downstream to Edit Synced Settings")).to_be_visible()

    # htmx: suggestions while typing an organization's name.
    page.goto(f"{base}/partnerships/request/")
    page.locator("#id_organization").press_sequentially("Summ")
    expect(page.locator("#organization-suggestions option")).to_have_count(1)

    page.goto(f"{live_server.url}/help/sync/")
    expect(page.get_by_role("main")).to_be_visible()

    # The Django admin runs under the same policy.
    page.goto(f"{live_server.url}/admin/organizations/organization/{helios.pk}/change/")
    expect(page.get_by_role("heading", name="Helios Energy Partners", exact=True)).to_be_visible()
    page.goto(f"{live_server.url}/admin/partnerships/partnership/")
    expect(page.get_by_role("link", name=str(partnership))).to_be_visible()
    assert csp_violations == []
