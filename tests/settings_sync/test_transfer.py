"""Export and import of collection categories (docs/design.md §11): what a user downloads,
what a dry run shows, what applying writes, and bad files that change nothing."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from organizations.validators import INVISIBLE_IN_NAMES
from settings_sync import registry
from settings_sync.models import Import, SyncRun
from settings_sync.project.models import Adder, Equipment
from settings_sync.usage.models import RateEscalation
from tests.factories import (
    AdderFactory,
    ComparableValueFactory,
    EquipmentFactory,
    LicenseFactory,
    OrganizationFactory,
    PersonaFactory,
    RateEscalationFactory,
    make_partnership,
)
from tests.security.world import database_state

pytestmark = pytest.mark.django_db

# The synced collections and the invite-only licenses.
TRANSFERABLE = [category for category in registry.all() if category.transferable]
FACTORIES = {
    "licenses": LicenseFactory,
    "equipment": EquipmentFactory,
    "adders": AdderFactory,
    "personas": PersonaFactory,
    "rate_escalations": RateEscalationFactory,
    "comparable_values": ComparableValueFactory,
}
EQUIPMENT_HEADER = "Kind,Manufacturer,Model,Rating,Unit cost ($),Active\n"


def url(name, organization, category, **query):
    path = reverse(
        f"settings_sync:{name}",
        kwargs={"org": organization.slug, "group": category.group, "key": category.key},
    )
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def content_of(response) -> bytes:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


def upload(client, organization, category, content: bytes, name="items.csv", archive=False):
    data = {"file": SimpleUploadedFile(name, content)}
    if archive:
        data["archive_missing"] = "on"
    return client.post(url("import-upload", organization, category), data)


def dry_run_and_apply(client, organization, category, content, name="items.csv", archive=False):
    response = upload(client, organization, category, content, name, archive)
    assert response.status_code == 302, response.content.decode()[:3000]
    detail = client.get(response["Location"])
    digest = detail.context["plan"].digest
    pk = detail.context["upload"].pk
    return detail, client.post(
        reverse("settings_sync:import-apply", kwargs={"org": organization.slug, "pk": pk}),
        {"digest": digest},
    )


def catalogue(category, organization) -> list[dict]:
    return list(
        category.model.all_objects.filter(organization=organization)
        .order_by("pk")
        .values("pk", "archived_at", *category.synced_fields)
    )


# Export -------------------------------------------------------------------------------------


def test_csv_export_has_a_row_per_item_with_provenance_and_neutralised_formulas(
    admin_client, organization
):
    EquipmentFactory(organization=organization, manufacturer="=HYPERLINK(1)", model="X", rating=-0)
    EquipmentFactory(organization=organization, manufacturer="REC", model="Alpha", rating=410)
    response = admin_client.get(url("export", organization, registry.get("equipment")))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(content_of(response).decode("utf-8-sig"))))
    assert rows[0] == [
        "Kind", "Manufacturer", "Model", "Rating", "Unit cost ($)", "Active", "Synced from",
        "Sync state",
    ]  # fmt: skip
    manufacturers = sorted(row[1] for row in rows[1:])
    assert manufacturers == ["'=HYPERLINK(1)", "REC"]
    assert any(row[3] == "410" and row[7] == "own" for row in rows[1:])


def test_xlsx_export_keeps_numbers_as_numbers(member_client, organization):
    RateEscalationFactory(
        organization=organization, utility_name="-PG&E", annual_escalation_percent=Decimal("-2.5")
    )
    response = member_client.get(
        url("export", organization, registry.get("rate_escalations"), format="xlsx")
    )
    sheet = load_workbook(io.BytesIO(content_of(response)), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][0] == "'-PG&E"
    assert rows[1][1] == -2.5


def test_history_export_follows_the_status_filter(admin_client, channel_manager, partner):
    from tests.factories import MembershipFactory

    admin = MembershipFactory(organization=channel_manager, role="admin").user
    admin_client.force_login(admin)
    partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
    SyncRun.objects.create(partnership=partnership, event="change", mode="non_exclusive")
    SyncRun.objects.create(
        partnership=partnership, event="change", mode="non_exclusive", status="failed"
    )
    path = reverse("settings_sync:history-export", kwargs={"org": channel_manager.slug})
    rows = list(
        csv.reader(io.StringIO(content_of(admin_client.get(path + "?status=failed")).decode()))
    )
    assert rows[0][0].lstrip("\ufeff") == "Run"
    assert [row[9] for row in rows[1:]] == ["Failed"]


# Round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("category", TRANSFERABLE, ids=lambda c: c.key)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_changes_nothing(admin_client, organization, category, fmt):
    for _index in range(3):
        FACTORIES[category.key](organization=organization)
    before = catalogue(category, organization)
    exported = content_of(admin_client.get(url("export", organization, category, format=fmt)))
    response = upload(admin_client, organization, category, exported, f"x.{fmt}", archive=True)
    detail = admin_client.get(response["Location"])
    plan = detail.context["plan"]
    assert plan.counts == {"create": 0, "update": 0, "unchanged": 3, "error": 0, "archive": 0}
    assert not plan.unknown_columns
    assert "importing it would change nothing" in detail.content.decode()
    assert catalogue(category, organization) == before


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(Equipment.Kind.values),
            st.text(  # any name a user can save (no letter that draws nothing)
                st.characters(
                    codec="utf-8",
                    categories=["L", "N", "P", "S"],
                    exclude_characters=INVISIBLE_IN_NAMES,
                ),
                min_size=1,
                max_size=20,
            ).filter(str.strip),
            st.decimals(min_value=0, max_value=10**6, places=2),
            st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2)),
            st.booleans(),
        ),
        max_size=8,
        unique_by=lambda item: (item[0], item[1].casefold()),
    ),
    fmt=st.sampled_from(["csv", "xlsx"]),
)
def test_round_trip_of_generated_equipment(admin_client, organization, items, fmt):
    from tests.security.world import undone

    with undone():
        for kind, name, cost, rating, active in items:
            Equipment.objects.create(
                organization=organization, kind=kind, manufacturer=name, model=name,
                unit_cost=cost, rating=rating, is_active=active,
            )  # fmt: skip
        category = registry.get("equipment")
        before = catalogue(category, organization)
        exported = content_of(admin_client.get(url("export", organization, category, format=fmt)))
        response = upload(admin_client, organization, category, exported, f"x.{fmt}", True)
        plan = admin_client.get(response["Location"]).context["plan"]
        assert plan.counts["unchanged"] == len(before), [r.errors for r in plan.rows]
        assert not plan.has_changes
        assert catalogue(category, organization) == before


@pytest.mark.parametrize("category", TRANSFERABLE, ids=lambda c: c.key)
def test_new_items_are_stored_as_the_orm_stores_them(admin_client, organization, category):
    """An import writes its new items with COPY on PostgreSQL (docs/design.md §11.2, rule X4):
    every column holds what ``bulk_create`` writes for the same plan."""
    from settings_sync import imports, spreadsheets

    for _index in range(3):
        FACTORIES[category.key](organization=organization)
    if category.key == "equipment":
        EquipmentFactory(organization=organization, manufacturer="\uff31cells \u00df", rating=None)
    exported = content_of(admin_client.get(url("export", organization, category)))
    imported, by_orm = OrganizationFactory(), OrganizationFactory()
    applied = imports.apply_import(
        upload=(
            upload_row := imports.start_import(
                organization=imported, category=category, file_name="x.csv",
                content=exported, archive_missing=False, by=None,
            )
        ),
        expected_digest=upload_row.plan_digest,
        by=None,
    )  # fmt: skip
    plan = imports.plan_import(
        category=category,
        organization=by_orm,
        table=spreadsheets.read_table(exported, file_name="x.csv")[1],
        archive_missing=False,
    )
    category.model.objects.bulk_create([row.instance for row in plan.rows])

    def stored(organization) -> list[dict]:
        fields = [
            f.attname
            for f in category.model._meta.concrete_fields
            if f.attname not in {"id", "organization_id", "updated_at"}
        ]
        return list(
            category.model.all_objects.filter(organization=organization)
            .order_by("normalised_key")
            .values(*fields)
        )

    assert applied.counts["create"] == len(stored(imported)) >= 3
    assert stored(imported) == stored(by_orm)


# Dry run and apply --------------------------------------------------------------------------


def test_dry_run_then_apply_is_one_change_for_each_partner(
    client, channel_manager, partner, channel_manager_admin, django_capture_on_commit_callbacks
):
    other = make_partnership(channel_manager, OrganizationFactory(), data_sync_enabled=True)
    ours = make_partnership(channel_manager, partner, data_sync_enabled=True)
    client.force_login(channel_manager_admin)
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    AdderFactory(organization=channel_manager, name="Old one", amount=5)
    SyncRun.objects.all().delete()
    content = (
        "Name;Pricing;Amount;Applied by default;Colour\n"
        "trenching;Fixed ($);1400;no;red\n"
        "Tile roof;fixed;35;yes;blue\n"
        "Main panel upgrade;percent;2.5;;\n"
    ).encode("utf-8-sig")
    category = registry.get("adders")
    with django_capture_on_commit_callbacks(execute=True):
        detail, applied = dry_run_and_apply(
            client, channel_manager, category, content, archive=True
        )
    page = detail.content.decode()
    assert "2 to create, 1 to update, 0 unchanged, 0 with errors" in page
    assert "“Colour”" in page
    assert "Changes Name, Amount." in page  # headers as in the file, not field names
    assert applied.status_code == 302
    names = set(Adder.objects.filter(organization=channel_manager).values_list("name", "amount"))
    assert names == {
        ("trenching", Decimal("1400")), ("Tile roof", Decimal("35")),
        ("Main panel upgrade", Decimal("2.5")),
    }  # fmt: skip
    assert Adder.all_objects.get(name="Old one").archive_reason == "Not in the imported file"
    runs = SyncRun.objects.filter(event="change")
    # One run per partner for the whole file (5 writes), not one per row.
    assert sorted(run.partnership_id for run in runs) == sorted([other.pk, ours.pk])
    assert set(Adder.objects.filter(organization=partner).values_list("name", flat=True)) >= {
        "Tile roof", "Main panel upgrade",
    }  # fmt: skip
    upload_row = Import.objects.get()
    assert upload_row.status == "applied"
    assert upload_row.counts["create"] == 2
    history = client.get(reverse("settings_sync:imports", kwargs={"org": channel_manager.slug}))
    assert "items.csv" in history.content.decode()


def test_licenses_export_without_provenance_and_import_as_own_without_a_fan_out(
    client, channel_manager, partner, channel_manager_admin, django_capture_on_commit_callbacks
):
    make_partnership(channel_manager, partner, data_sync_enabled=True)
    LicenseFactory(organization=channel_manager, number="1045822", expires_on=None)
    client.force_login(channel_manager_admin)
    category = registry.get("licenses")
    exported = content_of(client.get(url("export", channel_manager, category)))
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert rows == [
        ["License type", "Number", "Jurisdiction", "Expires on"],
        ["C-46 Solar Contractor", "1045822", "California", ""],
    ]
    SyncRun.objects.all().delete()
    content = (
        b"License type,Number,Jurisdiction,Expires on\n"
        b"C-46 Solar Contractor,1045822,california,2029-01-31\n"
        b"C-10 Electrical Contractor,998877,Nevada,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        detail, applied = dry_run_and_apply(client, channel_manager, category, content)
    assert "1 to create, 1 to update, 0 unchanged, 0 with errors" in detail.content.decode()
    assert applied.status_code == 302
    licenses = channel_manager.licenses.order_by("number")
    assert [(lic.number, lic.jurisdiction, str(lic.expires_on)) for lic in licenses] == [
        ("1045822", "california", "2029-01-31"), ("998877", "Nevada", "None"),
    ]  # fmt: skip
    # Invite-only data is copied once, at the invitation: an import fans out nothing.
    assert not SyncRun.objects.exists()
    assert not partner.licenses.exists()
    page = client.get(reverse("organizations:organization", kwargs={"org": channel_manager.slug}))
    assert url("import-upload", channel_manager, category) in page.content.decode()


def test_apply_refuses_a_plan_that_changed_since_the_dry_run(admin_client, organization):
    category = registry.get("adders")
    response = upload(admin_client, organization, category, b"Name,Pricing,Amount\nA,fixed,1\n")
    detail = admin_client.get(response["Location"])
    AdderFactory(organization=organization, name="A", amount=9)  # meanwhile
    before = database_state()
    applied = admin_client.post(
        reverse("settings_sync:import-apply", kwargs={"org": organization.slug,
                                                      "pk": detail.context["upload"].pk}),
        {"digest": detail.context["plan"].digest},
    )  # fmt: skip
    assert applied.status_code == 302
    assert (
        "The data changed since this dry run"
        in admin_client.get(applied["Location"]).content.decode()
    )
    assert database_state() == before


# Bad input ----------------------------------------------------------------------------------


def _bomb() -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<x/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (80 * 1024 * 1024))
    return output.getvalue()


def _png() -> bytes:
    from tests.images import image_bytes

    return image_bytes("PNG")


BAD_FILES = {
    "too large": (b"Kind,Manufacturer,Model,Unit cost ($)\n" + b"x" * (5 * 1024 * 1024), "a.csv",
                  "larger than 5 MB"),
    "too many rows": (EQUIPMENT_HEADER.encode()
                      + b"module,A,%d,1\n" * 0 + b"".join(b"module,A,%d,1\n" % i
                                                          for i in range(20_001)),
                      "a.csv", "more than 20,000 rows"),
    "image renamed csv": (None, "a.csv", "not a CSV text file"),
    "zip bomb as xlsx": (None, "a.xlsx", "unpacks to far more data"),
    "not a workbook": (b"Kind,Model\n", "a.xlsx", "not an Excel workbook"),
    "broken encoding": (EQUIPMENT_HEADER.encode() + "module,Café,X,1\n".encode("latin-1"),
                        "a.csv", "Line 2 of the file is not UTF-8"),
    "missing required column": (b"Kind,Manufacturer,Rating\nmodule,A,1\n", "a.csv",
                                "The file has no column for “Model”"),
    "empty": (b"", "a.csv", "is empty."),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_bad_files_are_refused_with_a_message_and_change_nothing(admin_client, organization, case):
    content, name, message = BAD_FILES[case]
    if case == "image renamed csv":
        content = _png()
    if case == "zip bomb as xlsx":
        content = _bomb()
    before = database_state()
    response = upload(admin_client, organization, registry.get("equipment"), content, name)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert database_state() == before


BAD_ROWS = {
    "negative number": ("module,REC,A,1,-5,yes", "Unit cost ($)", "zero or a positive amount"),
    "huge number": ("module,REC,A,1,1e30,yes", "Unit cost ($)", "no more than 12 digits"),
    "unknown kind": ("moon,REC,A,1,5,yes", "Kind", "Select a valid choice"),
    "bad boolean": ("module,REC,A,1,5,perhaps", "Active", "Type yes or no"),
    "duplicate in file": ("module,REC,A,1,5,yes\nmodule,rec,a ,2,6,no", "Model",
                          "Line 2 of the file has the same kind, manufacturer and model"),
    "against archived": ("module,Old,Gone,1,5,yes", "Model", "An archived equipment item"),
    "control character": ("module,REC\u202e,A,1,5,yes", "Manufacturer", ""),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_ROWS, ids=str)
def test_bad_rows_show_line_and_field_and_cannot_be_applied(admin_client, organization, case):
    archived = EquipmentFactory(organization=organization, manufacturer="Old", model="Gone")
    archived.archive(reason="test")
    rows, field, message = BAD_ROWS[case]
    category = registry.get("equipment")
    before = database_state()
    detail, applied = dry_run_and_apply(
        admin_client, organization, category, (EQUIPMENT_HEADER + rows + "\n").encode()
    )
    page = detail.content.decode().replace("&#x27;", "'")
    line = rows.count("\n") + 2
    assert f"Line {line}, {field}: " in page
    assert message in page
    assert "Apply this import" not in page
    assert "Nothing was changed" in admin_client.get(applied["Location"]).content.decode()
    after = database_state()
    del before["settings_sync.Import"], after["settings_sync.Import"]
    assert after == before


def test_formulas_in_workbook_cells_are_refused(admin_client, organization):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Kind", "Manufacturer", "Model", "Unit cost ($)"])
    sheet.append(["module", "REC", "A", "=1+1"])
    output = io.BytesIO()
    workbook.save(output)
    detail, _ = dry_run_and_apply(
        admin_client, organization, registry.get("equipment"), output.getvalue(), "a.xlsx"
    )
    assert "Line 2, Unit cost ($): This cell holds a formula (=1+1)" in detail.content.decode()
    assert not Equipment.objects.exists()


def test_csv_text_that_looks_like_a_formula_is_stored_as_text(admin_client, organization):
    content = b"Utility name,Annual escalation (%)\n'=cmd,2\n@SUM,3\n"
    dry_run_and_apply(admin_client, organization, registry.get("rate_escalations"), content)
    assert set(RateEscalation.objects.values_list("utility_name", flat=True)) == {"=cmd", "@SUM"}


# Who may import -----------------------------------------------------------------------------


def test_a_member_may_export_but_not_import(member_client, organization):
    category = registry.get("equipment")
    assert member_client.get(url("export", organization, category)).status_code == 200
    page = member_client.get(url("page", organization, category)).content.decode()
    assert "Export CSV" in page
    assert ">Import<" not in page.replace(" ", "")
    assert upload(member_client, organization, category, b"x").status_code == 403


def test_a_locked_category_refuses_an_import_before_reading_the_file(
    client, channel_manager, partner, partner_admin
):
    make_partnership(channel_manager, partner, is_exclusive=True, data_sync_enabled=True)
    client.force_login(partner_admin)
    before = database_state()
    response = upload(client, partner, registry.get("adders"), _bomb(), "a.xlsx")
    assert response.status_code == 403
    assert database_state() == before
