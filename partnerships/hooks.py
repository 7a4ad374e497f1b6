"""Extension points for apps that add to partnership pages without this app knowing them.

The sync app registers here (from its ``AppConfig.ready()``) to show a preview under the flag
form, sync status on the Partnerships tab, and history on a partnership's page; this app only
calls what is registered.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

#: (request, partnerships on the page) → True, having set on each partnership ``sync_cell``:
#: the HTML of its cell in the list's sync column (read for the page in bulk, written without
#: a template per row, docs/design.md §10).
_list_decorators: list[Callable] = []
#: (request, partnership, oob) → HTML shown on the partnership's page; with ``oob`` True it
#: is sent along an htmx response to replace the section already on the page.
_detail_sections: list[Callable] = []
#: (request, partnership with edited flags, stored mode) → HTML shown under the flag form.
_flag_previews: list[Callable] = []
#: (request, upstream, downstream or None, flags, organization name, invited) → HTML under
#: the invitation and request forms, and on the page where a request is answered. The
#: downstream is given only to show its own admins what would change in it.
_offer_previews: list[Callable] = []


#: (request, partnership, submitted data or None, flags shown, validate) → a part of the
#: Partnership Details form, shown under the flags (per-category overrides): an object with
#: ``html``, ``errors`` (messages; the form is not saved while there are any),
#: ``apply(edited)`` (show its values in the preview) and ``save(partnership, *, by,
#: mode_before)`` (called in the transaction that saves the flags).
_flag_form_parts: list[Callable] = []
#: (request, submitted data or None, validate) → a part of the invitation and request forms
#: (a sync profile to name): an object with ``html``, ``errors``, ``flags`` (the flags it
#: sets, or None), ``overrides`` (for the preview) and ``save(offer)`` (called in the
#: transaction that creates the invitation or request).
_offer_form_parts: list[Callable] = []
#: (request, partnership) → HTML shown inside Partnership Details, under the flags.
_details_parts: list[Callable] = []


def register_flag_form_part(function: Callable) -> None:
    _flag_form_parts.append(function)


def register_offer_form_part(function: Callable) -> None:
    _offer_form_parts.append(function)


def offer_form_parts(request: HttpRequest, data, *, validate: bool) -> list:
    return [function(request, data, validate=validate) for function in _offer_form_parts]


def register_details_part(function: Callable) -> None:
    _details_parts.append(function)


def flag_form_parts(
    request: HttpRequest, partnership, data, flags: dict, *, validate: bool
) -> list:
    return [
        function(request, partnership, data, flags, validate=validate)
        for function in _flag_form_parts
    ]


def details_parts(request: HttpRequest, partnership) -> SafeString:
    return _join(function(request, partnership) for function in _details_parts)


def register_list_decorator(function: Callable) -> None:
    _list_decorators.append(function)


def register_detail_section(function: Callable) -> None:
    _detail_sections.append(function)


def register_flag_preview(function: Callable) -> None:
    _flag_previews.append(function)


def register_offer_preview(function: Callable) -> None:
    _offer_previews.append(function)


def decorate_list(request: HttpRequest, partnerships: list) -> bool:
    """Whether an app adds the sync column (each partnership then carries ``sync_cell``)."""
    column = False
    for function in _list_decorators:
        column = function(request, partnerships) or column
    return column


def _join(parts) -> SafeString:
    return mark_safe("".join(str(part) for part in parts))  # noqa: S308 (rendered templates)


def detail_sections(request: HttpRequest, partnership, *, oob: bool = False) -> SafeString:
    return _join(function(request, partnership, oob=oob) for function in _detail_sections)


def flag_preview(request: HttpRequest, partnership, stored_mode: str) -> SafeString:
    return _join(function(request, partnership, stored_mode) for function in _flag_previews)


def offer_preview(request: HttpRequest, **kwargs) -> SafeString:
    return _join(function(request, **kwargs) for function in _offer_previews)
