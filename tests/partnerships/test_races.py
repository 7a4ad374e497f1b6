"""Partnership workflows racing each other on PostgreSQL, as two requests at the same moment.

Each race is made certain, never left to timing: the test holds a lock from a connection of
its own until PostgreSQL shows both contenders waiting, so that both have made their checks
before either commits (without the fix under test, both then succeed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from organizations.models import Organization
from partnerships import services
from partnerships.models import Partnership
from tests.factories import OrganizationFactory, UserFactory, make_partnership
from tests.settings_sync.test_faults import (
    TIMEOUT,
    in_thread,
    wait_for,
    waiting_backends,
)

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@contextmanager
def partnership_inserts_held() -> Iterator[None]:
    """Hold a SHARE lock on the partnerships table from a connection of its own until the
    block exits: reading partnerships goes on, adding one waits."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Partnership._meta.db_table} IN SHARE MODE")
                locked.set()
                release.wait(4 * TIMEOUT)  # a safety net only: the test releases it
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(TIMEOUT), "the partnerships table was not locked"
        yield
    finally:
        release.set()
        holder.join(TIMEOUT)


def test_two_links_closing_a_cycle_at_the_same_moment():
    """With A → B and C → D, B → C and D → A are created at the same moment. Each alone is
    fine; together they close the cycle A → B → C → D → A. They touch four different
    organizations, so their row locks never meet: exactly one must be refused all the same."""
    a, b, c, d = (OrganizationFactory(name=f"Organization {letter}") for letter in "ABCD")
    make_partnership(a, b)
    make_partnership(c, d)

    def link(upstream, downstream) -> str:
        try:
            services.create_partnership(upstream, downstream, by=None)
        except ValidationError as error:
            return error.code
        return "created"

    with ThreadPoolExecutor(max_workers=2) as pool:
        with partnership_inserts_held():
            links = [in_thread(pool, link, b, c), in_thread(pool, link, d, a)]
            wait_for(lambda: len(waiting_backends()) >= 2, "both links to be in flight")
        outcomes = sorted(future.result(TIMEOUT) for future in links)

    assert outcomes == ["created", "cycle"]
    assert Partnership.objects.active().count() == 3


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        # One slug for two names: both organizations are created, under two slugs.
        (("Summit Solar", "Summit-Solar"), [302, 302]),
        # One name (names are unique): one is created, the other invitee is told why.
        (("Summit Solar", "summit  SOLAR"), [302, 410]),
    ],
)
def test_two_invitations_accepted_at_the_same_moment(names, expected):
    """Two channel managers invite organizations whose slugs (or names) are the same, and
    both invitations are accepted at the same moment: never an error page, never two
    organizations of one name."""
    invitations = [
        services.invite_organization(
            OrganizationFactory(), name=name, email=f"owner-{n}@summit.example", invited_by=None
        )
        for n, name in enumerate(names)
    ]
    statuses = accepted_at_the_same_moment(invitations)

    assert sorted(statuses) == expected
    created = Organization.objects.filter(slug__startswith="summit-solar")
    assert (
        sorted(created.values_list("slug", flat=True))
        == (["summit-solar", "summit-solar-2"][: expected.count(302)])
    )
    assert Partnership.objects.active().count() == expected.count(302)


def test_two_invitations_to_one_email_accepted_at_the_same_moment():
    """Two channel managers invite one company under two names, and both links are used at
    the same moment: one organization is created, the other invitee is told why."""
    invitations = [
        services.invite_organization(
            OrganizationFactory(), name=name, email="owner@summit.example", invited_by=None
        )
        for name in ("Summit Solar", "Summit Solar West")
    ]
    statuses = accepted_at_the_same_moment(invitations)
    assert sorted(statuses) == [302, 410]
    assert Organization.objects.filter(name__startswith="Summit Solar").count() == 1
    assert Partnership.objects.active().count() == 1


def accepted_at_the_same_moment(invitations) -> list[int]:
    """The status codes of accepting each invitation from its own signed-in client, all at
    once: the first new organization stays uncommitted (its partnership waits) until every
    other acceptance waits too."""
    clients = []
    for _ in invitations:
        client = Client(raise_request_exception=False)
        client.force_login(UserFactory())
        clients.append(client)

    links = [reverse("invitations:accept", args=[each.issue_token()]) for each in invitations]

    def accept(client: Client, link: str) -> int:
        return client.post(link).status_code

    with ThreadPoolExecutor(max_workers=len(invitations)) as pool:
        with partnership_inserts_held():
            accepts = [in_thread(pool, accept, *pair) for pair in zip(clients, links, strict=True)]
            wait_for(
                lambda: len(waiting_backends()) >= len(invitations),
                "every acceptance to be in flight",
            )
        return [future.result(TIMEOUT) for future in accepts]
