"""Staff can open every admin list and change page (a smoke test over the registry)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from partnerships.models import Partnership
from partnerships.modes import ALLOW_EDIT_NEEDS_BOTH
from settings_sync import engine
from settings_sync.project.models import Adder
from settings_sync.unsynced.models import FinancingProduct
from settings_sync.usage.models import Persona
from tests.factories import LicenseFactory, MembershipFactory, UserFactory, make_partnership

pytestmark = pytest.mark.django_db


def test_every_admin_page_opens(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    membership = MembershipFactory()
    LicenseFactory().archive(reason="test")
    # A partnership with a sync run and its changes, so every history page has rows.
    upstream = membership.organization
    Adder.objects.create(organization=upstream, name="Trenching", amount=1250)
    Persona.objects.create(organization=upstream, name="EV owner", annual_kwh=14500)
    partnership = make_partnership(upstream, data_sync_enabled=True)
    engine.run(partnership, "link")
    FinancingProduct.objects.create(
        organization=upstream, name="25-year", lender="GoodLeap", apr_percent=7, term_months=300
    )
    for mode in ("off", "strict"):
        assert (
            client.get(
                reverse("admin:partnerships_partnership_changelist"), {"mode": mode}
            ).status_code
            == 200
        )
    assert (
        client.get(reverse("admin:project_adder_changelist"), {"sync_state": "synced"}).status_code
        == 200
    )
    for model in admin.site._registry:
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert client.get(changelist).status_code == 200, changelist
        assert client.get(changelist, {"q": "solar"}).status_code == 200, changelist
        instance = admin.site._registry[model].get_queryset(None).first()
        if instance is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
            assert client.get(change).status_code == 200, change


def test_preview_and_resync_actions(client, django_capture_on_commit_callbacks):
    from partnerships.models import Partnership
    from settings_sync.models import SyncRun

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    membership = MembershipFactory()
    Adder.objects.create(organization=membership.organization, name="Trenching", amount=1250)
    partnership = make_partnership(membership.organization, data_sync_enabled=True)
    changelist = reverse("admin:partnerships_partnership_changelist")
    preview = client.post(
        changelist, {"action": "preview_sync", "_selected_action": [partnership.pk]}
    )
    content = preview.content.decode()
    assert "1 created" in content
    assert not SyncRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(changelist, {"action": "resync", "_selected_action": [partnership.pk]})
    run = SyncRun.objects.get()
    assert (run.event, run.status) == ("resync", "succeeded")
    assert Adder.objects.filter(synced_partnership=partnership).count() == 1
    assert Partnership.objects.count() == 1


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def organization_form(organization, **changes) -> dict:
    """What the admin's change form posts for an organization (no inline rows)."""
    data = {"name": organization.name, "slug": organization.slug}
    for inline in ("memberships", "licenses"):
        data |= {f"{inline}-TOTAL_FORMS": "0", f"{inline}-INITIAL_FORMS": "0"}
    return data | changes


def test_admin_refuses_an_organization_name_with_hidden_characters(staff_client):
    organization = MembershipFactory().organization
    before = organization.name
    change = reverse("admin:organizations_organization_change", args=[organization.pk])
    response = staff_client.post(change, organization_form(organization, name="Helios\u202e"))
    assert response.status_code == 200
    assert "It contains U+202E (right-to-left override)" in str(
        response.context["adminform"].form.errors["name"]
    )
    organization.refresh_from_db()
    assert organization.name == before


def test_admin_refuses_an_adder_name_with_a_line_break(staff_client):
    adder = Adder.objects.create(
        organization=MembershipFactory().organization, name="Trenching", amount=1
    )
    change = reverse("admin:project_adder_change", args=[adder.pk])
    response = staff_client.post(
        change,
        {
            "organization": adder.organization_id,
            "name": "Trench\ning",
            "pricing": "fixed",
            "amount": "1",
        },
    )
    assert response.status_code == 200
    assert "It contains a line break" in str(response.context["adminform"].form.errors["name"])
    adder.refresh_from_db()
    assert adder.name == "Trenching"


def test_admin_refuses_another_organizations_name_beside_the_name(staff_client):
    MembershipFactory(organization__name="Summit Solar")
    organization = MembershipFactory().organization
    before = organization.name
    change = reverse("admin:organizations_organization_change", args=[organization.pk])
    response = staff_client.post(change, organization_form(organization, name="summit solar "))
    assert response.status_code == 200
    assert "already has this name" in str(response.context["adminform"].form.errors["name"])
    organization.refresh_from_db()
    assert organization.name == before


def test_admin_refuses_a_4_mb_proposal_email_body(staff_client):
    from settings_sync.proposal.models import ProposalEmail

    row = ProposalEmail.objects.get(organization=MembershipFactory().organization)
    before = row.body
    change = reverse("admin:proposal_proposalemail_change", args=[row.pk])
    response = staff_client.post(
        change, {"subject": "Proposal", "body": "x" * (4 * 1024 * 1024 - 1000), "cc": ""}
    )
    assert response.status_code == 200
    assert "Ensure this value has at most 10000 characters" in str(
        response.context["adminform"].form.errors["body"]
    )
    row.refresh_from_db()
    assert row.body == before


TWELVE = ", ".join(["8"] * 11)


@pytest.mark.parametrize(
    "profile",
    [
        "[" + "9" * 5000 + "]",  # beyond Python's limit for reading an integer: was a 500
        f"[{TWELVE}, {'1' * 400}]",
        f"[{TWELVE}, 1e999]",
        f"[{TWELVE}, -1e300]",
        f"[{TWELVE}, NaN]",
        f"[{TWELVE}, Infinity]",
    ],
    ids=["5000-digits", "400-digits", "1e999", "-1e300", "NaN", "Infinity"],
)
def test_admin_refuses_huge_or_non_finite_numbers_in_a_monthly_profile(staff_client, profile):
    organization = MembershipFactory().organization
    response = staff_client.post(
        reverse("admin:usage_persona_add"),
        {
            "organization": organization.pk,
            "name": "EV owner",
            "annual_kwh": "14500",
            "monthly_profile": profile,
            "description": "",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["monthly_profile"]
    assert "numbers are ordinary numbers: not NaN or Infinity" in str(errors)
    assert not Persona.objects.filter(organization=organization).exists()


def test_admin_accepts_an_ordinary_monthly_profile(staff_client):
    organization = MembershipFactory().organization
    response = staff_client.post(
        reverse("admin:usage_persona_add"),
        {
            "organization": organization.pk,
            "name": "EV owner",
            "annual_kwh": "14500",
            "monthly_profile": f"[{TWELVE}, 12]",
            "description": "",
        },
    )
    assert response.status_code == 302
    assert Persona.objects.get(organization=organization).monthly_profile == [8] * 11 + [12]


def test_admin_exports_selected_items_as_csv_and_links_to_the_import(staff_client):
    from tests.factories import AdderFactory

    chosen = AdderFactory(name="Trenching", amount=1250)
    AdderFactory(name="Not chosen")
    response = staff_client.post(
        reverse("admin:project_adder_changelist"),
        {"action": "export_csv", "_selected_action": [chosen.pk]},
    )
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[1].startswith("Trenching,fixed,1250,no,")
    assert "Not chosen" not in text
    change = staff_client.get(reverse("admin:project_adder_change", args=[chosen.pk]))
    assert (
        f"/o/{chosen.organization.slug}/settings/project/adders/import/" in change.content.decode()
    )


@pytest.mark.parametrize("adding", [True, False], ids=["add", "change"])
def test_admin_shows_an_impossible_flag_combination_once(staff_client, adding):
    """Rule F1 is said once, beside Allow Edit (it was said by the form and the model)."""
    upstream, downstream = MembershipFactory().organization, MembershipFactory().organization
    data = {
        "upstream": upstream.pk,
        "downstream": downstream.pk,
        "data_sync_enabled": "on",
        "allow_downstream_edit": "on",  # without Exclusive
    }
    if adding:
        url = reverse("admin:partnerships_partnership_add")
    else:
        partnership = make_partnership(upstream, downstream)
        url = reverse("admin:partnerships_partnership_change", args=[partnership.pk])
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert response.content.decode().count(ALLOW_EDIT_NEEDS_BOTH) == 1
    errors = response.context["adminform"].form.errors
    assert errors == {"allow_downstream_edit": [ALLOW_EDIT_NEEDS_BOTH]}
    assert Partnership.objects.filter(allow_downstream_edit=True).count() == 0
