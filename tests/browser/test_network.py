"""In a real browser: a change at the top of a three-level network, followed from the run page
(what started it, what it started) to an installer's list, where the distributor's items are
read-only; and the Partnerships tab switched to the whole network, searched."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from settings_sync.models import SyncRun
from settings_sync.project.models import Adder
from tests.factories import MembershipFactory, OrganizationFactory, make_partnership
from tests.settings_sync.catalogue_data import FLEXIBLE, NON_EXCLUSIVE, STRICT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def network(db):
    """Helios → Sunrise Solar (strict) → Bright Path (flexible) and Canyon Crew (strict);
    Helios → Coastal Roofing (non-exclusive). Runs apply as each partnership commits."""
    helios = OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")
    Adder.objects.create(organization=helios, name="Trenching", amount=1250)
    Adder.objects.create(organization=helios, name="Tile roof", amount="0.35", pricing="per_watt")
    sunrise = OrganizationFactory(name="Sunrise Solar", slug="sunrise-solar")
    coastal = OrganizationFactory(name="Coastal Roofing", slug="coastal-roofing")
    bright = OrganizationFactory(name="Bright Path Installers", slug="bright-path")
    canyon = OrganizationFactory(name="Canyon Crew Solar", slug="canyon-crew")
    Adder.objects.create(organization=bright, name="Ladder rental", amount=80)
    make_partnership(sunrise, bright, **FLEXIBLE)
    make_partnership(sunrise, canyon, **STRICT)
    make_partnership(helios, sunrise, **STRICT)
    make_partnership(helios, coastal, **NON_EXCLUSIVE)
    return {"helios": helios, "sunrise": sunrise, "bright": bright, "canyon": canyon}


def test_a_change_travels_down_and_the_run_page_shows_the_tree(
    page, live_server, sign_in, screenshot, network
):
    helios = network["helios"]
    sign_in(MembershipFactory(organization=helios, role="admin").user)
    page.goto(f"{live_server.url}/o/helios-energy/settings/project/adders/")
    page.get_by_role("link", name="Edit Trenching").click()
    page.get_by_label("Amount").fill("1400")
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_text("“Trenching” saved.")).to_be_visible()

    into_sunrise = SyncRun.objects.filter(
        partnership__downstream=network["sunrise"], event="change"
    ).latest("pk")
    page.goto(f"{live_server.url}/o/helios-energy/settings/sync/runs/{into_sunrise.pk}/")
    cascade = page.get_by_test_id("cascade")
    expect(cascade).to_contain_text("This run changed Sunrise Solar, so it started these runs:")
    expect(cascade.get_by_test_id("cascade-run")).to_have_count(2)
    expect(cascade).to_contain_text("Sunrise Solar → Bright Path Installers")
    expect(cascade).to_contain_text("Sunrise Solar → Canyon Crew Solar")
    screenshot("run-cascade")

    # The installer's side: its run names the run above, and Helios's item is locked.
    bright = network["bright"]
    page.context.clear_cookies()  # signed out
    sign_in(MembershipFactory(organization=bright, role="admin").user)
    into_bright = into_sunrise.caused.get(partnership__downstream=bright)
    page.goto(f"{live_server.url}/o/bright-path/settings/sync/runs/{into_bright.pk}/")
    expect(page.get_by_test_id("cascade")).to_contain_text(
        f"Started by run #{into_sunrise.pk} (Helios Energy Partners → Sunrise Solar)"
    )
    page.goto(f"{live_server.url}/o/bright-path/settings/project/adders/")
    trenching = page.get_by_role("row").filter(has_text="Trenching")
    expect(trenching).to_contain_text("1400")
    expect(trenching).to_contain_text("Managed by Helios Energy Partners · synced from Sunrise")
    expect(trenching.get_by_role("link", name="Edit Trenching")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit Ladder rental")).to_be_visible()
    screenshot("chained-locks")


def test_the_whole_network_on_the_partnerships_tab(page, live_server, sign_in, screenshot, network):
    sign_in(MembershipFactory(organization=network["helios"], role="member").user)
    page.goto(f"{live_server.url}/o/helios-energy/settings/partnerships/")
    page.get_by_role("link", name="Whole network").click()
    rows = page.get_by_test_id("network-row")
    expect(rows).to_have_count(4)
    expect(rows.nth(2)).to_contain_text("Bright Path Installers")
    expect(rows.nth(2)).to_contain_text("2 levels down")
    expect(rows.nth(2)).to_contain_text("Sunrise Solar")
    expect(rows.nth(2)).to_contain_text("In sync")
    screenshot("whole-network")

    page.get_by_label("Search the network by organization name").fill("canyon")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Canyon Crew Solar")
    page.get_by_role("link", name="Direct partners").click()
    expect(page.get_by_role("heading", name="Downstream partners")).to_be_visible()
