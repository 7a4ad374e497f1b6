"""Lookup of every settings page by key: the synced categories and the never-synced pages."""

from __future__ import annotations

from django.http import Http404

from . import registry
from .pages import LOCAL_PAGES, SettingsPage


def all_pages() -> list[SettingsPage]:
    return [*registry.all(), *LOCAL_PAGES]


def pages_in(group: str) -> list[SettingsPage]:
    return [page for page in all_pages() if page.group == group and page.has_page]


def page_or_404(group: str, key: str) -> SettingsPage:
    for page in all_pages():
        if page.key == key and page.group == group and page.has_page:
            return page
    raise Http404("No such settings page.")
