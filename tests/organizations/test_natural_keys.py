"""One normalisation of natural keys, shared by the unique index, the forms and the sync
(docs/design.md §3.3): they agree on every name, in any script, on every database."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from organizations.natural_keys import normalise_key, normalise_part
from partnerships import services
from settings_sync import engine
from settings_sync.project.forms import AdderForm
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}

#: Any text a database can store: no surrogates, no NUL (PostgreSQL refuses both).
names = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=12,
)
FULL_WIDTH_TILE = "\uff34\uff49\uff4c\uff45"
#: Pairs that are often the same item under the normalisation, and often not.
TRICKY = [
    "İstanbul",
    "i̇stanbul",
    "Straße",
    "STRASSE",
    "ﬁber",
    "FIBER",
    FULL_WIDTH_TILE,
    "tile",
    "ǅ",
    "ǆ",
]
tricky = st.sampled_from(TRICKY).flatmap(
    lambda name: st.sampled_from([name, f" {name}", f"{name}\u00a0", name.upper(), name.lower()])
)
any_name = st.one_of(names, tricky)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Tile roof", "  TILE ROOF "),
        ("İstanbul", "i̇stanbul"),  # dotted capital I; SQL LOWER disagrees on it
        ("Straße", "STRASSE"),
        ("ﬁber", "fiber"),  # a ligature
        (FULL_WIDTH_TILE, "tile"),  # full-width letters
        ("Tile\u00a0", "tile"),  # a no-break space around the name
    ],
)
def test_the_same_name_in_other_letters_is_the_same_key(a, b):
    assert normalise_part(a) == normalise_part(b)


def test_keys_of_several_parts_cannot_run_into_each_other():
    assert normalise_key(["a b", "c"]) != normalise_key(["a", "b c"])
    assert normalise_key(["a,", "b"]) != normalise_key(["a", ",b"])


def duplicate_refused(organization, name: str) -> bool | None:
    """Whether the form refuses ``name`` as a duplicate (None: refused for another reason)."""
    form = AdderForm(
        data={"name": name, "pricing": "fixed", "amount": "1"}, organization=organization
    )
    if form.is_valid():
        return False
    messages = form.errors.get("name", [])
    duplicate = [message for message in messages if "already has an adder" in message]
    assert set(form.errors) == {"name"}, form.errors
    return True if duplicate and len(duplicate) == len(messages) else None


@given(first=any_name, second=any_name)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_index_and_the_form_agree_with_python(first, second):
    """Whatever two names: the database refuses the second exactly when Python calls them the
    same item, and the form refuses it beside the name instead of failing in the database."""
    organization = OrganizationFactory()
    AdderFactory(organization=organization, name=first)
    same = normalise_part(first) == normalise_part(second)
    refused = duplicate_refused(organization, second)
    if refused is not None:
        assert refused == same
    try:
        with transaction.atomic():
            Adder.objects.create(organization=organization, name=second, amount=1)
        stored = True
    except IntegrityError:
        stored = False
    assert stored == (not same)


@given(upstream_names=st.lists(any_name, max_size=4), own_names=st.lists(any_name, max_size=4))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_name_makes_a_run_fail(upstream_names, own_names):
    """A partner's own names, in any script, never make a sync into it fail: an item it cannot
    take is a recorded conflict or an adoption, never an error of the database."""
    channel_manager, partner = OrganizationFactory(), OrganizationFactory()
    for organization, wanted in ((channel_manager, upstream_names), (partner, own_names)):
        seen = set()
        for name in wanted:
            if normalise_part(name) and normalise_part(name) not in seen:
                seen.add(normalise_part(name))
                AdderFactory(organization=organization, name=name)
    partnership = services.create_partnership(channel_manager, partner, by=None, **FLEXIBLE)
    for event in ("link", "change", "resync"):
        run = engine.run(partnership, event)
        assert run.status == "succeeded", run.error
    keys = [adder.normalised_key for adder in Adder.objects.filter(organization=partner)]
    assert len(keys) == len(set(keys))
    upstream_keys = {a.normalised_key for a in Adder.objects.filter(organization=channel_manager)}
    assert upstream_keys <= set(keys)  # each is created, adopted, or was the partner's already


def test_a_clash_the_sync_cannot_resolve_is_a_conflict(django_capture_on_commit_callbacks):
    """The partner's own "i̇stanbul" and the channel manager's copy renamed to "İstanbul": the
    same item to the index, so the copy keeps its name and the run records a conflict."""
    channel_manager, partner = OrganizationFactory(), OrganizationFactory()
    upstream = AdderFactory(organization=channel_manager, name="Ankara")
    partnership = services.create_partnership(channel_manager, partner, by=None, **FLEXIBLE)
    engine.run(partnership, "link")
    AdderFactory(organization=partner, name="i̇stanbul")
    upstream.name = "İstanbul"
    upstream.save()
    run = engine.run(partnership, "change")
    assert run.status == "succeeded", run.error
    assert run.changes.filter(action="conflict").count() == 1
    assert sorted(Adder.objects.filter(organization=partner).values_list("name", flat=True)) == [
        "Ankara",
        "i̇stanbul",
    ]


def test_a_name_sql_lower_would_merge_is_synced_as_python_decides():
    """PostgreSQL's LOWER("İstanbul") is "istanbul", Python's casefold keeps the dot: once a
    partner's own "Istanbul" made every run into it fail on the database's unique index."""
    channel_manager, partner = OrganizationFactory(), OrganizationFactory()
    AdderFactory(organization=channel_manager, name="İstanbul")
    AdderFactory(organization=partner, name="Istanbul")
    partnership = services.create_partnership(channel_manager, partner, by=None, **FLEXIBLE)
    run = engine.run(partnership, "link")
    assert run.status == "succeeded", run.error
    assert Adder.objects.filter(organization=partner).count() == 2


def test_restoring_an_item_whose_name_is_taken_meanwhile_is_refused():
    organization = OrganizationFactory()
    old = AdderFactory(organization=organization, name="Straße")
    old.archive()
    AdderFactory(organization=organization, name="STRASSE")
    with pytest.raises(ValidationError):
        old.restore()


def test_the_migration_archives_rows_that_become_the_same_item():
    """Rows the old normalisation told apart but this one does not: the oldest stays, the
    others are archived with a reason, and nothing is deleted."""
    from django.utils import timezone

    from organizations.natural_keys import fill_normalised_keys

    organization = OrganizationFactory()
    first = AdderFactory(organization=organization, name="Straße")
    second = AdderFactory(organization=organization, name="placeholder")
    Adder.objects.filter(pk=second.pk).update(name="STRASSE", normalised_key="")
    fill_normalised_keys(Adder, ("name",), now=timezone.now())
    first.refresh_from_db()
    second = Adder.all_objects.get(pk=second.pk)
    assert (first.is_archived, second.is_archived) == (False, True)
    assert second.archive_reason == "Archived: another item has the same name."
    assert second.normalised_key == first.normalised_key == "strasse"
