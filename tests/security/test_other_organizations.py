"""Another organization's ids: every organization-scoped URL answers 404 to a signed-in admin
of another organization, whether the URL names that organization or the admin's own with
someone else's ids, and changes nothing. A walk of the URL resolver fails for any URL with
parameters (an organization, an id) that is neither in the case list nor exempted with a
reason (docs/design.md §9.1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve, reverse
from hypothesis import example, given
from hypothesis import strategies as st

from organizations.models import Organization
from settings_sync.pages import GROUPS
from tests.security.world import (
    HOSTILE,
    Holdings,
    database_state,
)
from tests.settings_sync import catalogue_data as data

pytestmark = pytest.mark.django_db

# 1. Another organization's ids --------------------------------------------------------------

THEIRS = "their slug"
OURS = "our slug"


def no_ids(theirs: Holdings, ours: Holdings) -> dict:
    return {}


def no_data(theirs: Holdings) -> dict:
    return {}


@dataclass(frozen=True)
class Case:
    """One organization-scoped URL: the ids it takes, and POST data its owner could send."""

    url_name: str
    #: URL kwargs naming objects, from someone else's holdings (and ours, for mixed ids)
    ids: Callable[[Holdings, Holdings], dict] = no_ids
    #: URL kwargs that name no object (which settings page)
    fixed: dict = field(default_factory=dict)
    #: POST data the view would accept from the owner, so that only scoping can refuse it
    payload: Callable[[Holdings], dict] = no_data
    methods: tuple[str, ...] = ("GET", "POST")
    label: str = ""

    def __str__(self) -> str:
        return self.label or "/".join([self.url_name, *self.fixed.values()])

    def url(self, organization: Organization, theirs: Holdings, ours: Holdings) -> str:
        kwargs = {"org": organization.slug, **self.fixed, **self.ids(theirs, ours)}
        return reverse(self.url_name, kwargs=kwargs)


def settings_page_cases() -> list[Case]:
    """Every settings page, from the catalogue: new pages are covered as they are added."""
    cases = [Case(f"settings_sync:{group}") for group in GROUPS if group != "organization"]
    for page in data.PAGES:
        fixed = {"group": page.group, "key": page.key}
        if not page.is_list:
            valid = data.FORM_CASES[page.key].valid
            cases.append(
                Case("settings_sync:page", fixed=fixed, payload=lambda theirs, valid=valid: valid)
            )
            continue
        item = data.LIST_CASES[page.key]

        def item_ids(theirs, ours, key=page.key):
            return {"pk": theirs.items[key].pk}

        cases += [
            Case("settings_sync:page", fixed=fixed),
            Case("settings_sync:add", fixed=fixed, payload=lambda theirs, item=item: item.valid),
            Case(
                "settings_sync:edit", item_ids, fixed, payload=lambda theirs, item=item: item.edit
            ),
            Case("settings_sync:archive", item_ids, fixed),
        ]
        if page.synced and page.is_collection:
            cases.append(
                Case(
                    "settings_sync:update",
                    item_ids,
                    fixed,
                    payload=lambda theirs: {"decision": "keep", "note": "Ours now"},
                )
            )
        if page.synced and page.transferable:
            cases += [
                Case("settings_sync:export", fixed=fixed, methods=("GET",)),
                Case("settings_sync:import-template", fixed=fixed, methods=("GET",)),
                Case("settings_sync:import-upload", fixed=fixed),
            ]
    return cases


def their(name: str) -> Callable[[Holdings, Holdings], dict]:
    """The ``pk`` URL kwarg of one of someone else's objects: ``their("partnership")``."""
    return lambda theirs, ours: {"pk": getattr(theirs, name).pk}


def flexible_flags(theirs: Holdings) -> dict:
    return {"version": theirs.partnership.version, **dict.fromkeys(data.FLEXIBLE, "on")}


CASES = [
    Case("organizations:settings"),
    Case("organizations:organization", payload=lambda theirs: {"name": "Taken over"}),
    Case("partnerships:list", methods=("GET",)),
    Case("partnerships:network", methods=("GET",)),
    Case(
        "partnerships:invite",
        payload=lambda theirs: {"organization_name": "Summit", "email": "a@summit.example"},
    ),
    Case(
        "partnerships:request",
        payload=lambda theirs: {"organization": theirs.request.downstream.slug},
    ),
    Case("partnerships:organization-search", methods=("GET",)),
    Case("partnerships:request-detail", their("received"), methods=("GET",)),
    *[
        Case(f"partnerships:request-{decision}", their("request"), methods=("POST",))
        for decision in ("accept", "decline", "withdraw")
    ],
    Case("partnerships:invitation-revoke", their("invitation"), methods=("POST",)),
    Case("partnerships:invitation-resend", their("invitation"), methods=("POST",)),
    Case("partnerships:detail", their("partnership"), methods=("GET",)),
    Case("partnerships:edit", their("partnership"), payload=flexible_flags),
    Case("partnerships:end", their("partnership")),
    Case("settings_sync:history", methods=("GET",)),
    Case("settings_sync:run", their("run"), methods=("GET",)),
    Case("settings_sync:retry", their("failed_run"), methods=("POST",)),
    Case(
        "settings_sync:restore",
        lambda theirs, ours: {"pk": theirs.run.pk, "change_pk": theirs.change.pk},
        methods=("POST",),
    ),
    Case(
        "settings_sync:restore",
        lambda theirs, ours: {"pk": ours.run.pk, "change_pk": theirs.change.pk},
        methods=("POST",),
        label="settings_sync:restore (our run, their change)",
    ),
    Case("settings_sync:resync", their("partnership")),
    Case("settings_sync:drift", their("partnership"), methods=("GET",)),
    Case("settings_sync:resync-all"),
    Case("settings_sync:batch", their("batch"), methods=("GET",)),
    Case("settings_sync:history-export", methods=("GET",)),
    Case("settings_sync:profiles", methods=("GET",)),
    Case(
        "settings_sync:profile-new",
        payload=lambda theirs: {"name": "Taken over", "data_sync_enabled": "on"},
    ),
    Case(
        "settings_sync:profile-edit",
        their("profile"),
        payload=lambda theirs: {"name": "Taken over", "data_sync_enabled": "on"},
    ),
    Case("settings_sync:profile-archive", their("profile"), methods=("POST",)),
    Case(
        "settings_sync:profile-apply",
        their("profile"),
        payload=lambda theirs: {"action": "apply", "partnership": theirs.partnership.pk},
    ),
    Case("settings_sync:imports", methods=("GET",)),
    Case("settings_sync:import", their("upload"), methods=("GET",)),
    Case("settings_sync:import-apply", their("upload"), methods=("POST",)),
    *settings_page_cases(),
]


def names_objects(case: Case) -> bool:
    return case.ids is not no_ids


@pytest.mark.parametrize("case", CASES, ids=str)
def test_another_organizations_urls_are_not_found(world, visitor, untouched, case):
    """Attacks organization scoping: an admin of ours requests a URL naming another
    organization (a stranger, or our own channel manager), or naming ours with such an
    organization's object ids, by GET and by POST (with data the owner could send). Every
    answer is 404 (405 for a method the view never serves, refused before any lookup), and
    nothing in the database changes."""
    ours = world.ours
    if "GET" in case.methods:
        # With our own ids the page is served: the 404s below come from the scoping.
        assert visitor.get(case.url(ours.organization, ours, ours)).status_code in (200, 302)
    for owner, theirs in world.others.items():
        slugs = [THEIRS, OURS] if names_objects(case) else [THEIRS]
        for slug in slugs:
            organization = theirs.organization if slug == THEIRS else ours.organization
            url = case.url(organization, theirs, ours)
            responses = {"GET": visitor.get(url), "POST": visitor.post(url, case.payload(theirs))}
            for method, response in responses.items():
                expected = 404 if method in case.methods or slug == THEIRS else 405
                assert response.status_code == expected, f"{method} {url} ({owner}, {slug})"
    assert database_state() == untouched


#: URL patterns that take parameters yet are not organization-scoped, each with its reason.
#: (Home, sign-in, sign-out and the help page take none, so the walk below never asks.)
NOT_ORGANIZATION_SCOPED = {
    # The invitation link: its token is the credential of someone who has no organization yet
    # (test_unknown_invitation_tokens_show_the_invalid_link_page attacks it instead).
    "invitations/<str:token>/",
    # An organization's logo: public, like the logo printed on its proposals.
    "o/<slug:org>/logo/",
    # A user's own notifications, fetched through the signed-in user (another user's: 404,
    # tests/notifications/test_notifications.py attacks them).
    "notifications/<int:pk>/",
    "notifications/<int:pk>/read/",
    # The unsubscribe link of an email: its signed token is the credential (forged: 400).
    "notifications/unsubscribe/<str:token>/",
}
#: Django's admin, every route under it: for staff, across all organizations by design.
ADMIN = "admin/"


def is_exempt(route: str) -> bool:
    return route in NOT_ORGANIZATION_SCOPED or route.startswith(ADMIN)


def is_object_id(name: str) -> bool:
    """Whether a URL parameter names one object (as ``group`` and ``key`` do not)."""
    return name in ("pk", "id", "uuid", "token") or name.endswith(("_pk", "_id", "_uuid"))


def url_patterns(resolver: URLResolver | None = None, prefix: str = "", names=frozenset()):
    """(route, URL parameter names) of every pattern of the project, includes followed."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        parameters = names | set(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry, route, parameters)
        else:
            yield route, parameters


def test_every_scoped_url_is_in_the_case_list(world):
    """Attacks the case list itself: every URL pattern that takes a parameter (``org``, an id,
    a settings page) must be in the case list, with an id case (tried with our slug too) when
    it takes an id, or be exempted with a reason, so that no new view escapes the 404 check."""
    ours = world.ours
    covered, with_ids = set(), set()
    for case in CASES:
        route = resolve(case.url(ours.organization, ours, ours)).route
        covered.add(route)
        if names_objects(case):
            with_ids.add(route)
    missing, missing_ids = [], []
    for route, parameters in url_patterns():
        if not parameters or is_exempt(route):
            continue
        if route not in covered:
            missing.append(route)
        elif any(map(is_object_id, parameters)) and route not in with_ids:
            missing_ids.append(route)
    assert not missing, f"URLs missing from CASES: {missing}"
    assert not missing_ids, f"URLs whose ids CASES never tries: {missing_ids}"


@HOSTILE
@given(token=st.text(min_size=1).filter(lambda token: "/" not in token))
@example(token="x" * 43)  # as long as a real token
def test_unknown_invitation_tokens_show_the_invalid_link_page(untouched, token):
    """Attacks the one exempted URL whose id is its own credential: any token that is not an
    invitation's, opened or posted with a sign-up by someone signed out, gets the clear
    "invalid link" page (404) and creates no user, organization or partnership."""
    anonymous = Client(raise_request_exception=False)
    url = reverse("invitations:accept", args=[token])
    sign_up = {
        "username": "intruder",
        "email": "intruder@example.com",
        "password1": "a long Passphrase 42",
        "password2": "a long Passphrase 42",
    }
    for response in (anonymous.get(url), anonymous.post(url, sign_up)):
        assert response.status_code == 404
        assert "This invitation link is not valid" in response.content.decode()
    assert database_state() == untouched
