"""Rendering of setting values and their provenance."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.db.models import DecimalField
from django.template.defaultfilters import date as date_filter
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import capfirst

from ..locks import is_item_locked
from ..models import SyncRun
from ..provenance import origin

register = template.Library()


def _shown(field, value) -> str:
    """A value of ``field`` as a person reads it (choice labels, Yes/No, trimmed decimals)."""
    if value is None or value == "":
        return "—"
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Decimal) or isinstance(field, DecimalField):
        try:
            return f"{Decimal(str(value)).normalize():f}"
        except InvalidOperation:
            return str(value)
    if isinstance(value, list):
        return ", ".join(f"{Decimal(str(part)).normalize():f}" for part in value)
    if hasattr(value, "isoformat"):
        return date_filter(value, "M j, Y")
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


@register.simple_tag
def field_value(obj, name: str):
    """A field's value as a person reads it."""
    return _shown(obj._meta.get_field(name), getattr(obj, name))


@register.simple_tag
def shown_value(field, value):
    """A value of ``field`` (not read from an object: a version being compared)."""
    return _shown(field, value)


@register.simple_tag
def change_values(change, values: dict | None) -> list[tuple[str, str]]:
    """A sync change's values before or after, as (field's verbose name, value) pairs: a run
    records field names and raw values, a person reads labels."""
    from settings_sync import registry

    category = registry.find(change.category)
    rows = []
    for name, value in (values or {}).items():
        try:
            field = category.model._meta.get_field(name) if category else None
        except FieldDoesNotExist:
            field = None
        label = capfirst(field.verbose_name) if field else name.replace("_", " ").capitalize()
        rows.append((label, _shown(field, value)))
    return rows


@register.simple_tag
def field_label(model, name: str) -> str:
    return capfirst(model._meta.get_field(name).verbose_name)


@register.simple_tag
def provenance(item, lock=None):
    """ "Managed by", "Synced from … · originally from …", "Edited locally", or nothing for
    the organization's own (docs/design.md §14.2)."""
    partnership = getattr(item, "synced_partnership", None)
    if partnership is None:
        return ""
    upstream = partnership.upstream
    top = origin(item)
    if lock is not None or is_item_locked(item):
        manager = getattr(item, "managed_by", None) or upstream
        return format_html(
            '<span class="badge text-bg-warning provenance" title="Read-only: your channel '
            'manager keeps it equal to theirs"><i class="bi bi-lock-fill" aria-hidden="true">'
            "</i> Managed by {}{}</span>",
            manager,
            "" if manager == upstream else f" · synced from {upstream}",
        )
    originally = "" if top == upstream else f" · originally from {top}"
    if getattr(item, "sync_state", None) == "diverged":
        return format_html(
            '<span class="badge text-bg-info provenance" title="Copied from {}{}, then changed '
            'here">Edited locally</span>',
            upstream,
            originally,
        )
    return format_html(
        '<span class="badge text-bg-light border provenance"><i class="bi bi-arrow-repeat" '
        'aria-hidden="true"></i> Synced from {}{}</span>',
        upstream,
        originally,
    )


@register.simple_tag
def item_origin(item):
    """The organization at the top of the item's chain (``provenance.origin``)."""
    return origin(item)


@register.filter
def locked(item) -> bool:
    """Whether the partner may not edit or archive this item (``locks.is_item_locked``)."""
    return is_item_locked(item)


ACTION_LABELS = {
    "created": "created",
    "updated": "updated",
    "adopted": "adopted",
    "restored": "restored",
    "kept_local": "kept local",
    "archived": "archived",
    "detached": "detached",
    "conflict": "conflicts",
    "took_theirs": "taken from the channel manager",
    "kept_mine": "kept as edited",
}


@register.filter
def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


@register.filter
def event_label(event: str) -> str:
    from settings_sync import policy
    from settings_sync.models import DECISION, DECISION_LABEL

    return {**policy.EVENT_LABELS, DECISION: DECISION_LABEL}.get(event, event)


@register.filter
def outcome_label(outcome: str) -> str:
    from settings_sync import policy

    return policy.OUTCOME_LABELS.get(outcome, outcome)


@register.filter
def outcome_description(outcome: str) -> str:
    from settings_sync import policy

    return policy.OUTCOME_DESCRIPTIONS.get(outcome, "")


@register.filter
def distinct_values(mapping) -> list:
    """The values of a mapping, each once, in order of first appearance."""
    return list(dict.fromkeys((mapping or {}).values()))


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)


@register.simple_tag
def category_label(key: str) -> str:
    from settings_sync import registry

    try:
        return registry.get(key).label
    except KeyError:
        return key


_RUN_BADGES = {
    SyncRun.Status.SUCCEEDED: "text-bg-success",
    SyncRun.Status.FAILED: "text-bg-danger",
    SyncRun.Status.RUNNING: "text-bg-primary",
}


@register.simple_tag
def run_status(run: SyncRun) -> SafeString:
    """A run's status as a badge; a skipped run's note is its title. A tag, not an include:
    the Partnerships tab shows one in each row (docs/design.md §10)."""
    if run.status == SyncRun.Status.SKIPPED:
        return format_html(
            '<span class="badge text-bg-secondary" title="{}">Skipped</span>', run.note
        )
    if run.status in _RUN_BADGES:
        return format_html(
            '<span class="badge {}">{}</span>', _RUN_BADGES[run.status], run.get_status_display()
        )
    return mark_safe('<span class="badge text-bg-light border">Queued</span>')
