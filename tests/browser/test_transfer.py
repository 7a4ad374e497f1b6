"""In a real browser: a channel manager imports equipment from a CSV with a bad row, sees the
dry run name its line and field, uploads the corrected file, applies it, and its partner gets
the items (immediate task backend: the fan-out runs on commit)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from settings_sync.models import Import, SyncRun
from settings_sync.project.models import Equipment
from tests.factories import EquipmentFactory, make_partnership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "Kind,Manufacturer,Model,Rating,Unit cost ($),Active\n"
BAD = (
    HEADER
    + "Module,REC,Alpha Pure 410,410,265,yes\n"
    + "module,Qcells,Q.Peak Duo 400,400,-240,yes\n"  # a negative cost: line 3, Unit cost ($)
    + "inverter,Enphase,IQ8M,330,189.50,yes\n"
    + "battery,Tesla,Powerwall 3,13.5,9200,no\n"
)
FIXED = BAD.replace(",-240,", ",240,")


def _choose(page, name: str, content: str) -> None:
    page.get_by_label("File:", exact=True).set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": content.encode()}]
    )
    page.get_by_role("button", name="Upload and show the dry run").click()


def test_import_with_a_bad_row_then_fixed_reaches_the_partner(
    page, live_server, sign_in, screenshot, channel_manager, channel_manager_admin, partner,
    partner_admin,
):  # fmt: skip
    partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
    EquipmentFactory(
        organization=channel_manager, kind="module", manufacturer="REC",
        model="Alpha Pure 410", rating=410, unit_cost=250,
    )  # fmt: skip
    SyncRun.objects.all().delete()
    equipment_page = f"{live_server.url}/o/{channel_manager.slug}/settings/project/equipment/"

    sign_in(channel_manager_admin)
    page.goto(equipment_page)
    page.get_by_role("link", name="Import").click()
    _choose(page, "equipment.csv", BAD)
    expect(page.get_by_test_id("import-totals")).to_have_text(
        "The file has 4 rows: 2 to create, 1 to update, 0 unchanged, 1 with errors."
    )
    errors = page.get_by_test_id("import-errors")
    expect(errors).to_contain_text("1 row has errors.")
    expect(page.get_by_test_id("import-row").nth(0)).to_contain_text("Changes Unit cost ($).")
    expect(page.get_by_test_id("import-row").nth(1)).to_contain_text(
        "Line 3, Unit cost ($): Enter zero or a positive amount."
    )
    expect(page.get_by_role("button", name="Apply this import")).to_have_count(0)
    screenshot("import-dry-run")

    errors.get_by_role("link", name="Upload a corrected file").click()
    _choose(page, "equipment.csv", FIXED)
    expect(page.get_by_test_id("import-totals")).to_have_text(
        "The file has 4 rows: 3 to create, 1 to update, 0 unchanged, 0 with errors."
    )
    expect(page.get_by_test_id("import-errors")).to_have_count(0)
    page.get_by_role("button", name="Apply this import").click()
    expect(page.get_by_text("Imported equipment.csv: 3 created, 1 updated")).to_be_visible()
    expect(page.get_by_test_id("item-row")).to_have_count(4)

    assert list(Import.objects.order_by("pk").values_list("status", flat=True)) == [
        "planned", "applied",
    ]  # fmt: skip
    # The whole file is one change: one run for the partner.
    run = SyncRun.objects.get(partnership=partnership)
    assert (run.event, run.status) == ("change", "succeeded")

    page.context.clear_cookies()
    sign_in(partner_admin)
    page.goto(f"{live_server.url}/o/{partner.slug}/settings/project/equipment/")
    rows = page.get_by_test_id("item-row")
    expect(rows).to_have_count(4)
    for model in ("Alpha Pure 410", "Q.Peak Duo 400", "IQ8M", "Powerwall 3"):
        expect(rows.filter(has_text=model)).to_contain_text("Synced from Helios Energy Partners")
    assert Equipment.objects.get(organization=partner, model="Q.Peak Duo 400").unit_cost == 240
