"""A partnership's mode and flags as badges.

The badges are tags written in Python, not included templates: the Partnerships tab shows
them in each of its rows, and an include costs several times more to render
(docs/design.md §10).
"""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from partnerships import modes

register = template.Library()


@register.filter
def mode_label(mode: str) -> str:
    return modes.MODE_LABELS.get(mode, mode)


@register.filter
def mode_description(mode: str) -> str:
    return modes.MODE_DESCRIPTIONS.get(mode, "")


@register.simple_tag
def mode_badge(mode: str, testid: str = "") -> SafeString:
    """The mode's label in a pill, its description in the title."""
    return format_html(
        '<span class="badge rounded-pill mode-badge mode-{}" data-testid="{}" title="{}">{}</span>',
        mode,
        testid or "mode-badge",
        mode_description(mode),
        mode_label(mode),
    )


_EXCLUSIVE = {
    True: '<span class="badge text-bg-primary">Exclusive</span>',
    False: '<span class="badge text-bg-light border text-body-secondary">Not exclusive</span>',
}
_DATA_SYNC = {
    True: '<span class="badge text-bg-success">Data Sync on</span>',
    False: '<span class="badge text-bg-light border text-body-secondary">Data Sync off</span>',
}
_PARTNER_EDITS = {
    True: '<span class="badge text-bg-info">Partner may edit</span>',
    False: '<span class="badge text-bg-warning">Partner may not edit</span>',
}


@register.simple_tag
def flag_badges(item) -> SafeString:
    """The flags of a partnership, invitation or request; whether the partner may edit is
    shown only where it matters (exclusive with Data Sync)."""
    badges = [_EXCLUSIVE[bool(item.is_exclusive)], _DATA_SYNC[bool(item.data_sync_enabled)]]
    if item.is_exclusive and item.data_sync_enabled:
        badges.append(_PARTNER_EDITS[bool(item.allow_downstream_edit)])
    return format_html(
        '<span class="d-inline-flex flex-wrap gap-1">{}</span>',
        mark_safe("".join(badges)),  # noqa: S308 (constant HTML)
    )
