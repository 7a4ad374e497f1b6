"""Shared pytest fixtures: isolated media, signed-in clients, browser launch options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import hypothesis_profiles

# Playwright's sync API keeps an event loop running in the main thread for the whole session;
# Django's ORM would otherwise refuse to run beside it in browser tests.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Small and fast by default; HYPOTHESIS_PROFILE=deep explores much further.
hypothesis_profiles.load()

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploaded files of a test go to a directory of its own, removed afterwards."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def _user_of(organization, role: str):
    from tests.factories import MembershipFactory

    return MembershipFactory(organization=organization, role=role).user


def _organization(**fields):
    from tests.factories import OrganizationFactory

    return OrganizationFactory(**fields)


# The same people everywhere: an organization with an admin and a member, and the channel
# manager of most stories with its partner (modules may give them settings of their own).


@pytest.fixture
def organization(db):
    return _organization()


@pytest.fixture
def admin_user(organization):
    return _user_of(organization, "admin")


@pytest.fixture
def member_user(organization):
    return _user_of(organization, "member")


@pytest.fixture
def channel_manager(db):
    return _organization(name="Helios Energy Partners")


@pytest.fixture
def partner(db):
    return _organization(name="Sunrise Solar")


@pytest.fixture
def channel_manager_admin(channel_manager):
    return _user_of(channel_manager, "admin")


@pytest.fixture
def partner_admin(partner):
    return _user_of(partner, "admin")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def member_client(client, member_user):
    client.force_login(member_user)
    return client


#: Tests far longer than the others (seconds to a minute, where most take a tenth of a second),
#: longest first. They start before the rest, so that pytest-xdist's workers finish together
#: rather than one running the last of them alone while the other waits.
LONGEST = (
    "tests/browser/test_walk.py::",
    "tests/browser/test_profiles.py::test_a_profile_applied_to_200_partners",
    "tests/settings_sync/test_engine_stateful.py::test_sync_guarantees_hold_for_random_sequences",
    "tests/settings_sync/test_in_sync.py::test_what_the_statement_skips_the_rules_would_not_change",
    "tests/settings_sync/test_faults.py::test_fan_out_drained_by_two_worker_processes",
    "tests/settings_sync/test_fleet_counts.py::test_the_fleet_counts_are_the_engines_plans_added_up",
    "tests/settings_sync/test_cascade_network.py::",
)


def _started_first(item) -> int:
    return next(
        (rank for rank, start in enumerate(LONGEST) if item.nodeid.startswith(start)),
        len(LONGEST),
    )


def pytest_collection_modifyitems(config, items):
    """The longest tests first (the rest in their order). Tests that need what this machine
    lacks skip themselves and say why.

    CI installs Chromium and PostgreSQL and refuses any skip; a newcomer's plain
    ``uv run pytest`` still passes everything it can run.
    """
    items.sort(key=_started_first)
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    has_chromium = Path(CHROMIUM).exists()
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "browser" in item.keywords and not has_chromium:
            item.add_marker(pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}"))
