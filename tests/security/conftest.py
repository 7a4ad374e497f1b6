"""One world per module, built once (it takes a second; every test reads it)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from partnerships.models import Partnership
from settings_sync import status
from tests.security.world import (
    DatabaseState,
    build_world,
    database_state,
)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, built once for the module (it takes a second; every test reads it).

    It lives in a transaction of its own that is rolled back after the module; each test runs
    in a savepoint inside it, as usual.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        built = build_world()
        # A page that shows drift keeps its counts (docs/design.md §10): kept here, as the
        # first visits would keep them, so that a page served leaves the database as it was.
        status.statuses(list(Partnership.objects.all()))
        yield built
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def visitor(world) -> Client:
    """The admin of ``ours``, signed in; a server error comes back as a 500 response."""
    client = Client(raise_request_exception=False)
    client.force_login(world.ours.admin)
    return client


@pytest.fixture(scope="module")
def untouched(world, visitor) -> DatabaseState:
    """The database as the world left it: every test (and every hypothesis example) starts
    from it, so a refused request must leave it exactly so."""
    return database_state()
