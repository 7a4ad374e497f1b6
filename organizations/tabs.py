"""The tab bar of Organization Settings.

Each app that owns a tab registers it from its ``AppConfig.ready()``, so this app shows the
partnerships or sync tabs without importing those apps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from .addresses import address


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url_name: str
    order: int
    icon: str = ""
    #: a number shown beside the label (things waiting there for the organization)
    badge: int = 0
    #: the tab's address for the organization (set by ``for_organization``)
    url: str = ""


_tabs: dict[str, Tab] = {}
#: functions organization → {tab key: number}, registered by the apps that own the tabs
_badge_providers: list[Callable] = []


def register(tab: Tab) -> None:
    _tabs[tab.key] = tab


def all_tabs() -> list[Tab]:
    return sorted(_tabs.values(), key=lambda tab: tab.order)


def register_badges(provider: Callable) -> None:
    if provider not in _badge_providers:
        _badge_providers.append(provider)


def for_organization(organization) -> list[Tab]:
    """The tabs with their badges for ``organization``."""
    badges: dict[str, int] = {}
    for provider in _badge_providers:
        for key, count in provider(organization).items():
            badges[key] = badges.get(key, 0) + count
    return [
        replace(tab, badge=badges.get(tab.key, 0), url=_url(tab.url_name, organization.slug))
        for tab in all_tabs()
    ]


def _url(url_name: str, slug: str) -> str:
    """The tab's address, reversed once per process: every settings page shows every tab
    (docs/design.md §10)."""
    return address(url_name, slug)
