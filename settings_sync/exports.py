"""Exports: a collection category's live items and the sync history, one row each, as CSV or
an Excel workbook, streamed (docs/design.md §11). The columns of a category are the fields
of its form, headed by their labels; the import reads the same headers back."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Q
from django.utils.text import capfirst

from organizations.models import Organization

from . import spreadsheets
from .models import SyncRun
from .registry import Category

CHUNK_SIZE = 2000
SYNCED_FROM = "Synced from"
SYNC_STATE = "Sync state"
#: Columns an export adds after the fields: read-only facts, skipped by the import.
PROVENANCE_HEADERS = (SYNCED_FROM, SYNC_STATE)
YES, NO = "yes", "no"


def field_names(category: Category) -> list[str]:
    return list(category.form_class._meta.fields)


def header(category: Category, name: str) -> str:
    return capfirst(category.model._meta.get_field(name).verbose_name)


def cell(category: Category, item, name: str, form_fields: dict):
    """One field of an item as a cell: numbers as numbers, yes/no, lists as the form types
    them, choices by their stored value."""
    value = getattr(item, name)
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, (list, dict)):
        return form_fields[name].prepare_value(value)
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1)) if value == value.to_integral() else value
    return value


def category_rows(category: Category, items) -> Iterator[list]:
    names = field_names(category)
    form_fields = category.form_class(organization=None).fields
    items = items.order_by(*category.model._meta.ordering, "pk")
    if not category.is_collection:  # invite-only (licenses): always the organization's own
        for item in items.iterator(chunk_size=CHUNK_SIZE):
            yield [cell(category, item, name, form_fields) for name in names]
        return
    items = items.with_sync_state().select_related("synced_partnership__upstream")
    for item in items.iterator(chunk_size=CHUNK_SIZE):
        upstream = item.synced_partnership.upstream if item.synced_partnership_id else None
        yield [
            *(cell(category, item, name, form_fields) for name in names),
            f"{upstream.name} ({upstream.slug})" if upstream else "",
            item.sync_state_value,
        ]


def _item_header(category: Category) -> list[str]:
    provenance = PROVENANCE_HEADERS if category.is_collection else ()
    return [*(header(category, name) for name in field_names(category)), *provenance]


def export_category(*, category: Category, organization: Organization, fmt: str):
    """Every live item of the organization in the category."""
    return spreadsheets.response(
        fmt,
        _item_header(category),
        category_rows(category, category.model.objects.filter(organization=organization)),
        file_name=f"{organization.slug}-{category.key}",
        title=category.label,
    )


def export_items(*, category: Category, items, file_name: str):
    """Chosen items (the admin's action) as CSV."""
    return spreadsheets.csv_response(
        _item_header(category), category_rows(category, items), file_name=file_name
    )


def template(*, category: Category, organization: Organization):
    """An empty file with the category's columns, to start an import from."""
    head = [header(category, name) for name in field_names(category)]
    return spreadsheets.csv_response(head, [], file_name=f"{category.key}-template")


# Sync history ------------------------------------------------------------------------------

HISTORY_HEADER = [
    "Run",
    "Created",
    "Started",
    "Finished",
    "Channel manager",
    "Partner",
    "Event",
    "Mode",
    "Categories",
    "Status",
    "Trigger",
    "Started by",
    "Changes",
    "Error",
    "Note",
]


def runs_of(organization: Organization, *, status: str = ""):
    runs = SyncRun.objects.filter(
        Q(partnership__upstream=organization) | Q(partnership__downstream=organization)
    ).for_list()
    if status in SyncRun.Status.values:
        runs = runs.filter(status=status)
    return runs


def _when(value) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def history_rows(runs) -> Iterator[list]:
    for run in runs.iterator(chunk_size=CHUNK_SIZE):
        yield [
            run.pk,
            _when(run.created_at),
            _when(run.started_at),
            _when(run.finished_at),
            run.partnership.upstream.name,
            run.partnership.downstream.name,
            run.get_event_display(),
            run.mode,
            ", ".join(run.categories or []) or "all",
            run.get_status_display(),
            run.trigger,
            run.started_by.get_username() if run.started_by else "",
            run.total_changes,
            run.error,
            run.note,
        ]


def export_history(*, organization: Organization, status: str, fmt: str):
    return spreadsheets.response(
        fmt,
        HISTORY_HEADER,
        history_rows(runs_of(organization, status=status)),
        file_name=f"{organization.slug}-sync-history",
        title="Sync history",
    )
