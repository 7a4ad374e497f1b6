"""Bad input on the settings pages (docs/design.md §9.6): refused with status 400, the field's
message beside the field, and nothing changed — for adds, edits and singleton forms alike. Duplicate
natural keys are found case-insensitively after trimming, by the form and by the database."""

from __future__ import annotations

import html
import re

import pytest
from django.db import IntegrityError, models, transaction

from organizations.validators import validate_name
from settings_sync import registry
from tests.factories import OrganizationFactory
from tests.settings_sync import catalogue_data as data
from tests.settings_sync.catalogue_data import url

pytestmark = pytest.mark.django_db


def field_error(response, field: str) -> str:
    """The text of the first error shown beside ``field`` (the form marks it with an id)."""
    content = response.content.decode()
    match = re.search(rf'id="id_{field}_error">(.*?)</div>', content, flags=re.DOTALL)
    assert match, f"no error beside {field!r}"
    return html.unescape(match.group(1)).strip()


def field_errors(response, field: str) -> list[str]:
    form = response.context["form"]
    return [str(message) for message in form.errors.get(field, [])]


# (page key, changes to the valid input, field, message) ---------------------------------

COLLECTION_CASES = [
    ("equipment", {"unit_cost": "-1"}, "unit_cost", "Enter zero or a positive amount."),
    ("equipment", {"unit_cost": "-0.01"}, "unit_cost", "Enter zero or a positive amount."),
    ("equipment", {"rating": "-5"}, "rating", "Enter zero or a positive amount."),
    ("equipment", {"kind": "toaster"}, "kind", "Select a valid choice."),
    ("equipment", {"model": "  "}, "model", "This field is required."),
    ("adders", {"amount": "-5"}, "amount", "Enter zero or a positive amount."),
    ("adders", {"pricing": "fixed", "amount": "-0.01"}, "amount", "Enter zero or a positive"),
    (
        "adders",
        {"pricing": "percent", "amount": "100.01"},
        "amount",
        "A percentage adder cannot be more than 100%.",
    ),
    (
        "adders",
        {"pricing": "percent", "amount": "250"},
        "amount",
        "A percentage adder cannot be more than 100%.",
    ),
    ("personas", {"annual_kwh": "0"}, "annual_kwh", "Enter an annual usage from 1 to 1,000,000."),
    (
        "personas",
        {"annual_kwh": "-100"},
        "annual_kwh",
        "Enter an annual usage from 1 to 1,000,000.",
    ),
    (
        "personas",
        {"monthly_profile": "10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10"},
        "monthly_profile",
        "The 12 monthly shares must add up to 100",
    ),
    (
        "personas",
        {"monthly_profile": "8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8"},
        "monthly_profile",
        "The 12 monthly shares must add up to 100 (they add up to 96).",
    ),
    (
        "personas",
        {"monthly_profile": "10, 10, 10, 10, 10, 10, 10, 10, 10, 5, 5"},
        "monthly_profile",
        "Enter exactly 12 monthly shares, January to December.",
    ),
    (
        "personas",
        {"monthly_profile": "10, 10, 10, 10, 10, 10, 10, 10, 10, 5, 5, 0, 0"},
        "monthly_profile",
        "Enter exactly 12 monthly shares, January to December.",
    ),
    (
        "personas",
        {"monthly_profile": "20, -10, 10, 10, 10, 10, 10, 10, 10, 5, 5, 0"},
        "monthly_profile",
        "Monthly shares cannot be negative.",
    ),
    (
        "personas",
        {"monthly_profile": "ten, 10, 10, 10, 10, 10, 10, 10, 10, 5, 5, 0"},
        "monthly_profile",
        "Type 12 numbers separated by commas.",
    ),
    (
        "rate_escalations",
        {"annual_escalation_percent": "-10.01"},
        "annual_escalation_percent",
        "Enter an escalation from -10 to 25.",
    ),
    (
        "rate_escalations",
        {"annual_escalation_percent": "25.01"},
        "annual_escalation_percent",
        "Enter an escalation from -10 to 25.",
    ),
    (
        "rate_escalations",
        {"annual_escalation_percent": "abc"},
        "annual_escalation_percent",
        "Enter a number.",
    ),
    (
        "comparable_values",
        {"factor_per_mwh": "-1"},
        "factor_per_mwh",
        "Enter zero or a positive amount.",
    ),
    ("comparable_values", {"label": ""}, "label", "This field is required."),
    ("licenses", {"expires_on": "2028-02-30"}, "expires_on", "Enter a valid date."),
    ("licenses", {"number": ""}, "number", "This field is required."),
    ("financing_products", {"apr_percent": "40.01"}, "apr_percent", "Enter an APR from 0 to 40."),
    ("financing_products", {"term_months": "0"}, "term_months", "Enter a term from 1 to 360."),
    ("financing_products", {"term_months": "-1"}, "term_months", "Enter a term from 1 to 360."),
    (
        "proposal_templates",
        {"page_count": "0"},
        "page_count",
        "Enter a number of pages from 1 to 100.",
    ),
    (
        "proposal_templates",
        {"page_count": "-1"},
        "page_count",
        "Enter a number of pages from 1 to 100.",
    ),
    ("integrations", {"provider": "myspace"}, "provider", "Select a valid choice."),
]


def params(cases) -> list:
    return [
        pytest.param(*case, id=f"{case[0]}-{'-'.join(f'{k}={v}' for k, v in case[1].items())}")
        for case in cases
    ]


def test_every_synced_collection_has_bad_input_cases():
    keys = {key for key, *_ in COLLECTION_CASES}
    assert {category.key for category in data.SYNCED_COLLECTIONS} <= keys


@pytest.mark.parametrize(("key", "changes", "field", "message"), params(COLLECTION_CASES))
def test_bad_input_is_refused(client, organization, admin_client, key, changes, field, message):
    page = data.page(key)
    bad = {**data.LIST_CASES[key].valid, **changes}
    # Adding
    response = client.post(url("add", organization, page), bad)
    assert response.status_code == 400
    assert message in field_error(response, field)
    assert "nothing was saved" in response.content.decode()
    assert not page.model._base_manager.filter(organization=organization).exists()
    # Editing
    item = data.make_item(key, organization)
    before = data.item_values(key)
    response = client.post(url("edit", organization, page, item.pk), bad)
    assert response.status_code == 400
    assert message in field_error(response, field)
    item.refresh_from_db()
    assert data.values_of(item, before) == before
    assert page.model._base_manager.filter(organization=organization).count() == 1


def test_monthly_profile_total_is_shown_as_typed(client, organization, admin_client):
    page = data.page("personas")
    profile = "10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10"
    response = client.post(
        url("add", organization, page),
        {**data.LIST_CASES["personas"].valid, "monthly_profile": profile},
    )
    assert field_error(response, "monthly_profile") == (
        "The 12 monthly shares must add up to 100 (they add up to 120)."
    )


LIMITS = {
    "adders": [
        {"pricing": "percent", "amount": "100"},
        {"pricing": "fixed", "amount": "5000"},  # only percentages stop at 100
        {"amount": "0"},
    ],
    "equipment": [{"unit_cost": "0", "rating": ""}, {"rating": "0"}],
    "rate_escalations": [
        {"annual_escalation_percent": "-10"},
        {"annual_escalation_percent": "25"},
    ],
    "personas": [
        {"annual_kwh": "1", "monthly_profile": ""},
        {"monthly_profile": "8.5, 8.5, 8, 8, 8, 8, 8, 8, 8, 8, 9, 10"},
        {"monthly_profile": ", ".join(["8.33"] * 8 + ["8.34"] * 3 + ["8.35"])},
    ],
    "comparable_values": [{"factor_per_mwh": "0"}],
}


@pytest.mark.parametrize("key", list(LIMITS))
def test_limits_are_accepted(client, organization, admin_client, key):
    page = data.page(key)
    item = data.make_item(key, organization)
    for changes in LIMITS[key]:
        response = client.post(
            url("edit", organization, page, item.pk), {**data.LIST_CASES[key].valid, **changes}
        )
        assert response.status_code == 302, (changes, response.content.decode()[:3000])
    assert page.model.objects.filter(organization=organization).count() == 1


DAYS_VALID = "Enter a number of days from 1 to 365."

SINGLETON_CASES = [
    *[
        ("default_costs", {name: "-0.01"}, name, "Enter zero or a positive amount.")
        for name in registry.get("default_costs").synced_fields
    ],
    ("default_costs", {"battery_cost_per_kwh": "lots"}, "battery_cost_per_kwh", "Enter a number."),
    *[
        ("installation_dates", {name: value}, name, "Enter a number of days from 0 to 365.")
        for name in ("contract_to_install_days", "install_to_pto_days")
        for value in ("-1", "366")
    ],
    # One message for the range, whichever end is crossed.
    *[
        ("proposal_expiration", {"days_valid": value}, "days_valid", DAYS_VALID)
        for value in ("-1", "0", "366")
    ],
    ("proposal_expiration", {"days_valid": ""}, "days_valid", "This field is required."),
    ("proposal_email", {"reply_to": "not-an-email"}, "reply_to", "Enter a valid email address."),
    (
        "proposal_email",
        {"cc": "a@example.com, nope"},
        "cc",
        "These are not valid email addresses: nope.",
    ),
    (
        "proposal_email",
        {"cc": "a@example.com; b@; c@example"},
        "cc",
        "These are not valid email addresses: b@, c@example.",
    ),
    ("proposal_email", {"subject": ""}, "subject", "This field is required."),
]


@pytest.mark.parametrize(("key", "changes", "field", "message"), params(SINGLETON_CASES))
def test_bad_singleton_input_is_refused(
    client, organization, admin_client, key, changes, field, message
):
    page = data.page(key)
    row = data.singleton(key, organization)
    before = (row.synced_values(), row.updated_at)
    response = client.post(
        url("page", organization, page), {**data.FORM_CASES[key].valid, **changes}
    )
    assert response.status_code == 400
    assert message in field_error(response, field)
    assert "nothing was saved" in response.content.decode()
    row = data.singleton(key, organization)
    assert (row.synced_values(), row.updated_at) == before
    assert page.model.objects.filter(organization=organization).count() == 1


def test_singleton_limits_are_accepted(client, organization, admin_client):
    for key, changes, saved in [
        ("installation_dates", {"contract_to_install_days": "0"}, {"contract_to_install_days": 0}),
        ("installation_dates", {"install_to_pto_days": "365"}, {"install_to_pto_days": 365}),
        ("proposal_expiration", {"days_valid": "1"}, {"days_valid": 1}),
        ("proposal_expiration", {"days_valid": "365"}, {"days_valid": 365}),
        ("proposal_email", {"reply_to": "", "cc": ""}, {"reply_to": "", "cc": ""}),
    ]:
        page = data.page(key)
        response = client.post(
            url("page", organization, page), {**data.FORM_CASES[key].valid, **changes}
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        assert data.values_of(data.singleton(key, organization), saved) == saved


# Duplicate natural keys -------------------------------------------------------------------

KEYED = [category for category in registry.all() if category.natural_key and category.has_page]


def shouted(key: str, values: dict) -> dict:
    """The same natural key in other letters, with surrounding spaces."""
    natural_key = registry.get(key).natural_key
    return {
        name: (
            f"  {value.swapcase()} "
            if name in natural_key and isinstance(value, str) and name != "kind"
            else value
        )
        for name, value in values.items()
    }


def duplicate_field(key: str) -> str:
    return data.page(key).form_class.duplicate_error_field


def test_every_keyed_category_is_checked():
    assert {category.key for category in KEYED} == {
        "equipment",
        "adders",
        "personas",
        "rate_escalations",
        "comparable_values",
        "licenses",
    }


def _natural_key_constraint(model):
    return next(
        c
        for c in model._meta.constraints
        if c.name.endswith("unique_natural_key") or c.name.startswith("license_unique")
    )


def duplicate_message_of(key: str) -> str:
    return _natural_key_constraint(data.page(key).model).violation_error_message


@pytest.mark.parametrize("category", KEYED, ids=data.key_id)
class TestDuplicates:
    def test_the_form_refuses_them_beside_the_key(
        self, client, organization, admin_client, category
    ):
        page = data.page(category.key)
        field = duplicate_field(category.key)
        assert field in category.natural_key
        message = duplicate_message_of(category.key)
        valid = data.LIST_CASES[category.key].valid

        # A new item with the same key in other letters and with surrounding spaces.
        assert client.post(url("add", organization, page), valid).status_code == 302
        response = client.post(url("add", organization, page), shouted(category.key, valid))
        assert response.status_code == 400
        assert field_error(response, field) == message
        assert page.model.objects.filter(organization=organization).count() == 1

        # An item stored (outside the form) with surrounding spaces blocks its key too.
        spaced = {
            name: f"  {value} " if name in category.natural_key and name != "kind" else value
            for name, value in data.item_values(category.key, 1).items()
        }
        stored = page.model.objects.create(organization=organization, **spaced)
        typed = {**valid}
        for name in category.natural_key:
            value = data.item_values(category.key, 1)[name]
            typed[name] = value if name == "kind" else value.upper()
        response = client.post(url("add", organization, page), typed)
        assert response.status_code == 400
        assert field_error(response, field) == message
        assert page.model.objects.filter(organization=organization).count() == 2

        # Renaming an item onto another item's key.
        response = client.post(
            url("edit", organization, page, stored.pk), shouted(category.key, valid)
        )
        assert response.status_code == 400
        assert field_error(response, field) == message
        stored.refresh_from_db()
        assert data.values_of(stored, spaced) == spaced

        # An item may keep its own key in other letters.
        response = client.post(url("edit", organization, page, stored.pk), typed)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert page.model.objects.filter(organization=organization).count() == 2

    def test_archived_items_and_other_organizations_do_not_count(
        self, client, organization, admin_client, category
    ):
        page = data.page(category.key)
        data.make_item(category.key, organization).archive(reason="test")
        data.make_item(category.key, OrganizationFactory())
        typed = {**data.LIST_CASES[category.key].valid}
        typed.update({name: data.item_values(category.key)[name] for name in category.natural_key})
        response = client.post(url("add", organization, page), typed)
        assert response.status_code == 302, response.content.decode()[:3000]
        assert page.model.objects.filter(organization=organization).count() == 1
        assert page.model.all_objects.filter(organization=organization).count() == 2

    def test_the_database_refuses_them_too(self, category):
        """The constraint itself trims and case-folds (for writes that bypass the form)."""
        organization = OrganizationFactory()
        model = data.page(category.key).model
        data.make_item(category.key, organization)
        spaced = {
            name: f" {value.swapcase()}  "
            if name in category.natural_key and name != "kind"
            else value
            for name, value in data.item_values(category.key).items()
        }
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.create(organization=organization, **spaced)
        assert model.objects.filter(organization=organization).count() == 1


def test_adder_example_from_the_issue(client, organization, admin_client):
    """ " tile ROOF " is "Tile roof": refused beside the name."""
    page = data.page("adders")
    client.post(
        url("add", organization, page), {"name": "Tile roof", "pricing": "fixed", "amount": "1"}
    )
    response = client.post(
        url("add", organization, page), {"name": " tile ROOF ", "pricing": "fixed", "amount": "2"}
    )
    assert response.status_code == 400
    assert field_error(response, "name") == "This organization already has an adder with this name."
    assert field_errors(response, "name") == [
        "This organization already has an adder with this name."
    ]
    assert page.model.objects.get(organization=organization).amount == 1


# Names: nothing invisible, nothing that breaks a line -------------------------------------

#: Every name-like field of a settings page.
NAME_FIELDS = [
    ("equipment", "manufacturer"),
    ("equipment", "model"),
    ("adders", "name"),
    ("personas", "name"),
    ("rate_escalations", "utility_name"),
    ("comparable_values", "label"),
    ("comparable_values", "unit"),
    ("licenses", "license_type"),
    ("licenses", "number"),
    ("licenses", "jurisdiction"),
    ("financing_products", "name"),
    ("financing_products", "lender"),
    ("proposal_templates", "name"),
    ("integrations", "account"),
]
#: A control character, and invisible or reordering ones (category Cf, Zl, a Hangul filler).
HIDDEN_CHARACTERS = {
    "line-break": ("\n", "a line break"),
    "zero-width-space": ("\u200b", "U+200B (zero width space)"),
    "right-to-left-override": ("\u202e", "U+202E (right-to-left override)"),
    "soft-hyphen": ("\u00ad", "U+00AD (soft hyphen)"),
    "first-strong-isolate": ("\u2068", "U+2068 (first strong isolate)"),
    "byte-order-mark": ("\ufeff", "U+FEFF (zero width no-break space)"),
    "line-separator": ("\u2028", "a line break"),
    "hangul-filler": ("\u3164", "U+3164 (hangul filler)"),
}


@pytest.mark.parametrize(("key", "field"), NAME_FIELDS, ids=["-".join(f) for f in NAME_FIELDS])
@pytest.mark.parametrize("hidden", list(HIDDEN_CHARACTERS))
def test_names_with_hidden_characters_are_refused(
    client, organization, admin_client, key, field, hidden
):
    character, described = HIDDEN_CHARACTERS[hidden]
    page = data.page(key)
    bad = {**data.LIST_CASES[key].valid}
    bad[field] = f"Tile{character}roof"
    response = client.post(url("add", organization, page), bad)
    assert response.status_code == 400
    error = field_error(response, field)
    assert "cannot contain line breaks, tabs or other control characters" in error
    assert f"It contains {described}" in error
    assert not page.model._base_manager.filter(organization=organization).exists()

    item = data.make_item(key, organization)
    before = data.item_values(key)
    response = client.post(url("edit", organization, page, item.pk), bad)
    assert response.status_code == 400
    item.refresh_from_db()
    assert data.values_of(item, before) == before


def test_every_line_of_text_on_a_settings_page_refuses_hidden_characters():
    """Every editable one-line text field of a settings model (not a choice, an address or a
    slug) has the name validator, and the pages above test each name field through a form."""
    unchecked = [
        f"{page.model.__name__}.{field.name}"
        for page in data.PAGES
        for field in page.model._meta.get_fields()
        if isinstance(field, models.CharField)
        and not isinstance(field, models.EmailField | models.SlugField)
        and field.editable
        and not field.choices
        and field.name != "cc"  # a list of addresses, validated as such
        and validate_name not in field.validators
    ]
    assert unchecked == []
    tested = set(NAME_FIELDS)
    for key, case in data.LIST_CASES.items():
        assert (key, case.display_field) in tested


def test_a_proposal_email_subject_stays_on_one_line(client, organization, admin_client):
    page = data.page("proposal_email")
    row = data.singleton("proposal_email", organization)
    before = row.synced_values()
    response = client.post(
        url("page", organization, page),
        {**data.FORM_CASES["proposal_email"].valid, "subject": "Hi\r\nBcc: all@example.com"},
    )
    assert response.status_code == 400
    assert "It contains a line break" in field_error(response, "subject")
    assert data.singleton("proposal_email", organization).synced_values() == before


def test_names_in_other_scripts_and_with_emoji_are_fine(client, organization, admin_client):
    page = data.page("adders")
    for name in ["Énergie solaire", "太陽光", "Sonnen-Dach ☀️", "Tile\u00a0roof (spécial)"]:
        response = client.post(
            url("add", organization, page), {"name": name, "amount": "1", "pricing": "fixed"}
        )
        assert response.status_code == 302, (name, response.content.decode()[:2000])
    assert page.model.objects.filter(organization=organization).count() == 4


# Oversized input --------------------------------------------------------------------------

#: (page key, field, the most characters it takes)
BOUNDED_TEXTS = [
    ("proposal_email", "body", 10_000),
    ("personas", "description", 2000),
    ("proposal_templates", "description", 2000),
]


def post_text(client, organization, key: str, field: str, text: str):
    page = data.page(key)
    if page.is_list:
        return client.post(
            url("add", organization, page), {**data.LIST_CASES[key].valid, field: text}
        )
    return client.post(url("page", organization, page), {**data.FORM_CASES[key].valid, field: text})


def stored_texts(key: str, field: str, organization) -> list:
    model = data.page(key).model
    return list(model._base_manager.filter(organization=organization).values_list("pk", field))


@pytest.mark.parametrize(("key", "field", "limit"), BOUNDED_TEXTS)
@pytest.mark.parametrize("length", ["one-over", "4-mb"])
def test_oversized_texts_are_refused_beside_the_field(
    client, organization, admin_client, key, field, limit, length
):
    text = "x" * (limit + 1 if length == "one-over" else 4 * 1024 * 1024 - 10_000)
    before = stored_texts(key, field, organization)
    response = post_text(client, organization, key, field, text)
    assert response.status_code == 400
    assert field_error(response, field) == (
        f"Ensure this value has at most {limit} characters (it has {len(text)})."
    )
    assert stored_texts(key, field, organization) == before


@pytest.mark.parametrize(("key", "field", "limit"), BOUNDED_TEXTS)
def test_texts_up_to_the_limit_are_accepted(client, organization, admin_client, key, field, limit):
    response = post_text(client, organization, key, field, "é" * limit)
    assert response.status_code == 302, response.content.decode()[:2000]
    model = data.page(key).model
    assert model.objects.filter(organization=organization, **{field: "é" * limit}).count() == 1


@pytest.mark.parametrize(("key", "field", "limit"), BOUNDED_TEXTS)
def test_the_database_refuses_oversized_texts_too(key, field, limit):
    """Writes that bypass validation (update(), the shell) meet a check constraint."""
    organization = OrganizationFactory()
    model = data.page(key).model
    if data.page(key).is_list:
        item = data.make_item(key, organization)
    else:
        item = data.singleton(key, organization)
    with pytest.raises(IntegrityError), transaction.atomic():
        model._base_manager.filter(pk=item.pk).update(**{field: "é" * (limit + 1)})
    model._base_manager.filter(pk=item.pk).update(**{field: "é" * limit})


def test_every_text_field_of_a_settings_page_has_a_maximum():
    unbounded = [
        f"{page.model.__name__}.{field.name}"
        for page in data.PAGES
        for field in page.model._meta.get_fields()
        if isinstance(field, models.TextField) and field.editable and field.max_length is None
    ]
    assert unbounded == []
