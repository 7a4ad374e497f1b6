"""Settings pages: what the generic views need to list, add, edit and archive one kind of
setting. Synced categories (:mod:`settings_sync.registry`) are pages with sync attributes;
never-synced settings (financing, integrations, proposal templates) are plain pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from django.apps import apps
from django.utils.module_loading import import_string

LIST = "list"
FORM = "form"

GROUPS = {
    "organization": "Organization",
    "project": "Project",
    "usage": "Usage",
    "proposal": "Proposal",
    "financing": "Financing",
    "integrations": "Integrations",
}


@dataclass(frozen=True)
class SettingsPage:
    key: str
    label: str
    group: str
    model_label: str  # "app_label.ModelName"
    form_path: str | None  # dotted path of the form class; None: no page of its own
    layout: str = LIST
    description: str = ""
    columns: tuple[str, ...] = ()
    search_fields: tuple[str, ...] = ()
    item_label: str = "item"
    #: the organization's partners see its items read-only ("Shared by …") on this page
    shared_with_partners: bool = False
    synced: bool = field(default=False, init=False)

    @cached_property
    def model(self):
        return apps.get_model(self.model_label)

    @cached_property
    def form_class(self):
        return import_string(self.form_path) if self.form_path else None

    @property
    def group_label(self) -> str:
        return GROUPS[self.group]

    @property
    def has_page(self) -> bool:
        return self.form_path is not None

    @property
    def is_list(self) -> bool:
        return self.layout == LIST


LOCAL_PAGES: list[SettingsPage] = [
    SettingsPage(
        key="proposal_templates",
        label="Proposal templates",
        group="proposal",
        model_label="proposal.ProposalTemplate",
        form_path="settings_sync.proposal.forms.ProposalTemplateForm",
        description="Your proposal layouts.",
        columns=("name", "description", "page_count"),
        search_fields=("name",),
        item_label="template",
        shared_with_partners=True,
    ),
    SettingsPage(
        key="financing_products",
        label="Financing products",
        group="financing",
        model_label="unsynced.FinancingProduct",
        form_path="settings_sync.unsynced.forms.FinancingProductForm",
        description="Loans and leases offered to customers. Never synced with partners.",
        columns=("name", "lender", "apr_percent", "term_months", "dealer_fee_percent", "is_active"),
        search_fields=("name", "lender"),
        item_label="financing product",
    ),
    SettingsPage(
        key="integrations",
        label="Integrations",
        group="integrations",
        model_label="unsynced.Integration",
        form_path="settings_sync.unsynced.forms.IntegrationForm",
        description="Connections to other systems. Never synced with partners.",
        columns=("provider", "account", "is_enabled", "sync_leads"),
        search_fields=("account",),
        item_label="integration",
    ),
]
