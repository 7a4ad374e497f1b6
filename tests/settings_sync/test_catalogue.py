"""The settings catalogue through its pages: every category listed, added, edited and archived
(or, for singletons, edited) by an admin and read by a member; bad input refused with nothing
changed; strict partnerships lock the synced categories; divergence read from content."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from settings_sync import catalogue, registry
from settings_sync.locks import is_locked
from settings_sync.project.models import Adder, Equipment
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_partnership

pytestmark = pytest.mark.django_db

#: valid input for every page that has items, and the field that names an item
VALID = {
    "equipment": {
        "kind": "module",
        "manufacturer": "REC Solar",
        "model": "Alpha Pure-R 410",
        "rating": "410",
        "unit_cost": "265.00",
        "is_active": "on",
    },
    "adders": {"name": "Tile roof", "pricing": "per_watt", "amount": "0.35"},
    "personas": {
        "name": "EV owner",
        "annual_kwh": "14500",
        "monthly_profile": "7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7",
        "description": "Charges one car at home.",
    },
    "rate_escalations": {
        "utility_name": "Pacific Gas & Electric",
        "annual_escalation_percent": "6.5",
    },
    "comparable_values": {"label": "Trees planted", "unit": "trees", "factor_per_mwh": "16.5"},
    "licenses": {
        "license_type": "C-46 Solar Contractor",
        "number": "1045822",
        "jurisdiction": "California",
        "expires_on": "2028-06-30",
    },
    "proposal_templates": {"name": "Standard", "description": "8 pages", "page_count": "8"},
    "financing_products": {
        "name": "25-year loan",
        "lender": "GoodLeap",
        "apr_percent": "6.99",
        "term_months": "300",
        "dealer_fee_percent": "25",
        "is_active": "on",
    },
    "integrations": {"provider": "salesforce", "account": "helios", "is_enabled": "on"},
}
SINGLETONS = {
    "default_costs": {
        "module_cost_per_watt": "0.42",
        "inverter_cost_per_watt": "0.18",
        "battery_cost_per_kwh": "620",
        "energy_efficiency_cost": "1500",
        "project_cost_per_watt": "2.65",
    },
    "installation_dates": {"contract_to_install_days": "28", "install_to_pto_days": "18"},
    "proposal_expiration": {"days_valid": "21"},
    "proposal_email": {
        "subject": "Your proposal",
        "body": "Hello",
        "reply_to": "proposals@example.com",
        "cc": "a@example.com, b@example.com",
    },
}
LIST_PAGES = [page for page in catalogue.all_pages() if page.has_page and page.is_list]
FORM_PAGES = [page for page in catalogue.all_pages() if page.has_page and not page.is_list]


def url(name, organization, page, *args):
    return reverse(f"settings_sync:{name}", args=[organization.slug, page.group, page.key, *args])


def count(page, organization):
    return page.model.objects.filter(organization=organization).count()


def test_every_page_is_covered():
    assert {page.key for page in LIST_PAGES} == set(VALID)
    assert {page.key for page in FORM_PAGES} == set(SINGLETONS)


@pytest.mark.parametrize("page", LIST_PAGES, ids=lambda page: page.key)
def test_admin_lists_adds_edits_and_archives(client, page):
    organization = OrganizationFactory()
    admin = MembershipFactory(organization=organization, role="admin").user
    client.force_login(admin)
    assert client.get(url("page", organization, page)).status_code == 200
    response = client.post(url("add", organization, page), VALID[page.key])
    assert response.status_code == 302, response.content.decode()[:2000]
    item = page.model.objects.get(organization=organization)
    listing = client.get(url("page", organization, page)).content.decode()
    assert 'data-testid="item-row"' in listing
    edited = {**VALID[page.key]}
    first_text = next(
        k
        for k, v in edited.items()
        if k not in ("kind", "pricing", "provider")
        and not v.replace(".", "").isdigit()
        and v != "on"
    )
    edited[first_text] = edited[first_text] + " 2"
    assert client.post(url("edit", organization, page, item.pk), edited).status_code == 302
    item.refresh_from_db()
    assert str(getattr(item, first_text)).endswith(" 2")
    assert "Delete" in client.get(url("archive", organization, page, item.pk)).content.decode()
    assert client.post(url("archive", organization, page, item.pk)).status_code == 302
    assert count(page, organization) == 0
    if hasattr(page.model, "all_objects"):
        archived = page.model.all_objects.get(pk=item.pk)
        assert archived.archived_by == admin
        assert archived.archived_at is not None


@pytest.mark.parametrize("page", FORM_PAGES, ids=lambda page: page.key)
def test_admin_edits_singletons(client, page):
    organization = OrganizationFactory()
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    response = client.post(url("page", organization, page), SINGLETONS[page.key])
    assert response.status_code == 302, response.content.decode()[:2000]
    row = page.model.objects.get(organization=organization)
    for name, value in SINGLETONS[page.key].items():
        assert str(getattr(row, name)).startswith(value.split(",")[0]), name


@pytest.mark.parametrize("page", LIST_PAGES + FORM_PAGES, ids=lambda page: page.key)
def test_member_reads_and_cannot_change(client, page):
    organization = OrganizationFactory()
    client.force_login(MembershipFactory(organization=organization, role="member").user)
    content = client.get(url("page", organization, page)).content.decode()
    assert "Save " not in content
    assert "Add " + page.__dict__.get("item_label", "") not in content or not page.is_list
    data = VALID.get(page.key) or SINGLETONS[page.key]
    target = url("add", organization, page) if page.is_list else url("page", organization, page)
    rows = page.model.objects.count()
    assert client.post(target, data).status_code == 403
    assert page.model.objects.count() == rows


@pytest.mark.parametrize("page", LIST_PAGES, ids=lambda page: page.key)
def test_other_organizations_items_are_not_found(client, page):
    mine = MembershipFactory(role="admin")
    other = OrganizationFactory()
    client.force_login(mine.user)
    client.force_login(MembershipFactory(organization=other, role="admin").user)
    client.post(url("add", other, page), VALID[page.key])
    theirs = page.model.objects.get(organization=other)
    client.force_login(mine.user)
    assert client.get(url("page", other, page)).status_code == 404
    for name in ("edit", "archive"):
        assert (
            client.post(url(name, mine.organization, page, theirs.pk), VALID[page.key]).status_code
            == 404
        )
    assert page.model.objects.filter(pk=theirs.pk).exists()


BAD = [
    ("equipment", {"unit_cost": "-1"}, "unit_cost", "Enter zero or a positive amount."),
    ("adders", {"amount": "-5"}, "amount", "Enter zero or a positive amount."),
    ("adders", {"pricing": "percent", "amount": "101"}, "amount", "cannot be more than 100%"),
    ("personas", {"annual_kwh": "0"}, "annual_kwh", "Enter an annual usage of at least 1."),
    (
        "personas",
        {"monthly_profile": "10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10"},
        "monthly_profile",
        "must add up to 100",
    ),
    ("personas", {"monthly_profile": "10, 10, 10"}, "monthly_profile", "exactly 12 monthly shares"),
    (
        "rate_escalations",
        {"annual_escalation_percent": "-10.01"},
        "annual_escalation_percent",
        "at least -10",
    ),
    (
        "rate_escalations",
        {"annual_escalation_percent": "25.01"},
        "annual_escalation_percent",
        "at most 25",
    ),
    (
        "comparable_values",
        {"factor_per_mwh": "-1"},
        "factor_per_mwh",
        "Enter zero or a positive amount.",
    ),
]


@pytest.mark.parametrize(("key", "change", "field", "message"), BAD, ids=lambda v: str(v)[:20])
def test_bad_collection_input_is_refused(client, key, change, field, message):
    page = catalogue.page_or_404(registry.get(key).group, key)
    organization = OrganizationFactory()
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    response = client.post(url("add", organization, page), {**VALID[key], **change})
    assert response.status_code == 400
    content = response.content.decode()
    assert message in content
    assert f'id="id_{field}_error"' in content
    assert count(page, organization) == 0


@pytest.mark.parametrize(
    "page",
    [p for p in LIST_PAGES if p.key in registry._BY_KEY and registry.get(p.key).natural_key],
    ids=lambda page: page.key,
)
def test_duplicate_natural_key_is_refused_beside_the_field(client, page):
    organization = OrganizationFactory()
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    assert client.post(url("add", organization, page), VALID[page.key]).status_code == 302
    natural_key = registry.get(page.key).natural_key
    shouting = {**VALID[page.key]}
    for name in natural_key:
        if name not in ("kind",):
            shouting[name] = f"  {shouting[name].upper()} "
    response = client.post(url("add", organization, page), shouting)
    assert response.status_code == 400
    assert "already has" in response.content.decode()
    assert count(page, organization) == 1


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ("default_costs", {"module_cost_per_watt": "-0.01"}, "Enter zero or a positive amount."),
        ("installation_dates", {"install_to_pto_days": "366"}, "at most 365"),
        ("proposal_expiration", {"days_valid": "0"}, "at least 1"),
        ("proposal_expiration", {"days_valid": "366"}, "at most 365"),
        ("proposal_email", {"reply_to": "not-an-email"}, "Enter a valid email address."),
        ("proposal_email", {"cc": "a@example.com, nope"}, "not valid email addresses: nope"),
    ],
)
def test_bad_singleton_input_is_refused(client, key, change, message):
    page = catalogue.page_or_404(registry.get(key).group, key)
    organization = OrganizationFactory()
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    before = page.model.objects.get(organization=organization).synced_values()
    response = client.post(url("page", organization, page), {**SINGLETONS[key], **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert page.model.objects.get(organization=organization).synced_values() == before


LOCKABLE = [p for p in LIST_PAGES + FORM_PAGES if getattr(p, "synced", False) and p.lockable]


@pytest.mark.parametrize("page", LOCKABLE, ids=lambda page: page.key)
def test_strict_partnership_locks_every_synced_category(client, page):
    upstream = OrganizationFactory(name="Helios Energy Partners")
    partner = OrganizationFactory()
    make_partnership(upstream, partner, is_exclusive=True, data_sync_enabled=True)
    assert is_locked(partner, page.key)
    client.force_login(MembershipFactory(organization=partner, role="admin").user)
    content = client.get(url("page", partner, page)).content.decode()
    assert "Managed by Helios Energy Partners." in content
    assert "Save " not in content
    rows = page.model.objects.count()
    if page.is_list:
        item = page.model.objects.create(organization=partner, **_model_values(page.key))
        assert client.get(url("add", partner, page)).status_code == 403
        assert client.post(url("add", partner, page), VALID[page.key]).status_code == 403
        assert client.post(url("edit", partner, page, item.pk), VALID[page.key]).status_code == 403
        assert client.post(url("archive", partner, page, item.pk)).status_code == 403
        assert page.model.objects.count() == rows + 1
    else:
        before = page.model.objects.get(organization=partner).synced_values()
        assert client.post(url("page", partner, page), SINGLETONS[page.key]).status_code == 403
        assert page.model.objects.get(organization=partner).synced_values() == before


@pytest.mark.parametrize(
    "mode_flags",
    [
        {"data_sync_enabled": True},
        {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
    ],
    ids=["non_exclusive", "flexible"],
)
@pytest.mark.parametrize("page", LOCKABLE, ids=lambda page: page.key)
def test_flexible_and_non_exclusive_partners_edit_freely(client, page, mode_flags):
    partner = OrganizationFactory()
    make_partnership(OrganizationFactory(), partner, **mode_flags)
    assert not is_locked(partner, page.key)
    client.force_login(MembershipFactory(organization=partner, role="admin").user)
    target = url("add", partner, page) if page.is_list else url("page", partner, page)
    data = VALID.get(page.key) or SINGLETONS[page.key]
    assert client.post(target, data).status_code == 302


def test_invite_only_and_never_synced_pages_are_never_locked(client):
    partner = OrganizationFactory()
    make_partnership(OrganizationFactory(), partner, is_exclusive=True, data_sync_enabled=True)
    client.force_login(MembershipFactory(organization=partner, role="admin").user)
    for page in LIST_PAGES:
        if not (getattr(page, "synced", False) and page.lockable):
            assert client.post(url("add", partner, page), VALID[page.key]).status_code == 302, (
                page.key
            )
    assert not is_locked(partner, "licenses")
    assert not is_locked(partner, "logo")


def _model_values(key: str) -> dict:
    return {
        "equipment": {"kind": "module", "manufacturer": "X", "model": "Y", "unit_cost": 1},
        "adders": {"name": "Existing", "amount": 1},
        "personas": {"name": "Existing", "annual_kwh": 1},
        "rate_escalations": {"utility_name": "Existing", "annual_escalation_percent": 1},
        "comparable_values": {"label": "Existing", "unit": "x", "factor_per_mwh": 1},
    }[key]


class TestDivergence:
    @pytest.fixture
    def copy(self):
        upstream = OrganizationFactory(name="Helios Energy Partners")
        partner = OrganizationFactory()
        partnership = make_partnership(upstream, partner, data_sync_enabled=True)
        source = Adder.objects.create(organization=upstream, name="Trenching", amount=1250)
        return Adder.objects.create(
            organization=partner,
            name="Trenching",
            amount=1250,
            synced_partnership=partnership,
            synced_from=source,
            baseline_name="Trenching",
            baseline_amount=1250,
            baseline_pricing="fixed",
            baseline_applied_by_default=False,
        )

    def state(self, item) -> tuple[str, str]:
        fresh = Adder.objects.get(pk=item.pk)
        sql = Adder.objects.with_sync_state().get(pk=item.pk).sync_state_value
        return fresh.sync_state, sql

    def test_synced_until_changed_through_any_path(self, client, copy):
        assert self.state(copy) == ("synced", "synced")
        Adder.objects.filter(pk=copy.pk).update(amount=1)  # queryset update: no signals
        assert self.state(copy) == ("diverged", "diverged")
        Adder.objects.filter(pk=copy.pk).update(amount=1250)
        assert self.state(copy) == ("synced", "synced")
        copy.refresh_from_db()
        copy.applied_by_default = True
        copy.save()  # the shell
        assert self.state(copy) == ("diverged", "diverged")

    def test_admin_edit_is_divergence(self, client, copy):
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        response = client.post(
            reverse("admin:project_adder_change", args=[copy.pk]),
            {
                "organization": copy.organization_id,
                "name": "Trenching",
                "pricing": "fixed",
                "amount": "1300",
            },
        )
        assert response.status_code == 302
        assert self.state(copy) == ("diverged", "diverged")

    def test_pages_show_provenance(self, client, copy):
        partner = copy.organization
        own = Adder.objects.create(organization=partner, name="Tree removal", amount=900)
        client.force_login(MembershipFactory(organization=partner, role="admin").user)
        page = catalogue.page_or_404("project", "adders")
        content = client.get(url("page", partner, page)).content.decode()
        assert "Synced from Helios Energy Partners" in content
        Adder.objects.filter(pk=copy.pk).update(amount=1)
        content = client.get(url("page", partner, page)).content.decode()
        assert "Edited locally" in content
        assert content.count("provenance") == 1  # the own item shows nothing
        assert own.pk


def test_list_of_1000_items_has_constant_queries(client):
    organization = OrganizationFactory()
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    page = catalogue.page_or_404("project", "equipment")

    def add(n, start):
        Equipment.objects.bulk_create(
            Equipment(
                organization=organization,
                kind="module",
                manufacturer="M",
                model=f"{start + i}",
                unit_cost=Decimal(1),
            )
            for i in range(n)
        )

    add(10, 0)
    client.get(url("page", organization, page))
    with CaptureQueriesContext(connection) as few:
        client.get(url("page", organization, page))
    add(990, 10)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url("page", organization, page), {"page": 2})
    assert len(many.captured_queries) == len(few.captured_queries)
    assert "Page 2 of 20" in response.content.decode()


def test_every_organization_has_its_singletons():
    organization = OrganizationFactory()
    for category in registry.all():
        if category.is_singleton:
            assert category.model.objects.filter(organization=organization).count() == 1


def test_partners_see_shared_templates_read_only(client):
    from settings_sync.proposal.models import ProposalTemplate

    upstream = OrganizationFactory(name="Helios Energy Partners")
    partner = OrganizationFactory()
    make_partnership(upstream, partner)
    template = ProposalTemplate.objects.create(organization=upstream, name="Helios Standard")
    client.force_login(MembershipFactory(organization=partner, role="admin").user)
    page = catalogue.page_or_404("proposal", "proposal_templates")
    content = client.get(url("page", partner, page)).content.decode()
    assert "Shared with you" in content
    assert "Shared by Helios Energy Partners" in content
    response = client.post(url("edit", partner, page, template.pk), {"name": "Mine now"})
    assert response.status_code == 404
    template.refresh_from_db()
    assert template.name == "Helios Standard"
