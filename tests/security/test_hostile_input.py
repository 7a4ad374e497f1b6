"""Hostile input: every form a user can post (and every search box), fed hypothesis-generated
strings, huge and non-finite numbers, lists where one value is expected and missing fields,
never answers 500; a refused submission changes nothing and an accepted one stores only
valid data (docs/design.md §9.6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import Client
from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from organizations.models import Organization
from partnerships import modes
from partnerships.forms import InvitationSignupForm
from partnerships.models import Invitation, Partnership, PartnershipRequest
from tests.images import image_bytes, png_claiming
from tests.security.world import (
    HOSTILE,
    STRANGER,
    DatabaseState,
    World,
    changed_rows,
    database_state,
    rows,
    undone,
)
from tests.settings_sync import catalogue_data as data

pytestmark = pytest.mark.django_db

# 2. Hostile input ---------------------------------------------------------------------------


class Missing:
    """A field left out of the submission."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()

#: Inputs that break forms: a NUL byte (PostgreSQL refuses it in a query), an exponent that
#: takes minutes to expand, more digits than Python turns into an integer, a NaN that raises
#: when compared, and more text than any column holds (SQLite refuses it as a LIKE pattern).
KILLERS = ["\x00", "1e999999999", "9" * 5000, "sNaN", "x" * 100_000]
#: More of the same kind: signs, non-finite numbers, digits of other scripts, markup, format
#: strings, dates and addresses out of range
NASTY = [
    *KILLERS,
    "-1e999999999",
    "-Infinity",
    "١٢٣",
    "",
    " ",
    "-0",
    "+1",
    "1e-999999999",
    "0." + "0" * 500 + "1",
    "NaN",
    "inf",
    "1_000",
    "½",
    "0x10",
    "1,5",
    "true",
    "None",
    "[]",
    "{}",
    "%s%n",
    "{0}{customer_name",
    "<script>alert(1)</script>",
    "' OR 1=1; --",
    "\u202egnp.exe",
    "\ufeff",
    "9999-12-31",
    "0000-00-00",
    "99999-01-01",
    "@",
    "a@" + "b" * 300 + ".com",
]
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),  # around the 64-bit limits
    st.floats(),  # nan, inf, -0.0, 5e-324, 1.8e308
    st.decimals(),  # sNaN, -Infinity, 1E+999999
    st.decimals(places=40, allow_nan=False, allow_infinity=False),  # many digits
)
SCALARS = st.one_of(st.text(), st.sampled_from(NASTY), NUMBERS.map(str))
#: what a field may receive: a hostile scalar, several values, a file, or nothing at all
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, min_size=2, max_size=4),
    st.builds(SimpleUploadedFile, st.just("junk.bin"), st.binary(max_size=64)),
    st.just(MISSING),
)


def submitted(valid: dict, changes: dict) -> dict:
    post = {**valid, **changes}
    return {name: value for name, value in post.items() if value is not MISSING}


def assert_handled(response, model: type[models.Model], untouched: DatabaseState) -> None:
    """No server error; a refused submission leaves ``model``'s table as it was, an accepted
    one (a redirect) stores only rows that pass the model's own validation."""
    assert response.status_code < 500
    if response.status_code == 302:
        for row in changed_rows(model, untouched):
            row.full_clean()
    else:
        assert rows(model) == untouched[model._meta.label]


@dataclass(frozen=True)
class Form:
    """A form a user can post: its fields, the table it writes, and where it is posted with a
    valid submission (a settings list's form both adds and edits)."""

    label: str
    model: type[models.Model]
    fields: tuple[str, ...]
    submissions: Callable[[World], list[tuple[str, dict]]]
    signed_in: bool = True  # posted by our admin, or by someone without an account

    def __str__(self) -> str:
        return self.label

    def client(self, visitor: Client) -> Client:
        return visitor if self.signed_in else Client(raise_request_exception=False)


def our_url(world: World, name: str, **kwargs) -> str:
    return reverse(name, kwargs={"org": world.ours.organization.slug, **kwargs})


def list_submissions(world: World, page) -> list[tuple[str, dict]]:
    organization, case = world.ours.organization, data.LIST_CASES[page.key]
    item = world.ours.items[page.key]
    return [
        (data.url("add", organization, page), case.valid),
        (data.url("edit", organization, page, item.pk), case.edit),
    ]


def settings_forms() -> list[Form]:
    """Every settings page's form, from the catalogue: new pages are attacked as they come."""
    forms = [
        Form(
            page.key,
            page.model,
            tuple(page.form_class.base_fields),
            lambda world, page=page: list_submissions(world, page),
        )
        for page in data.LIST_PAGES
    ]
    forms += [
        Form(
            page.key,
            page.model,
            tuple(page.form_class.base_fields),
            lambda world, page=page: [
                (data.url("page", world.ours.organization, page), data.FORM_CASES[page.key].valid)
            ],
        )
        for page in data.FORM_PAGES
    ]
    return forms


FORMS = [
    Form(
        "organization profile",
        Organization,
        ("name", "logo"),
        lambda world: [(our_url(world, "organizations:organization"), {"name": "Sunrise Inc."})],
    ),
    Form(
        "partnership flags",
        Partnership,
        ("version", *modes.FLAG_NAMES),
        lambda world: [
            (
                our_url(world, "partnerships:edit", pk=world.ours.partnership.pk),
                {"version": world.ours.partnership.version, **dict.fromkeys(data.FLEXIBLE, "on")},
            )
        ],
    ),
    Form(
        "invitation",
        Invitation,
        ("organization_name", "email", *modes.FLAG_NAMES),
        lambda world: [
            (
                our_url(world, "partnerships:invite"),
                {
                    "organization_name": "Summit Solar Co.",
                    "email": "owner@summit.example",
                    "data_sync_enabled": "on",
                },
            )
        ],
    ),
    Form(
        "partnership request",
        PartnershipRequest,
        ("organization", "message", *modes.FLAG_NAMES),
        lambda world: [
            (
                our_url(world, "partnerships:request"),
                {
                    "organization": world.others[STRANGER].organization.name,
                    "message": "Shall we work together?",
                    "data_sync_enabled": "on",
                },
            )
        ],
    ),
    Form(
        "invitation sign-up",
        get_user_model(),
        tuple(InvitationSignupForm.base_fields),
        lambda world: [
            (
                reverse("invitations:accept", args=[world.ours.invitation_token]),
                {
                    "username": "summit-owner",
                    "email": "owner@summit.example",
                    "password1": "a long Passphrase 42",
                    "password2": "a long Passphrase 42",
                },
            )
        ],
        signed_in=False,
    ),
    *settings_forms(),
]


@pytest.mark.parametrize("form", FORMS, ids=str)
@HOSTILE
@given(change=st.data())
def test_hostile_field_changes_nothing(world, visitor, untouched, form, change):
    """Attacks every form's fields one at a time: a valid submission with one field replaced
    by a hypothesis-generated string, number, list or file, or left out. Never a 500; refused,
    nothing changes; accepted, what is stored is valid."""
    url, valid = change.draw(st.sampled_from(form.submissions(world)), label="where")
    name = change.draw(st.sampled_from(form.fields), label="field")
    value = change.draw(VALUES, label="value")
    with undone():
        response = form.client(visitor).post(url, submitted(valid, {name: value}))
        assert_handled(response, form.model, untouched)


@pytest.mark.parametrize("form", FORMS, ids=str)
def test_known_killers_in_every_field_change_nothing(world, visitor, untouched, form):
    """Attacks every form with each known killer in all of its fields at once (the exponent
    bomb in a monthly profile kept a worker busy for minutes). Never a 500, nothing changes."""
    for url, valid in form.submissions(world):
        for killer in KILLERS:
            with undone():
                post = submitted(valid, dict.fromkeys(form.fields, killer))
                response = form.client(visitor).post(url, post)
                assert_handled(response, form.model, untouched)


#: How a checkbox reads a posted value: only what is unambiguous (a missing box is unticked).
CHECKBOX = {"on": True, "true": True, "": False, "false": False, MISSING: False}


@pytest.mark.parametrize(
    "form", [form for form in FORMS if set(modes.FLAG_NAMES) <= set(form.fields)], ids=str
)
@HOSTILE
@given(
    flags=st.fixed_dictionaries(
        {name: st.sampled_from(list(CHECKBOX)) for name in modes.FLAG_NAMES}
    ),
    refresh=st.booleans(),
    htmx=st.booleans(),
)
def test_forged_flag_combinations_are_refused(
    world, visitor, untouched, form, flags, refresh, htmx
):
    """Attacks the flag forms (partnership, invitation, request) with every combination of
    ticks, including the impossible ones a browser never sends (Allow Downstream to Edit
    without Exclusive and Data Sync), as a plain or htmx submit or a redraw. An impossible
    combination is refused, not quietly corrected; a redraw saves nothing; whatever is saved
    carries exactly the flags posted."""
    ticked = {name: CHECKBOX[value] for name, value in flags.items()}
    [(url, valid)] = form.submissions(world)
    unticked = {name: value for name, value in valid.items() if name not in flags}
    post = submitted(unticked, {**flags, "_refresh": "1" if refresh else MISSING})
    headers = {"HX-Request": "true"} if htmx else {}
    with undone():
        response = visitor.post(url, post, headers=headers)
        assert response.status_code < 500
        changed = changed_rows(form.model, untouched)
        impossible = ticked["allow_downstream_edit"] and not (
            ticked["is_exclusive"] and ticked["data_sync_enabled"]
        )
        if impossible or refresh:
            assert not changed
        for row in changed:
            assert row.flags == ticked


@HOSTILE
@given(offset=st.integers(), htmx=st.booleans())
@example(offset=0, htmx=False)  # the right version saves
def test_stale_or_forged_versions_are_refused(world, visitor, untouched, offset, htmx):
    """Attacks the partnership's edit lock: a flag change posted with any version but the
    current one (stale, negative, beyond 64 bits) is refused and changes nothing."""
    partnership = world.ours.partnership
    post = {"version": partnership.version + offset, **dict.fromkeys(data.FLEXIBLE, "on")}
    headers = {"HX-Request": "true"} if htmx else {}
    with undone():
        response = visitor.post(
            our_url(world, "partnerships:edit", pk=partnership.pk), post, headers=headers
        )
        assert response.status_code < 500
        saved = Partnership.objects.get(pk=partnership.pk)
        if offset:
            assert (saved.version, saved.flags) == (partnership.version, partnership.flags)
        else:
            assert (saved.version, saved.mode) == (partnership.version + 1, modes.FLEXIBLE)


REAL_IMAGES = [image_bytes(image_format) for image_format in ("PNG", "JPEG", "WEBP")]
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a"]
MAGIC += [b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00", b"%PDF-1.4", b"<svg"]


@st.composite
def damaged_images(draw) -> bytes:
    """A real image cut short or with a byte changed, or a known header over random bytes."""
    image = draw(st.sampled_from(REAL_IMAGES))
    position = draw(st.integers(min_value=0, max_value=len(image) - 1))
    return draw(
        st.one_of(
            st.just(image[:position]),
            st.integers(0, 255).map(
                lambda byte: image[:position] + bytes([byte]) + image[position + 1 :]
            ),
            st.tuples(st.sampled_from(MAGIC), st.binary()).map(b"".join),
        )
    )


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow, reading damage
@HOSTILE
@given(logo=st.one_of(st.binary(), damaged_images()))
@example(logo=png_claiming(20_000, 20_000))  # a decompression bomb: Pillow refuses it
@example(logo=png_claiming(10_000, 10_000))  # Pillow only warns about this one
@example(logo=b"\x00" * (2 * 1024 * 1024 + 1))
def test_garbage_logos_are_refused(world, visitor, untouched, logo):
    """Attacks the logo upload with random bytes, damaged real images, real headers over
    garbage and images that claim a gigapixel. Never a 500; a refused logo changes nothing;
    an accepted one is an image Pillow reads as PNG, JPEG or WebP."""
    upload = SimpleUploadedFile("logo.png", logo, content_type="image/png")
    with undone():
        response = visitor.post(
            our_url(world, "organizations:organization"), {"name": "Sunrise Solar", "logo": upload}
        )
        assert_handled(response, Organization, untouched)
        if response.status_code == 302:
            organization = Organization.objects.get(pk=world.ours.organization.pk)
            with Image.open(organization.logo) as image:
                assert image.format in ("PNG", "JPEG", "WEBP")


def first_item_url(world: World) -> str:
    page = data.LIST_PAGES[0]
    return data.url("archive", world.ours.organization, page, world.ours.items[page.key].pk)


#: What each button posts to (it sends nothing but the CSRF token), on our own objects.
ACTIONS: dict[str, Callable[[World], str]] = {
    "resync": lambda world: our_url(world, "settings_sync:resync", pk=world.ours.partnership.pk),
    "resync all": lambda world: our_url(world, "settings_sync:resync-all"),
    "retry": lambda world: our_url(world, "settings_sync:retry", pk=world.ours.failed_run.pk),
    "restore": lambda world: our_url(
        world, "settings_sync:restore", pk=world.upstream_run.pk, change_pk=world.restorable.pk
    ),
    "end partnership": lambda world: our_url(
        world, "partnerships:end", pk=world.ours.partnership.pk
    ),
    "withdraw invitation": lambda world: our_url(
        world, "partnerships:invitation-revoke", pk=world.ours.invitation.pk
    ),
    "resend invitation": lambda world: our_url(
        world, "partnerships:invitation-resend", pk=world.ours.invitation.pk
    ),
    "withdraw request": lambda world: our_url(
        world, "partnerships:request-withdraw", pk=world.ours.request.pk
    ),
    "accept request": lambda world: our_url(
        world, "partnerships:request-accept", pk=world.received.pk
    ),
    "decline request": lambda world: our_url(
        world, "partnerships:request-decline", pk=world.received.pk
    ),
    "delete item": first_item_url,
}
#: bodies nobody's browser sends: fields no form has, or bytes under any content type
JUNK_BODIES = st.one_of(
    st.dictionaries(st.text(min_size=1), st.one_of(SCALARS, st.lists(SCALARS)), max_size=5),
    st.tuples(
        st.sampled_from(
            [
                "multipart/form-data; boundary=junk",
                "multipart/form-data",
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=utf-16",
                "application/json",
                "text/plain",
            ]
        ),
        st.binary(),
    ),
)
MALFORMED = ("multipart/form-data; boundary=junk", b"--junk\r\nContent-Disposition: form")


def post_junk(client: Client, url: str, body):
    if isinstance(body, dict):
        return client.post(url, body)
    content_type, raw = body
    return client.generic("POST", url, raw, content_type=content_type)  # the bytes as they are


@HOSTILE
@given(action=st.sampled_from(list(ACTIONS)), body=JUNK_BODIES)
@example(action="resync", body=MALFORMED)
@example(action="retry", body=MALFORMED)
@example(action="restore", body=MALFORMED)
def test_buttons_survive_junk_bodies(world, visitor, untouched, action, body):
    """Attacks the buttons (resync, retry, restore, end, withdraw, accept, decline, delete)
    with junk posted along: fields no form has, hostile values, broken multipart and raw
    bytes. Never a 500; anything but the button's usual redirect changes nothing."""
    with undone():
        response = post_junk(visitor, ACTIONS[action](world), body)
        assert response.status_code < 500
        if response.status_code != 302:
            assert database_state() == untouched


#: Pages with a search box, filters, pagination or a predictor (GET forms).
SEARCHES: dict[str, Callable[[World], str]] = {
    "partnerships": lambda world: our_url(world, "partnerships:list"),
    "organization suggestions": lambda world: our_url(world, "partnerships:organization-search"),
    "sync history": lambda world: our_url(world, "settings_sync:history"),
    "help predictor": lambda world: reverse("help-sync"),
    **{
        page.key: lambda world, page=page: data.url("page", world.ours.organization, page)
        for page in data.LIST_PAGES
    },
}
#: every query parameter those pages read
SEARCH_PARAMETERS = ["q", "status", "page", "upstream_page", "organization", "event"]
SEARCH_PARAMETERS += list(modes.FLAG_NAMES)


@HOSTILE
@given(
    search=st.sampled_from(list(SEARCHES)),
    query=st.dictionaries(
        st.sampled_from(SEARCH_PARAMETERS), st.one_of(SCALARS, st.lists(SCALARS)), min_size=1
    ),
    htmx=st.booleans(),
)
def test_searches_survive_hostile_queries(world, visitor, search, query, htmx):
    """Attacks the GET forms (search boxes, filters, page numbers, the sync predictor) with
    hostile query strings, as a page or an htmx fragment. Never a 500."""
    headers = {"HX-Request": "true"} if htmx else {}
    response = visitor.get(SEARCHES[search](world), query, headers=headers)
    assert response.status_code < 500


@pytest.mark.parametrize("search", SEARCHES)
def test_known_killers_in_every_search(world, visitor, search):
    """Attacks each GET form with each known killer in every parameter (PostgreSQL refused a
    search with a NUL byte, SQLite one of 100,000 characters). Never a 500."""
    for killer in KILLERS:
        query = dict.fromkeys(SEARCH_PARAMETERS, killer)
        assert visitor.get(SEARCHES[search](world), query).status_code < 500
