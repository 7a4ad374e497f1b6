"""The drift counts kept per partnership and category (docs/design.md §10) always equal a full
recount, whatever happened in between: random sequences of what people and the sync do,
through the models and services, each followed by the tab's read of the counts. A writer that
forgot to mark the counts it changes leaves a kept count that the next read takes as fresh
and the recount contradicts."""

from __future__ import annotations

import contextlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from partnerships import services as partnership_services
from partnerships.models import Partnership
from partnerships.modes import OFF
from settings_sync import conflicts, drift_counts, engine, overrides, policy, status
from settings_sync.models import DriftCount
from settings_sync.project.models import Adder
from settings_sync.usage.models import Persona
from tests.factories import OrganizationFactory, make_partnership

MODES = {
    "non_exclusive": {"is_exclusive": False, "data_sync_enabled": True},
    "flexible": {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
    "strict": {"is_exclusive": True, "data_sync_enabled": True},
    "off": {"is_exclusive": False, "data_sync_enabled": False},
}
NAMES = ["Trenching", "Tile roof", "Ground mount"]
MODELS = {"adders": Adder, "personas": Persona}
FIELD = {Adder: "amount", Persona: "annual_kwh"}

OPERATIONS = [
    "channel manager edits an item",
    "channel manager edits an item, its fan-out lost",
    "channel manager adds an item",
    "channel manager archives an item",
    "channel manager restores an item",
    "channel manager deletes an item for good",
    "partner edits a copy",
    "partner archives a copy",
    "partner restores an item",
    "partner deletes a copy for good",
    "partner adds its own item",
    "partner takes theirs",
    "partner keeps its own",
    "a run",
    "a batch of runs",
    "flags change",
    "an override changes",
]
#: (what, which partnership or item, a small value, which category)
operations = st.lists(
    st.tuples(
        st.sampled_from(OPERATIONS),
        st.integers(0, 5),
        st.integers(0, 3),
        st.sampled_from(list(MODELS)),
    ),
    max_size=8,
)


def _items(model, organization, *, live=True, archived=False):
    manager = model.all_objects if (archived or not live) else model.objects
    rows = manager.filter(organization=organization).order_by("pk")
    if archived:
        rows = rows.filter(archived_at__isnull=False)
    return list(rows)


def _pick(rows, n):
    return rows[n % len(rows)] if rows else None


def _create(model, organization, name: str, value: int):
    if model is Adder:
        return Adder.objects.create(organization=organization, name=name, amount=value)
    return Persona.objects.create(organization=organization, name=name, annual_kwh=value + 1)


def _restore(model, organization, n) -> None:
    """Restore one of the organization's archived items, unless a live one holds its name."""
    archived = _pick(_items(model, organization, archived=True), n)
    if archived and _free(model, organization, archived.name):
        archived.restore()


def _free(model, organization, name) -> bool:
    return not model.objects.filter(organization=organization, name=name).exists()


def _apply(operation, n, value, key, partnerships, capture) -> None:
    main = partnerships[0]
    upstream, partner = main.upstream, main.downstream
    model, field = MODELS[key], FIELD[MODELS[key]]
    copies = [row for row in _items(model, partner) if row.synced_partnership_id]
    sources = _items(model, upstream)
    copy, source = _pick(copies, n), _pick(sources, n)
    if operation == "channel manager edits an item" and source:
        setattr(source, field, value + 1)
        with capture(execute=True):  # its fan-out runs are delivered
            source.save()
    elif operation == "channel manager edits an item, its fan-out lost" and source:
        setattr(source, field, value + 1)
        source.save()  # its runs stay queued: no commit in this test's transaction
    elif operation == "channel manager adds an item":
        name = f"{NAMES[value % 3]} {n}"
        if _free(model, upstream, name):
            _create(model, upstream, name, value)
    elif operation == "channel manager archives an item" and source:
        source.archive()
    elif operation == "channel manager restores an item":
        _restore(model, upstream, n)
    elif operation == "channel manager deletes an item for good" and source:
        source.delete()
    elif operation == "partner edits a copy" and copy:
        setattr(copy, field, value + 1)
        copy.save()
    elif operation == "partner archives a copy" and copy:
        copy.archive()
    elif operation == "partner restores an item":
        _restore(model, partner, n)
    elif operation == "partner deletes a copy for good" and copy:
        copy.delete()
    elif operation == "partner adds its own item":
        name = NAMES[value % 3]
        if _free(model, partner, name):
            _create(model, partner, name, value)
    elif operation in ("partner takes theirs", "partner keeps its own"):
        waiting = [row for row in copies if conflicts.update_available(row)]
        if item := _pick(waiting, n):
            decide = conflicts.take_upstream if "theirs" in operation else conflicts.keep_local
            try:
                with transaction.atomic():
                    decide(item, by=None)
            except (ValidationError, PermissionDenied):
                pass  # refused, nothing changed (a name taken, a locked category)
    elif operation == "a run":
        partnership = _pick(partnerships, n)
        partnership.refresh_from_db()
        engine.run(partnership, [policy.CHANGE, policy.RESYNC][value % 2])
    elif operation == "a batch of runs":
        batch = [p for p in partnerships if p.upstream_id == upstream.pk]
        engine.execute_many([engine.schedule_record(p, policy.RESYNC) for p in batch])
    elif operation == "flags change":
        main.refresh_from_db()
        # The link or unlink run it starts is delivered; a refusal (exclusive beside another
        # partnership) changes nothing.
        with (
            capture(execute=True),
            contextlib.suppress(ValidationError),
            transaction.atomic(),
        ):
            partnership_services.update_flags(main, by=None, **MODES[list(MODES)[value]])
    elif operation == "an override changes":
        main.refresh_from_db()
        with contextlib.suppress(ValidationError), transaction.atomic():
            overrides.set_overrides(main, {key: ["off", "follow"][value % 2]})


def _check(partnerships) -> None:
    """The tab's figures equal a full recount (an override off misses nothing), and every
    count it kept is fresh and equal to the recount."""
    partnerships = list(
        Partnership.objects.select_related("upstream", "downstream")
        .filter(pk__in=[p.pk for p in partnerships])
        .order_by("pk")
    )
    recounted = status.recount(partnerships)
    shown = status.statuses(partnerships)
    effective = overrides.effective_modes_many(partnerships)
    for partnership in partnerships:
        for (pk, key), (diverged, missing, stale) in recounted.items():
            if pk != partnership.pk:
                continue
            if effective[pk][key] == OFF:
                missing = 0
            expected = {"diverged": diverged, "missing": missing, "stale": stale}
            assert shown[pk].by_category[key] == expected, (pk, key)
    kept = {
        (row.partnership_id, row.category): (row.diverged, row.missing, row.out_of_date)
        for row in DriftCount.objects.filter(partnership__in=partnerships, fresh=True)
    }
    assert kept == recounted


@settings(  # as many examples as the hypothesis profile says (HYPOTHESIS_PROFILE=deep: 500)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mode=st.sampled_from(["non_exclusive", "flexible", "strict"]), steps=operations)
# Keep mine can make a copy synced again: the partner's edit equals the channel manager's.
@example(
    mode="flexible",
    steps=[
        ("partner edits a copy", 0, 2, "adders"),
        ("channel manager edits an item, its fan-out lost", 0, 2, "adders"),
        ("partner keeps its own", 0, 0, "adders"),
    ],
)
@example(mode="non_exclusive", steps=[("a batch of runs", 0, 0, "adders")])
@example(mode="strict", steps=[("a run", 3, 1, "adders")])
@example(mode="flexible", steps=[("partner takes theirs", 0, 0, "adders")])
def test_kept_counts_equal_a_recount(db, django_capture_on_commit_callbacks, mode, steps):
    with transaction.atomic():
        upstream, partner = OrganizationFactory(), OrganizationFactory()
        for n, name in enumerate(NAMES[:2]):
            _create(Adder, upstream, name, n)
            _create(Persona, upstream, name, n)
        with transaction.atomic():  # the link runs are applied below, not on commit
            main = make_partnership(upstream, partner, **MODES[mode])
            beside = make_partnership(upstream, OrganizationFactory(), **MODES["non_exclusive"])
            below = make_partnership(partner, OrganizationFactory(), **MODES["non_exclusive"])
            # Not linked yet: its first run copies by INSERT … SELECT, after its counts are kept.
            later = make_partnership(upstream, OrganizationFactory(), **MODES["non_exclusive"])
        partnerships = [main, beside, below, later]
        engine.execute_many([engine.schedule_record(p, policy.LINK) for p in (main, beside)])
        engine.run(below, policy.LINK)
        # A partner's edit waiting for an answer, and a fan-out into it that was lost.
        copy = Adder.objects.filter(synced_partnership=main).order_by("pk").first()
        copy.amount = 9
        copy.save()
        source = Adder.objects.get(pk=copy.synced_from_id)
        source.amount = 7
        source.save()
        _check(partnerships)
        for operation, n, value, key in steps:
            _apply(operation, n, value, key, partnerships, django_capture_on_commit_callbacks)
            _check(partnerships)


def test_a_counts_row_marked_meanwhile_is_not_stored_as_fresh(db):
    """A reader's recount is stored only against the generation it read: a writer that marked
    the row since (here, before the store) keeps it stale for the next reader."""
    partnership = make_partnership(**MODES["non_exclusive"])
    partnerships = [partnership]
    status.statuses(partnerships)  # counted and kept
    row = DriftCount.objects.get(partnership=partnership, category="adders")
    assert row.fresh
    drift_counts.mark([(partnership.upstream_id, "adders")])
    row.refresh_from_db()
    assert not row.fresh
    # A recount read at the old generation: its store changes nothing.
    drift_counts.store([(partnership.pk, "adders", row.generation - 1, 5, 5, 5)])
    row.refresh_from_db()
    assert (row.fresh, row.diverged) == (False, 0)
    drift_counts.store([(partnership.pk, "adders", row.generation, 0, 0, 0)])
    row.refresh_from_db()
    assert row.fresh


@pytest.mark.parametrize("side", ["upstream", "downstream"])
def test_an_edit_marks_the_partnerships_on_either_side(db, side):
    partnership = make_partnership(**MODES["non_exclusive"])
    status.statuses([partnership])
    organization = getattr(partnership, side)
    _create(Adder, organization, "Trenching", 1)
    marked = DriftCount.objects.get(partnership=partnership, category="adders")
    untouched = DriftCount.objects.get(partnership=partnership, category="personas")
    assert (marked.fresh, untouched.fresh) == (False, True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reader_does_not_wait_for_a_writer_of_its_counts():
    """A writer that holds a page's counts (a long transaction that marked them) does not hold
    up the tab: the reader shows its recount, gives up storing it after ``STORE_LOCK_TIMEOUT``,
    and the row stays stale for the next reader."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.settings_sync.concurrency import TIMEOUT, in_thread, rows_locked

    upstream = OrganizationFactory()
    _create(Adder, upstream, "Trenching", 1)
    partnership = make_partnership(upstream, **MODES["non_exclusive"])  # linked on commit
    status.statuses([partnership])
    copy = Adder.objects.get(synced_partnership=partnership, name="Trenching")
    copy.amount += 1
    copy.save()  # its counts marked: 1 diverged
    rows = DriftCount.objects.filter(partnership=partnership, category="adders")
    assert not rows.get().fresh
    with ThreadPoolExecutor(max_workers=1) as pool, rows_locked(rows):
        shown = in_thread(pool, status.statuses, [partnership]).result(TIMEOUT / 3)
    assert shown[partnership.pk].by_category["adders"]["diverged"] == 1
    assert not rows.get().fresh
    status.statuses([partnership])
    assert rows.get().fresh


@pytest.mark.postgres
def test_a_new_partners_marking_reads_its_partnerships_by_index(db):
    """Each run of a new partner marks the drift counts of its partnerships. Planned on
    statistics that know a channel manager with thousands of partners, the marking read the
    whole partnership table for every such run, a cost that grew with the table
    (docs/design.md §10): it reads the partnerships of the organizations it names by
    their indexes, and the whole table only where they hold much of it."""
    from django.db import connection

    from organizations.models import Organization

    busy = OrganizationFactory()
    partners = Organization.objects.bulk_create(
        Organization(name=f"Partner {n}", slug=f"partner-{n}") for n in range(3000)
    )
    Partnership.objects.bulk_create(Partnership(upstream=busy, downstream=p) for p in partners)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Partnership._meta.db_table}")
    partnership = Partnership.objects.create(upstream=OrganizationFactory(), downstream=partners[0])
    new = partnership.upstream

    def plan(organization) -> str:
        marking = drift_counts.Marking([(organization.pk, "adders"), (organization.pk, "personas")])
        sql, params = marking.statement
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(line for (line,) in cursor.fetchall())

    assert f"Seq Scan on {Partnership._meta.db_table}" not in plan(new)
    assert "Index Scan" in plan(new)
    # Marked, each of the partnerships once per category.
    drift_counts.mark([(new.pk, "adders"), (new.pk, "personas"), (busy.pk, "adders")])
    marked = DriftCount.objects.filter(fresh=False)
    assert marked.filter(partnership=partnership).count() == 2
    assert marked.filter(partnership__upstream=busy, category="adders").count() == 3000
