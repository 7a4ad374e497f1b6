"""The catalogue of synced settings: one entry per category (docs/design.md §3.4).

Views, the admin, the demo data, the sync engine and the help page all read this registry;
no category is special-cased elsewhere. Adding a category is one entry here plus its model
and form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pages import FORM, LIST, SettingsPage
from .policy import COLLECTION, INVITE_ONLY, KINDS, SINGLETON


@dataclass(frozen=True)
class Category(SettingsPage):
    kind: str = COLLECTION
    natural_key: tuple[str, ...] = ()
    synced_fields: tuple[str, ...] = ()
    #: how an item is named in the sync history (default: its natural key)
    label_fields: tuple[str, ...] = ()
    #: the values are files on the organization itself (the logo): copied as files of their own
    copied_as_files: bool = False
    #: invite-only data: the column of the copy that names the channel manager it was copied
    #: from when the organization joined ("Copied from … when you joined")
    copied_from_field: str | None = None
    synced: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        if not self.label_fields:
            object.__setattr__(self, "label_fields", self.natural_key or self.synced_fields[:1])

    @property
    def is_collection(self) -> bool:
        return self.kind == COLLECTION

    @property
    def is_singleton(self) -> bool:
        return self.kind == SINGLETON

    @property
    def transferable(self) -> bool:
        """Its items are exported and imported as rows (docs/design.md §11): a list with a form
        and a natural key to match rows by (the collections, and the licenses)."""
        return self.has_page and bool(self.natural_key)

    @property
    def lockable(self) -> bool:
        """Strict partnerships make it read-only downstream (invite-only data stays editable)."""
        return self.kind != INVITE_ONLY


_CATEGORIES: list[Category] = [
    Category(
        key="equipment",
        label="Equipment",
        group="project",
        kind=COLLECTION,
        model_label="project.Equipment",
        form_path="settings_sync.project.forms.EquipmentForm",
        natural_key=("kind", "manufacturer", "model"),
        synced_fields=("kind", "manufacturer", "model", "rating", "unit_cost", "is_active"),
        label_fields=("manufacturer", "model"),
        columns=("kind", "manufacturer", "model", "rating", "unit_cost", "is_active"),
        search_fields=("manufacturer", "model"),
        description="Modules, inverters, batteries and other equipment offered on proposals.",
        item_label="equipment item",
    ),
    Category(
        key="adders",
        label="Adders",
        group="project",
        kind=COLLECTION,
        model_label="project.Adder",
        form_path="settings_sync.project.forms.AdderForm",
        natural_key=("name",),
        synced_fields=("name", "pricing", "amount", "applied_by_default"),
        columns=("name", "pricing", "amount", "applied_by_default"),
        search_fields=("name",),
        description="Price adders such as trenching, tile roofs or main panel upgrades.",
        item_label="adder",
    ),
    Category(
        key="default_costs",
        label="Default costs",
        group="project",
        kind=SINGLETON,
        layout=FORM,
        model_label="project.DefaultCosts",
        form_path="settings_sync.project.forms.DefaultCostsForm",
        synced_fields=(
            "module_cost_per_watt",
            "inverter_cost_per_watt",
            "battery_cost_per_kwh",
            "energy_efficiency_cost",
            "project_cost_per_watt",
        ),
        description="Costs used when a project has no specific equipment price.",
    ),
    Category(
        key="installation_dates",
        label="Installation dates",
        group="project",
        kind=SINGLETON,
        layout=FORM,
        model_label="project.InstallationDates",
        form_path="settings_sync.project.forms.InstallationDatesForm",
        synced_fields=("contract_to_install_days", "install_to_pto_days"),
        description="Typical durations used to estimate a project's milestones.",
    ),
    Category(
        key="personas",
        label="Usage personas",
        group="usage",
        kind=COLLECTION,
        model_label="usage.Persona",
        form_path="settings_sync.usage.forms.PersonaForm",
        natural_key=("name",),
        synced_fields=("name", "annual_kwh", "monthly_profile", "description"),
        columns=("name", "annual_kwh", "monthly_profile", "description"),
        search_fields=("name",),
        description="Typical households, used when a customer's usage is not known.",
        item_label="persona",
    ),
    Category(
        key="rate_escalations",
        label="Utility rate escalations",
        group="usage",
        kind=COLLECTION,
        model_label="usage.RateEscalation",
        form_path="settings_sync.usage.forms.RateEscalationForm",
        natural_key=("utility_name",),
        synced_fields=("utility_name", "annual_escalation_percent"),
        columns=("utility_name", "annual_escalation_percent"),
        search_fields=("utility_name",),
        description="How fast each utility's rates are expected to rise every year.",
        item_label="rate escalation",
    ),
    Category(
        key="proposal_expiration",
        label="Proposal expiration",
        group="proposal",
        kind=SINGLETON,
        layout=FORM,
        model_label="proposal.ProposalExpiration",
        form_path="settings_sync.proposal.forms.ProposalExpirationForm",
        synced_fields=("days_valid",),
        description="How long a proposal stays valid.",
    ),
    Category(
        key="comparable_values",
        label="Comparable values",
        group="proposal",
        kind=COLLECTION,
        model_label="proposal.ComparableValue",
        form_path="settings_sync.proposal.forms.ComparableValueForm",
        natural_key=("label",),
        synced_fields=("label", "unit", "factor_per_mwh"),
        columns=("label", "unit", "factor_per_mwh"),
        search_fields=("label",),
        description="What a system's production equals in everyday terms (trees, cars, …).",
        item_label="comparable value",
    ),
    Category(
        key="proposal_email",
        label="Proposal email",
        group="proposal",
        kind=SINGLETON,
        layout=FORM,
        model_label="proposal.ProposalEmail",
        form_path="settings_sync.proposal.forms.ProposalEmailForm",
        synced_fields=("subject", "body", "reply_to", "cc"),
        description="The email that carries a proposal to the customer.",
    ),
    Category(
        key="logo",
        label="Logo",
        group="organization",
        kind=INVITE_ONLY,
        layout=FORM,
        model_label="organizations.Organization",
        form_path=None,  # edited with the organization's profile
        synced_fields=("logo",),
        copied_as_files=True,
        copied_from_field="logo_copied_from",
        description="The organization's logo; copied once into a newly invited organization.",
    ),
    Category(
        key="licenses",
        label="Licenses",
        group="organization",
        kind=INVITE_ONLY,
        model_label="organizations.License",
        form_path="organizations.forms.LicenseForm",
        natural_key=("jurisdiction", "number"),
        synced_fields=("license_type", "number", "jurisdiction", "expires_on"),
        columns=("license_type", "number", "jurisdiction", "expires_on"),
        search_fields=("number", "jurisdiction"),
        copied_from_field="copied_from_organization",
        description="Contractor licenses; copied once into a newly invited organization.",
        item_label="license",
    ),
]

_BY_KEY = {category.key: category for category in _CATEGORIES}

__all__ = ["COLLECTION", "INVITE_ONLY", "KINDS", "LIST", "SINGLETON", "Category", "all", "get"]


def get(key: str) -> Category:
    """The category with this key (KeyError for an unknown key)."""
    return _BY_KEY[key]


def find(key: str) -> Category | None:
    """The category with this key, or None when nothing by that name is synced."""
    return _BY_KEY.get(key)


def all() -> list[Category]:
    """Every category, in display order."""
    return list(_CATEGORIES)


def for_model(model: type) -> Category | None:
    """The category whose items are rows of ``model`` (None for a model that is not synced)."""
    return next((category for category in _CATEGORIES if category.model is model), None)
