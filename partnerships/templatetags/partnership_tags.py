"""A partnership's mode and flags as badges.

The badges are tags written in Python, not included templates: the Partnerships tab shows
them in each of its rows, and an include costs several times more to render
(docs/design.md §10).
"""

from functools import cache, lru_cache

from django import template
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

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
    return _mode_badge(mode, testid or "mode-badge")


@lru_cache(maxsize=64)  # a few modes: one in each row of the Partnerships tab (docs/design.md §10)
def _mode_badge(mode: str, testid: str) -> SafeString:
    return format_html(
        '<span class="badge rounded-pill mode-badge mode-{}" data-testid="{}" title="{}">{}</span>',
        mode,
        testid,
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
    return _flag_badges(
        bool(item.is_exclusive), bool(item.data_sync_enabled), bool(item.allow_downstream_edit)
    )


@cache  # eight combinations of the flags
def _flag_badges(exclusive: bool, data_sync: bool, partner_edits: bool) -> SafeString:
    badges = [_EXCLUSIVE[exclusive], _DATA_SYNC[data_sync]]
    if exclusive and data_sync:
        badges.append(_PARTNER_EDITS[partner_edits])
    return format_html(
        '<span class="d-inline-flex flex-wrap gap-1">{}</span>',
        mark_safe("".join(badges)),  # noqa: S308 (constant HTML)
    )


@register.simple_tag(takes_context=True)
def partnership_rows(context, page, partner_field: str) -> SafeString:
    """The rows of a page of the Partnerships tab's table: the partner (or channel manager)
    with a link to the partnership, its flags, mode, creation date, the sync column's cell
    (``sync_cell``, set by the sync app) on the downstream table, and the status unless only
    active partnerships are listed. Written in Python, not a template, and with the constant
    parts of each row (badges, the link's text around its id) made once: the rows were most
    of the tab's rendering (docs/design.md §10)."""
    slug = context["current_organization"].slug
    before, _, after = reverse("partnerships:detail", args=[slug, _MARKER]).rpartition(str(_MARKER))
    before, after = escape(before), escape(after)
    with_cell = bool(context.get("sync_cell")) and partner_field == "downstream"
    with_status = context.get("status") != "active"
    dates: dict = {}
    rows = []
    for partnership in page:
        created = template_localtime(partnership.created_at).date()
        if created not in dates:  # most rows of a page share a few days
            dates[created] = escape(date_filter(created, "M j, Y"))
        cell = f"<td>{partnership.sync_cell}</td>" if with_cell else ""
        status = f"<td>{escape(partnership.get_status_display())}</td>" if with_status else ""
        rows.append(
            f'<tr>\n          <th scope="row" class="fw-normal"><a href="{before}'
            f'{int(partnership.pk)}{after}" class="fw-semibold">'
            f"{escape(getattr(partnership, partner_field).name_with_slug)}</a></th>\n"
            f"          <td>{flag_badges(partnership)}</td>\n"
            f"          <td>{_mode_badge(partnership.mode, 'mode-badge')}</td>\n"
            f'          <td class="text-nowrap">{dates[created]}</td>\n'
            f"          {cell}{status}\n        </tr>\n"
        )
    return mark_safe("".join(rows))  # noqa: S308 (constant HTML and escaped values)


#: An id no partnership has, where the link's id goes: the link is reversed once.
_MARKER = 987654321987654321
