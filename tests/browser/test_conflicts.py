"""In a real browser: a flexible partner sees "Update available", opens the comparison in place
(htmx, under the item's row), keeps its version with a note, then takes the channel manager's
next version. Also the README's screenshot of the comparison."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from partnerships import services
from settings_sync import engine, policy
from settings_sync.models import SyncChange
from settings_sync.project.models import Adder
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def change_upstream(helios, amount: str) -> None:
    Adder.objects.filter(organization=helios, name="Trenching").update(amount=Decimal(amount))


def test_take_and_keep_in_place(page, live_server, sign_in, screenshot):
    helios = OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")
    coastal = OrganizationFactory(name="Coastal Roofing & Solar", slug="coastal-roofing")
    Adder.objects.create(organization=helios, name="Trenching", amount=1250)
    Adder.objects.create(organization=helios, name="Tile roof", amount=Decimal("0.35"))
    partnership = services.create_partnership(
        helios,
        coastal,
        by=None,
        is_exclusive=True,
        data_sync_enabled=True,
        allow_downstream_edit=True,
    )
    copy = Adder.objects.get(organization=coastal, name="Trenching")
    copy.amount = Decimal("1400")
    copy.save()
    change_upstream(helios, "1325")
    engine.run(partnership, policy.CHANGE)
    admin = MembershipFactory(organization=coastal, role="admin").user

    sign_in(admin)
    page.goto(f"{live_server.url}/o/coastal-roofing/settings/project/adders/")
    expect(page.get_by_test_id("tab-badge")).to_have_text("1 update available")
    notice = page.get_by_role("link", name="Update available from Helios Energy Partners")
    notice.click()
    comparison = page.get_by_test_id("comparison-row")
    expect(comparison).to_be_visible()
    assert page.url.endswith("/settings/project/adders/")  # opened in place, no navigation
    amount = comparison.locator("tr[data-field='amount']")
    expect(amount.locator("td")).to_have_text(["1325", "1400", "1250"])
    screenshot("update-available")

    comparison.get_by_label("Why you keep your version (optional)").fill("Sandy soil costs more")
    comparison.get_by_role("button", name="Keep mine").click()
    expect(page.get_by_role("status")).to_contain_text("You kept your version of “Trenching”")
    expect(page.get_by_test_id("update-available")).to_have_count(0)
    assert Adder.objects.get(pk=copy.pk).amount == 1400
    assert SyncChange.objects.get(action="kept_mine").note == "Sandy soil costs more"

    change_upstream(helios, "1350")
    engine.run(partnership, policy.CHANGE)
    page.reload()
    page.get_by_role("link", name="Update available from Helios Energy Partners").click()
    page.get_by_test_id("comparison-row").get_by_role("button", name="Take theirs").click()
    expect(page.get_by_role("status")).to_contain_text("now has Helios Energy Partners' version")
    expect(page.get_by_test_id("update-available")).to_have_count(0)
    item = Adder.objects.get(pk=copy.pk)
    assert item.amount == 1350
    assert item.sync_state == "synced"
