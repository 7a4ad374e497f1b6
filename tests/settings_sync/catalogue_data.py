"""Test data for every settings page, read from the catalogue (not a test module).

One entry per page: valid form input, the values it saves, an edit and what it changes, the
text that shows the item in its list, and a way to create the *i*-th item directly (for bulk
lists and for items that must exist before a request).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal

from django.urls import reverse

from settings_sync import catalogue, registry

UPSTREAM_NAME = "Helios Energy Partners"

STRICT = {"is_exclusive": True, "data_sync_enabled": True}
FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}
NON_EXCLUSIVE = {"data_sync_enabled": True}
MODES = {"strict": STRICT, "flexible": FLEXIBLE, "non_exclusive": NON_EXCLUSIVE, "off": {}}

PAGES = [page for page in catalogue.all_pages() if page.has_page]
LIST_PAGES = [page for page in PAGES if page.is_list]
FORM_PAGES = [page for page in PAGES if not page.is_list]
#: collections with provenance (the synced collections of the registry)
SYNCED_COLLECTIONS = [category for category in registry.all() if category.is_collection]
#: pages a strict partnership locks
LOCKABLE_PAGES = [
    category for category in registry.all() if category.lockable and category.has_page
]
NEVER_SYNCED_KEYS = ("financing_products", "integrations", "proposal_templates")


def key_id(setting) -> str:
    return setting.key


def page(key: str):
    return next(page for page in PAGES if page.key == key)


def url(name: str, organization, page, *args) -> str:
    return reverse(f"settings_sync:{name}", args=[organization.slug, page.group, page.key, *args])


@dataclass(frozen=True)
class ListCase:
    valid: dict  # POST data of a valid new item
    saved: dict  # what ``valid`` saves
    edit: dict  # POST data of an edit of that item
    edited: dict  # what ``edit`` changes
    shown: str  # text of ``valid`` as the list shows it
    display_field: str  # the field the list shows ``shown`` in


LIST_CASES: dict[str, ListCase] = {
    "equipment": ListCase(
        valid={
            "kind": "module",
            "manufacturer": "REC Solar",
            "model": "Alpha Pure-R 410",
            "rating": "410",
            "unit_cost": "265.00",
            "is_active": "on",
        },
        saved={
            "kind": "module",
            "manufacturer": "REC Solar",
            "model": "Alpha Pure-R 410",
            "rating": Decimal("410"),
            "unit_cost": Decimal("265"),
            "is_active": True,
        },
        edit={
            "kind": "module",
            "manufacturer": "REC Solar",
            "model": "Alpha Pure-R 410",
            "rating": "",
            "unit_cost": "199.50",
        },
        edited={"rating": None, "unit_cost": Decimal("199.50"), "is_active": False},
        shown="Alpha Pure-R 410",
        display_field="model",
    ),
    "adders": ListCase(
        valid={
            "name": "Tile roof",
            "pricing": "per_watt",
            "amount": "0.35",
            "applied_by_default": "on",
        },
        saved={
            "name": "Tile roof",
            "pricing": "per_watt",
            "amount": Decimal("0.35"),
            "applied_by_default": True,
        },
        # 100 is the largest percentage allowed
        edit={"name": "Tile roof", "pricing": "percent", "amount": "100"},
        edited={"pricing": "percent", "amount": Decimal("100"), "applied_by_default": False},
        shown="Tile roof",
        display_field="name",
    ),
    "personas": ListCase(
        valid={
            "name": "EV owner",
            "annual_kwh": "14500",
            "monthly_profile": "7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7",
            "description": "Charges one car at home.",
        },
        saved={
            "name": "EV owner",
            "annual_kwh": 14500,
            "monthly_profile": [7, 6, 7, 8, 9, 10, 11, 11, 9, 8, 7, 7],
            "description": "Charges one car at home.",
        },
        # 1 kWh is the smallest usage allowed; an empty profile is a flat one
        edit={"name": "EV owner", "annual_kwh": "1", "monthly_profile": "", "description": ""},
        edited={"annual_kwh": 1, "monthly_profile": None, "description": ""},
        shown="EV owner",
        display_field="name",
    ),
    "rate_escalations": ListCase(
        valid={"utility_name": "Pacific Gas and Electric", "annual_escalation_percent": "6.5"},
        saved={
            "utility_name": "Pacific Gas and Electric",
            "annual_escalation_percent": Decimal("6.5"),
        },
        # -10 is the lowest escalation allowed
        edit={"utility_name": "Pacific Gas and Electric", "annual_escalation_percent": "-10"},
        edited={"annual_escalation_percent": Decimal("-10")},
        shown="Pacific Gas and Electric",
        display_field="utility_name",
    ),
    "comparable_values": ListCase(
        valid={"label": "Trees planted", "unit": "trees", "factor_per_mwh": "16.5"},
        saved={"label": "Trees planted", "unit": "trees", "factor_per_mwh": Decimal("16.5")},
        edit={"label": "Trees planted", "unit": "seedlings", "factor_per_mwh": "0"},
        edited={"unit": "seedlings", "factor_per_mwh": Decimal("0")},
        shown="Trees planted",
        display_field="label",
    ),
    "licenses": ListCase(
        valid={
            "license_type": "C-46 Solar Contractor",
            "number": "1045822",
            "jurisdiction": "California",
            "expires_on": "2028-06-30",
        },
        saved={
            "license_type": "C-46 Solar Contractor",
            "number": "1045822",
            "jurisdiction": "California",
            "expires_on": datetime.date(2028, 6, 30),
        },
        edit={
            "license_type": "C-10 Electrical Contractor",
            "number": "1045822",
            "jurisdiction": "California",
            "expires_on": "",
        },
        edited={"license_type": "C-10 Electrical Contractor", "expires_on": None},
        shown="1045822",
        display_field="number",
    ),
    "proposal_templates": ListCase(
        valid={"name": "Standard", "description": "Eight pages", "page_count": "8"},
        saved={"name": "Standard", "description": "Eight pages", "page_count": 8},
        edit={"name": "Standard", "description": "Twelve pages", "page_count": "12"},
        edited={"description": "Twelve pages", "page_count": 12},
        shown="Standard",
        display_field="name",
    ),
    "financing_products": ListCase(
        valid={
            "name": "25-year loan",
            "lender": "GoodLeap",
            "apr_percent": "6.99",
            "term_months": "300",
            "dealer_fee_percent": "25",
            "is_active": "on",
        },
        saved={
            "name": "25-year loan",
            "lender": "GoodLeap",
            "apr_percent": Decimal("6.99"),
            "term_months": 300,
            "dealer_fee_percent": Decimal("25"),
            "is_active": True,
        },
        edit={
            "name": "25-year loan",
            "lender": "GoodLeap",
            "apr_percent": "7.49",
            "term_months": "240",
            "dealer_fee_percent": "0",
        },
        edited={"apr_percent": Decimal("7.49"), "term_months": 240, "is_active": False},
        shown="25-year loan",
        display_field="name",
    ),
    "integrations": ListCase(
        valid={"provider": "salesforce", "account": "helios-crm", "is_enabled": "on"},
        saved={
            "provider": "salesforce",
            "account": "helios-crm",
            "is_enabled": True,
            "sync_leads": False,
        },
        edit={"provider": "salesforce", "account": "helios-crm-2", "sync_leads": "on"},
        edited={"account": "helios-crm-2", "is_enabled": False, "sync_leads": True},
        shown="helios-crm",
        display_field="account",
    ),
}

INTEGRATION_PROVIDERS = ("salesforce", "hubspot", "enphase", "docusign", "quickbooks")


def item_values(key: str, i: int = 0) -> dict:
    """Model field values of the i-th item of a page (distinct natural keys, list order = i)."""
    n = f"{i:04d}"
    return {
        "equipment": {
            "kind": "module",
            "manufacturer": "Qcells",
            "model": f"Q.PEAK {n}",
            "rating": Decimal("400"),
            "unit_cost": Decimal("250"),
        },
        "adders": {"name": f"Trenching {n}", "pricing": "fixed", "amount": Decimal("1250")},
        "personas": {"name": f"Household {n}", "annual_kwh": 12000},
        "rate_escalations": {
            "utility_name": f"Utility {n}",
            "annual_escalation_percent": Decimal("3.5"),
        },
        "comparable_values": {
            "label": f"Cars {n}",
            "unit": "cars",
            "factor_per_mwh": Decimal("0.2"),
        },
        "licenses": {
            "license_type": "C-10 Electrical",
            "number": f"L-{n}",
            "jurisdiction": "Nevada",
        },
        "proposal_templates": {"name": f"Layout {n}", "page_count": 6},
        "financing_products": {
            "name": f"Loan {n}",
            "lender": "Mosaic",
            "apr_percent": Decimal("5.99"),
            "term_months": 240,
        },
        "integrations": {
            "provider": INTEGRATION_PROVIDERS[i % len(INTEGRATION_PROVIDERS)],
            "account": f"account-{n}",
        },
    }[key]


def shown_text(key: str, i: int = 0) -> str:
    return str(item_values(key, i)[LIST_CASES[key].display_field])


def make_item(key: str, organization, i: int = 0, **extra):
    return page(key).model.objects.create(organization=organization, **item_values(key, i), **extra)


def copy_values(category, source) -> dict:
    """Provenance and baseline of a downstream copy of ``source`` (content equal to it)."""
    values = {name: getattr(source, name) for name in category.synced_fields}
    return {
        **values,
        **{f"baseline_{name}": value for name, value in values.items()},
        "synced_from": source,
    }


@dataclass(frozen=True)
class FormCase:
    valid: dict  # POST data
    saved: dict  # what it saves


FORM_CASES: dict[str, FormCase] = {
    "default_costs": FormCase(
        valid={
            "module_cost_per_watt": "0.42",
            "inverter_cost_per_watt": "0.18",
            "battery_cost_per_kwh": "620",
            "energy_efficiency_cost": "0",
            "project_cost_per_watt": "2.65",
        },
        saved={
            "module_cost_per_watt": Decimal("0.42"),
            "inverter_cost_per_watt": Decimal("0.18"),
            "battery_cost_per_kwh": Decimal("620"),
            "energy_efficiency_cost": Decimal("0"),
            "project_cost_per_watt": Decimal("2.65"),
        },
    ),
    "installation_dates": FormCase(
        # both ends of the 0-365 range
        valid={"contract_to_install_days": "365", "install_to_pto_days": "0"},
        saved={"contract_to_install_days": 365, "install_to_pto_days": 0},
    ),
    "proposal_expiration": FormCase(valid={"days_valid": "21"}, saved={"days_valid": 21}),
    "proposal_email": FormCase(
        valid={
            "subject": "Your Helios proposal",
            "body": "Hello {customer_name}",
            "reply_to": "proposals@example.com",
            "cc": " a@example.com;b@example.com ",
        },
        saved={
            "subject": "Your Helios proposal",
            "body": "Hello {customer_name}",
            "reply_to": "proposals@example.com",
            "cc": "a@example.com, b@example.com",
        },
    ),
}


def singleton(key: str, organization):
    return page(key).model.objects.get(organization=organization)


def values_of(obj, names) -> dict:
    return {name: getattr(obj, name) for name in names}


def item_rows(content: str | bytes) -> list[str]:
    """The HTML of each item row of a list page."""
    if isinstance(content, bytes):
        content = content.decode()
    return re.findall(r'<tr data-testid="item-row">(.*?)</tr>', content, flags=re.DOTALL)


def row_of(content: str | bytes, text: str) -> str:
    """The one item row that contains ``text``."""
    found = [row for row in item_rows(content) if text in row]
    assert len(found) == 1, f"{len(found)} rows contain {text!r}"
    return found[0]
