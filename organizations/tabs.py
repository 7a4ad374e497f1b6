"""The tab bar of Organization Settings.

Each app that owns a tab registers it from its ``AppConfig.ready()``, so this app shows the
partnerships or sync tabs without importing those apps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url_name: str
    order: int
    icon: str = ""


_tabs: dict[str, Tab] = {}


def register(tab: Tab) -> None:
    _tabs[tab.key] = tab


def all_tabs() -> list[Tab]:
    return sorted(_tabs.values(), key=lambda tab: tab.order)
