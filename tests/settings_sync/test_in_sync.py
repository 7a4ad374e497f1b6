"""A run of one partnership skips the collections already in sync, and copies into the ones
the partner has nothing of without reading them, both decided by one statement
(``engine.reads.in_sync``, docs/design.md §10). The decision must be exact: whenever it says
"in sync", the full rules plan no change there, and whenever it says "nothing there", they
plan the same ``INSERT … SELECT``. The property below checks it against the full planner (a
preview plans every category item by item) on random states, then runs the event and checks
the run counted what the full plan counts and left the skipped categories as they were."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from organizations.models import Organization
from partnerships.models import Partnership
from settings_sync import engine, policy
from settings_sync.engine.planning import _in_sync
from settings_sync.engine.reads import Reads
from settings_sync.models import CategoryOverride, SyncRun
from settings_sync.project.models import Adder, DefaultCosts
from settings_sync.usage.models import Persona
from tests.factories import OrganizationFactory, make_partnership
from tests.hypothesis_profiles import examples

MODES = {
    "non_exclusive": {"data_sync_enabled": True},
    "flexible": {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
    "strict": {"is_exclusive": True, "data_sync_enabled": True},
}
NAMES = ["Trenching", "Tile roof", "Ground mount"]
MODELS = {"adders": Adder, "personas": Persona}

#: What can happen to a partnership in sync before its next run, each bypassing the sync's
#: own triggers (queryset writes): (what, which item, a small number).
EDITS = [
    "partner edits a copy",
    "partner edits a copy back to its baseline",
    "baseline drifts",
    "channel manager edits an item",
    "channel manager archives an item",
    "channel manager adds an item",
    "partner archives a copy",
    "partner restores what it archived",
    "partner deletes a copy for good",
    "partner adds its own item",
    "copy loses its lock",
    "copy gets a lock",
    "source is locked from above",
    "copy's origin changes",
    "copy points at another source",
    "mode changes",
    "channel manager edits its default costs",
    "partner edits its default costs",
]
edits = st.lists(
    st.tuples(st.sampled_from(EDITS), st.integers(0, 5), st.integers(0, 2)), max_size=5
)


def _items(model, organization, *, live=True):
    manager = model.objects if live else model.all_objects
    return list(manager.filter(organization=organization).order_by("pk"))


def _pick(rows, n):
    return rows[n % len(rows)] if rows else None


def _apply(edit: str, n: int, value: int, partnership: Partnership, key: str) -> None:
    model = MODELS[key]
    upstream, partner = partnership.upstream, partnership.downstream
    copies = [row for row in _items(model, partner) if row.synced_partnership_id]
    sources = _items(model, upstream)
    field = "amount" if model is Adder else "annual_kwh"
    copy, source = _pick(copies, n), _pick(sources, n)
    updates = model.all_objects.filter
    if edit == "partner edits a copy" and copy:
        updates(pk=copy.pk).update(**{field: getattr(copy, field) + value + 1})
    elif edit == "partner edits a copy back to its baseline" and copy:
        updates(pk=copy.pk).update(**{field: getattr(copy, f"baseline_{field}")})
    elif edit == "baseline drifts" and copy:
        updates(pk=copy.pk).update(**{f"baseline_{field}": getattr(copy, field) + value + 1})
    elif edit == "channel manager edits an item" and source:
        updates(pk=source.pk).update(**{field: getattr(source, field) + value})
    elif edit == "channel manager archives an item" and source:
        updates(pk=source.pk).update(archived_at=timezone.now())
    elif edit == "channel manager adds an item":
        name = NAMES[value] + " new"
        if not model.objects.filter(organization=upstream, name=name).exists():
            _create(model, upstream, name, value)
    elif edit == "partner archives a copy" and copy:
        updates(pk=copy.pk).update(archived_at=timezone.now(), archived_by_sync=bool(value))
    elif edit == "partner restores what it archived":
        archived = [row for row in _items(model, partner, live=False) if row.archived_at]
        if (row := _pick(archived, n)) and not model.objects.filter(
            organization=partner, normalised_key=row.normalised_key
        ).exists():
            updates(pk=row.pk).update(archived_at=None)
    elif edit == "partner deletes a copy for good" and copy:
        updates(pk=copy.pk).delete()
    elif edit == "partner adds its own item":
        name = NAMES[value]
        if not model.objects.filter(organization=partner, name=name).exists():
            _create(model, partner, name, value)
    elif edit == "copy loses its lock" and copy:
        updates(pk=copy.pk).update(managed_by=None)
    elif edit == "copy gets a lock" and copy:
        updates(pk=copy.pk).update(managed_by=upstream)
    elif edit == "source is locked from above" and source:
        updates(pk=source.pk).update(managed_by=OrganizationFactory())
    elif edit == "copy's origin changes" and copy:
        updates(pk=copy.pk).update(synced_origin=partner)
    elif edit == "copy points at another source" and copy and len(sources) > 1:
        updates(pk=copy.pk).update(synced_from=_pick(sources, n + 1))
    elif edit == "channel manager edits its default costs":
        DefaultCosts.objects.filter(organization=upstream).update(
            module_cost_per_watt=Decimal("0.50") + value
        )
    elif edit == "partner edits its default costs":
        DefaultCosts.objects.filter(organization=partner).update(
            module_cost_per_watt=Decimal("0.50") + value
        )
    elif edit == "mode changes":
        Partnership.objects.filter(pk=partnership.pk).update(**_flags(list(MODES)[value]))


def _flags(mode: str) -> dict:
    return {
        "is_exclusive": False,
        "allow_downstream_edit": False,
        "data_sync_enabled": True,
        **MODES[mode],
    }


def _create(model, organization, name: str, value: int) -> None:
    if model is Adder:
        Adder.objects.bulk_create([Adder(organization=organization, name=name, amount=value)])
    else:
        Persona.objects.bulk_create(
            [Persona(organization=organization, name=name, annual_kwh=value + 1)]
        )


def _snapshot(model, organization) -> list[tuple]:
    manager = getattr(model, "all_objects", model._default_manager)
    return list(manager.filter(organization=organization).order_by("pk").values_list())


def _one_edit(mode: str, edit: str, n: int = 0):
    return example(
        mode=mode,
        upstream_names=NAMES[:2],
        partner_names=[NAMES[2]],
        linked=True,
        changes=[(edit, n, 1)],
        event=policy.RESYNC,
    )


#: Each edit alone, from a partner in sync: the cases the statement must tell apart.
ONE_EDIT = [
    *(_one_edit("flexible", edit) for edit in EDITS),
    *(_one_edit("strict", edit, 1) for edit in EDITS),
    *(
        _one_edit(mode, edit)
        for mode in ("strict", "non_exclusive")
        for edit in ("copy gets a lock", "copy loses its lock", "source is locked from above")
    ),
]


def with_examples(test):
    for one in ONE_EDIT:
        test = one(test)
    return test


@settings(  # besides the examples above, 10 generated (HYPOTHESIS_PROFILE=deep: 500)
    max_examples=examples(10),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mode=st.sampled_from(list(MODES)),
    upstream_names=st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
    partner_names=st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
    linked=st.booleans(),
    changes=edits,
    event=st.sampled_from([policy.RESYNC, policy.CHANGE, policy.LINK]),
)
@with_examples
def test_what_the_statement_skips_the_rules_would_not_change(
    db, mode, upstream_names, partner_names, linked, changes, event
):
    with transaction.atomic():
        upstream = OrganizationFactory()
        partner = OrganizationFactory()
        for n, name in enumerate(upstream_names):
            _create(Adder, upstream, name, n)
            _create(Persona, upstream, name, n)
        for n, name in enumerate(partner_names):
            _create(Adder, partner, name, n + 7)
        with transaction.atomic():  # the partnership's own link run is not delivered here
            partnership = make_partnership(upstream, partner, **MODES[mode])
        if linked:
            engine.run(partnership, policy.LINK)
        with transaction.atomic():  # a partner in sync beside it, read in the same batch
            beside = make_partnership(upstream, OrganizationFactory(), **MODES["strict"])
        engine.run(beside, policy.LINK)
        for edit, n, value in changes:
            _apply(edit, n, value, partnership, "adders" if n % 2 == 0 else "personas")
        partnership, beside = (
            Partnership.objects.select_related("upstream", "downstream")
            .filter(pk__in=[partnership.pk, beside.pk])
            .order_by("pk")
        )
        full = engine.preview(partnership, event)  # every category planned item by item
        # A run's reads leave the plain copies out (of a batch: beside's too); its plan is
        # the full one.
        for batch in ([partnership], [beside, partnership]):
            skipping = engine.preview(partnership, event, reads=Reads(batch, skip_plain=True))
            assert _planned(skipping) == _planned(full)
        # Detach reads every copy: the partnership as if its Data Sync were turned off.
        ending = Partnership.objects.select_related("upstream", "downstream").get(pk=partnership.pk)
        ending.data_sync_enabled = False
        unlink = {"mode_before": partnership.mode}
        detached = engine.preview(
            ending, policy.UNLINK, reads=Reads([ending], skip_plain=True), **unlink
        )
        assert _planned(detached) == _planned(engine.preview(ending, policy.UNLINK, **unlink))
        plans = {plan.category.key: plan for plan in full.categories}
        quiet, empty = _in_sync(partnership, full.categories)
        for key in quiet | set(empty):
            plan = plans[key]
            assert (plan.to_create, plan.to_update, plan.to_archive) == ([], [], []), key
            assert plan.changes == [], key
            assert plan.bulk_copies == empty.get(key, 0), key
        tables = {**MODELS, "default_costs": DefaultCosts}
        before = {key: _snapshot(tables[key], partner) for key in quiet if key in tables}
        # A plan that says it leaves everything commits without waiting for the disk: it
        # must write nothing at all.
        untouched = {key: _snapshot(table, partner) for key, table in tables.items()}
        sync_run = engine.run(partnership, event)
        assert sync_run.status == SyncRun.Status.SUCCEEDED
        assert sync_run.counts == {key: counts for key, counts in full.summary().items() if counts}
        for key, rows in before.items():
            assert _snapshot(tables[key], partner) == rows, key
        if full.leaves_everything:
            assert {key: _snapshot(t, partner) for key, t in tables.items()} == untouched
        # Once the run is applied, every collection is in sync.
        partnership.refresh_from_db()
        again = engine.run(partnership, policy.RESYNC)
        if not any(
            change.action == "conflict" or change.action == "kept_local"
            for change in engine.preview(partnership, policy.RESYNC).changes
        ):
            assert again.counts == {}
            assert engine.preview(partnership, policy.RESYNC).leaves_everything
        transaction.set_rollback(True)


@pytest.mark.parametrize("items", [10, 200])
def test_a_run_into_a_partner_in_sync_costs_the_same_queries_whatever_the_items(
    db, items, django_capture_on_commit_callbacks
):
    """Every collection in sync: the run reads them with one statement and writes only its
    own record, whatever the number of items (docs/design.md §10)."""
    upstream = Organization.objects.create(name=f"Upstream {items}")
    for model in MODELS.values():
        for n in range(items):
            _create(model, upstream, f"Item {n}", n)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(upstream, OrganizationFactory(), **MODES["strict"])
    with django_capture_on_commit_callbacks(execute=True):
        (sync_run,) = _resync(partnership)
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        (sync_run,) = _resync(partnership)
    sync_run.refresh_from_db()
    assert (sync_run.status, sync_run.counts) == ("succeeded", {})
    # Recorded (1); claimed (1); its transaction (a savepoint here: 2); the partner locked
    # (1) and the run read with its partnership and its overrides (1; on PostgreSQL one text
    # with the lock and its bound); every collection and singleton in one statement (1);
    # its outcome (1).
    expected = 7 if connection.vendor == "postgresql" else 8
    assert len(queries.captured_queries) == expected, "\n".join(
        query["sql"][:120] for query in queries.captured_queries
    )


def _planned(plan) -> list:
    """What a plan would write and record, category by category, by primary key."""

    def pk(obj):
        return getattr(obj, "pk", None)

    return [
        (
            category_plan.category.key,
            category_plan.outcome,
            category_plan.bulk_copies,
            sorted(obj.synced_from_id for obj in category_plan.to_create),
            sorted(pk(obj) for obj in category_plan.to_update),
            sorted(pk(obj) for obj in category_plan.to_archive),
            [
                (
                    change.action,
                    change.label,
                    pk(change.item) if change.action != "created" else None,
                    pk(change.upstream),
                    change.before,
                    change.after,
                    change.note,
                    change.overwrites_local,
                    change.repeated,
                )
                for change in category_plan.changes
            ],
        )
        for category_plan in plan.categories
    ]


def _resync(partnership):
    from settings_sync import services

    return services.resync_partnerships([partnership], trigger="test")


def test_a_first_copy_is_not_read_before_it_is_copied(db):
    """A partner with nothing in a collection gets its copies by ``INSERT … SELECT``; the
    statement that found it empty also counted what it copies, so nothing else is read."""
    upstream = Organization.objects.create(name="Upstream")
    for n in range(5):
        _create(Adder, upstream, f"Item {n}", n)
    partnership = make_partnership(upstream, OrganizationFactory(), **MODES["non_exclusive"])
    with CaptureQueriesContext(connection) as queries:
        sync_run = engine.run(partnership, policy.LINK, categories=["adders", "personas"])
    assert sync_run.counts == {"adders": {"created": 5}}
    # The statement of every collection (on PostgreSQL prepared once per connection, then
    # executed by name, as the run's lock and read are, in their own text, and the copies
    # in theirs), and no read of the items.
    statements = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT 0, COUNT(")
        or (
            "cds_planned_" in query["sql"]
            and "lock_timeout" not in query["sql"]
            and "INSERT INTO" not in query["sql"]
        )
    ]
    reads = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT") and '"project_adder"' in query["sql"]
    ]
    assert len(statements) == 1
    assert set(reads) <= set(statements)
    assert Adder.objects.filter(organization=partnership.downstream).count() == 5
    assert Decimal(4) in set(
        Adder.objects.filter(organization=partnership.downstream).values_list("amount", flat=True)
    )


@pytest.mark.postgres
def test_the_statement_reads_only_the_partnerships_rows_however_large_the_table(
    db, django_capture_on_commit_callbacks
):
    """A new channel manager's items lie past the statistics of a table that holds many
    other partners' copies (their ids are newer than any the planner sampled). The statement
    must still touch only the pages of this partnership's rows, not walk the table to find
    them (docs/design.md §10)."""
    from settings_sync.management.commands.bench_sync import Command

    bench = Command(stdout=io.StringIO())
    fleet = Organization.objects.create(name="Fleet")
    Adder.objects.bulk_create(Adder(organization=fleet, name=f"A{n}", amount=n) for n in range(100))
    bench._insert_copies(fleet, bench._partners(fleet, 100, data_sync_enabled=True), Adder)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE project_adder")  # a database in use has statistics
    upstream = Organization.objects.create(name="Upstream")
    for n in range(10):
        _create(Adder, upstream, f"Item {n}", n)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(upstream, OrganizationFactory(), **MODES["strict"])
    plan = _explained(_in_sync_execute(partnership, categories=["adders"]))
    pages = plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
    assert pages < 60, json.dumps(plan, indent=1)


def _in_sync_execute(partnership, **options) -> str:
    """The ``EXECUTE`` of the in-sync statement that a resync of ``partnership`` (already in
    sync) sends: prepared once per connection, then executed."""
    statements = []

    def keep(execute, sql, params, many, context):
        if "lock_timeout" not in sql:  # the run's lock and read are prepared too
            statements.extend(re.findall(r"EXECUTE cds_planned_\d+\([\d, ]+\)", sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        sync_run = engine.run(partnership, policy.RESYNC, **options)
    assert (sync_run.status, sync_run.counts) == ("succeeded", {})
    (execute,) = statements
    return execute


def _plans_made(execute: str) -> tuple[int, int]:
    """How often the server used a generic plan and made a custom plan for the prepared
    statement of ``execute``, on this connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s",
            [re.findall(r"(cds_planned_\d+)\(", execute)[0]],
        )
        ((generic, custom),) = cursor.fetchall()
    return generic, custom


def _explained(execute: str) -> dict:
    """The plan of a run's ``EXECUTE`` of a statement prepared once per connection, as the
    run runs it: the plan made once, for any ids (``plan_cache_mode``)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {execute}")
        (plan,) = cursor.fetchone()[0]
        cursor.execute("RESET plan_cache_mode")
    return plan


def _rows_touched(node: dict) -> int:
    """The rows every node of a plan produced or filtered out, all its loops counted."""
    loops = node.get("Actual Loops", 1)
    own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * loops
    return own + sum(_rows_touched(child) for child in node.get("Plans", []))


@pytest.mark.postgres
def test_the_statement_planned_while_the_tables_were_small_still_reads_by_index(
    transactional_db, django_capture_on_commit_callbacks
):
    """The in-sync statement is planned once per connection, for any ids. A plan made while
    the tables were small (analysed so) must not, once they have grown, walk the table (a
    sequential scan) nor walk the channel manager's items for each copy (an index on the
    organization): each copy finds its upstream item by primary key (docs/design.md §10)."""
    from settings_sync.management.commands.bench_sync import Command

    connection.close()  # a new connection: the statement is prepared and planned below
    small = Organization.objects.create(name="Small")
    _create(Adder, small, "Item", 1)
    with django_capture_on_commit_callbacks(execute=True):
        first = make_partnership(small, OrganizationFactory(), **MODES["strict"])
    with connection.cursor() as cursor:
        # A small table (rewritten: the rows earlier tests rolled back take no pages), with
        # its statistics.
        cursor.execute("VACUUM FULL ANALYZE project_adder")
    engine.run(first, policy.RESYNC, categories=["adders"])  # planned now, for any ids
    # The tables grow; autovacuum (off here, or lagging) does not analyse them again.
    bench = Command(stdout=io.StringIO())
    fleet = Organization.objects.create(name="Fleet")
    Adder.objects.bulk_create(Adder(organization=fleet, name=f"A{n}", amount=n) for n in range(100))
    bench._insert_copies(fleet, bench._partners(fleet, 100, data_sync_enabled=True), Adder)
    upstream = Organization.objects.create(name="Upstream")
    Adder.objects.bulk_create(
        Adder(organization=upstream, name=f"Item {n}", amount=n) for n in range(100)
    )
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(upstream, OrganizationFactory(), **MODES["strict"])
    execute = _in_sync_execute(partnership, categories=["adders"])
    with transaction.atomic():
        plan = _explained(execute)
    generic, custom = _plans_made(execute)
    assert generic >= 2  # the plan made while the table was small, used since
    assert custom == 0
    # 100 upstream items, 100 copies, each copy's upstream item once: not 10,000 rows.
    assert _rows_touched(plan["Plan"]) < 1000, json.dumps(plan, indent=1)


@pytest.mark.postgres
def test_the_plan_kept_for_every_collection_still_reads_by_index(
    transactional_db, django_capture_on_commit_callbacks
):
    """The same for the statement of a run of every category (five collections in one
    ``UNION ALL``, each table with indexes of its own): planned once while the tables were
    small, it still reads each table through its organization's index and each copy's
    upstream item by primary key once they have grown (docs/design.md §10)."""
    from settings_sync import registry
    from settings_sync.management.commands.bench_sync import Command

    connection.close()  # a new connection: the statement is prepared and planned below
    bench = Command(stdout=io.StringIO())
    small, _counts = bench._spread("Small", 5)
    with django_capture_on_commit_callbacks(execute=True):
        first = make_partnership(small, OrganizationFactory(), **MODES["strict"])
    models = [registry.get(key).model for key in bench.COLLECTIONS]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM FULL ANALYZE {', '.join(m._meta.db_table for m in models)}")
    engine.run(first, policy.RESYNC)  # planned now, for any ids
    # The tables grow to 50,000 other copies; nothing analyses them again.
    fleet, _counts = bench._spread("Fleet", 500)
    partners = bench._partners(fleet, 100, data_sync_enabled=True)
    for model in models:
        bench._insert_copies(fleet, partners, model)
    upstream, _counts = bench._spread("Upstream", 500)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(upstream, OrganizationFactory(), **MODES["strict"])
    execute = _in_sync_execute(partnership)
    with transaction.atomic():
        plan = _explained(execute)
    generic, custom = _plans_made(execute)
    assert (generic >= 2, custom) == (True, 0)  # the plan made while the tables were small
    # 500 upstream items, 500 copies and each copy's upstream item once, a few times over
    # in the plan's nodes: not the 50,000 other copies.
    assert _rows_touched(plan["Plan"]) < 5000, json.dumps(plan, indent=1)


@pytest.mark.postgres
def test_the_runs_lock_and_read_planned_while_the_tables_were_small_still_read_by_key(
    transactional_db, django_capture_on_commit_callbacks
):
    """A run's lock of its partner and its read of the run (with its partnership, both
    organizations, who started it and the partnership's overrides) are prepared and planned
    once per connection, for any run. Planned while the tables were small, each still finds
    its rows by primary key once the tables have grown, not by walking them (docs/design.md
    §10)."""
    from settings_sync.management.commands.bench_sync import Command

    connection.close()  # a new connection: the statements are prepared and planned below
    small = Organization.objects.create(name="Small")
    _create(Adder, small, "Item", 1)
    with django_capture_on_commit_callbacks(execute=True):
        first = make_partnership(small, OrganizationFactory(), **MODES["strict"])
    tables = [
        "organizations_organization",
        "partnerships_partnership",
        "settings_sync_syncrun",
        "settings_sync_categoryoverride",
        "auth_user",
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM FULL ANALYZE {', '.join(tables)}")
    engine.run(first, policy.RESYNC, categories=["adders"])  # planned now, for any run
    # The tables grow: 2,000 partners with a run and an override each; nothing analyses them.
    bench = Command(stdout=io.StringIO())
    partnerships = bench._partners(Organization.objects.create(name="Fleet"), 2000)
    SyncRun.objects.bulk_create(SyncRun(partnership=p, event="link") for p in partnerships)
    CategoryOverride.objects.bulk_create(
        CategoryOverride(partnership=p, category="adders", value="off") for p in partnerships
    )
    statements = []

    def keep(execute, sql, params, many, context):
        if "lock_timeout" in sql:
            statements.extend(re.findall(r"EXECUTE cds_planned_\d+\([\d, ]+\)", sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        assert engine.run(first, policy.RESYNC, categories=["adders"]).status == "succeeded"
    lock, read = statements
    for execute in (lock, read):
        with transaction.atomic():
            plan = _explained(execute)
        generic, custom = _plans_made(execute)
        assert (generic >= 2, custom) == (True, 0)  # the plan made while the tables were small
        assert _rows_touched(plan["Plan"]) < 20, json.dumps(plan, indent=1)


def test_a_copy_in_another_partner_than_its_partnership_s_is_read(db):
    """The sync never puts a copy made through one partnership into another partner, but the
    rows do not forbid it. A run's read, which leaves plain copies out by partnership, must
    still give that partner every item: its plan is the full one (docs/design.md §10)."""
    upstream = OrganizationFactory()
    for n, name in enumerate(NAMES):
        _create(Adder, upstream, name, n)
    with transaction.atomic():
        first = make_partnership(upstream, OrganizationFactory(), **MODES["non_exclusive"])
        second = make_partnership(upstream, OrganizationFactory(), **MODES["non_exclusive"])
    engine.run(first, policy.LINK)
    engine.run(second, policy.LINK)
    source = Adder.objects.get(organization=upstream, name=NAMES[0])
    Adder.all_objects.filter(organization=first.downstream, synced_from=source).delete()
    Adder.all_objects.filter(organization=second.downstream, synced_from=source).update(
        organization=first.downstream
    )
    batch = list(
        Partnership.objects.select_related("upstream", "downstream").filter(
            pk__in=[first.pk, second.pk]
        )
    )
    first = next(p for p in batch if p.pk == first.pk)
    skipping = engine.preview(first, policy.RESYNC, reads=Reads(batch, skip_plain=True))
    full = engine.preview(first, policy.RESYNC)
    assert _planned(skipping) == _planned(full)
    assert [change.action for change in full.changes] == ["conflict"]


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.postgres
@pytest.mark.parametrize("churned", [False, True], ids=["small", "churned"])
def test_a_first_copy_planned_while_the_table_was_small_still_reads_by_index(
    transactional_db, django_capture_on_commit_callbacks, churned
):
    """A first copy's statement (the copies and their history) is prepared and planned once
    per connection, for any ids. Planned while the table was small (analysed so), it must
    still read the channel manager's items through an index on their organization once the
    table holds 10,000 other live items: not walk the table, nor every live item. Planned
    while the table held one channel manager's catalogue, after many other rows came and
    went, the statistics know one organization whose items are all live, and the indexes
    keep the size they grew to: no index but the organization's may then look as cheap
    (docs/design.md §10)."""
    connection.close()  # a new connection: the statement is prepared and planned below
    small = Organization.objects.create(name="Small")
    if churned:  # 20,000 copies in 2,000 partners, gone again
        from settings_sync.management.commands.bench_sync import Command

        bench = Command(stdout=io.StringIO())
        fleet = Organization.objects.create(name="Gone")
        Adder.objects.bulk_create(
            Adder(organization=fleet, name=f"A{n}", amount=n) for n in range(10)
        )
        bench._insert_copies(fleet, bench._partners(fleet, 2000), Adder)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM project_adder")
    Adder.objects.bulk_create(
        Adder(organization=small, name=f"Item {n}", normalised_key=f"item {n}", amount=n)
        for n in range(300 if churned else 1)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'' if churned else 'FULL'} ANALYZE project_adder")
    executed = []

    def keep(execute, sql, params, many, context):
        executed.extend(re.findall(r"EXECUTE cds_planned_\d+\([^)]*\)", sql))
        return execute(sql, params, many, context)

    with django_capture_on_commit_callbacks(execute=True), connection.execute_wrapper(keep):
        make_partnership(small, OrganizationFactory(), **MODES["strict"])  # planned now
    fleet = Organization.objects.create(name="Fleet")
    Adder.objects.bulk_create(
        Adder(organization=fleet, name=f"A{n}", normalised_key=f"a{n}", amount=n)
        for n in range(10_000)
    )
    upstream = Organization.objects.create(name="Upstream")
    Adder.objects.bulk_create(
        Adder(organization=upstream, name=f"Item {n}", normalised_key=f"item {n}", amount=n)
        for n in range(100)
    )
    executed.clear()
    with django_capture_on_commit_callbacks(execute=True), connection.execute_wrapper(keep):
        partnership = make_partnership(upstream, OrganizationFactory(), **MODES["strict"])
    assert Adder.objects.filter(organization=partnership.downstream).count() == 100
    copies = [e for e in executed if _plans_made(e) != (0, 0) and "timestamptz" in e]
    (execute,) = copies
    generic, custom = _plans_made(execute)
    assert (generic >= 2, custom) == (True, 0)  # the plan made while the table was small
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {execute}")  # not run: planned only
        (plan,) = cursor.fetchone()[0]
    scans = [
        (node["Node Type"], "organization_id" in node.get("Index Cond", ""))
        for read in _plan_nodes(plan["Plan"])
        if read.get("Relation Name") == "project_adder" and "Scan" in read["Node Type"]
        for node in _plan_nodes(read)  # a bitmap scan's index scan is a node of its own
    ]
    # The channel manager's items found by an index on their organization, and nothing else
    # of the table read.
    assert scans in (
        [("Index Scan", True)],
        [("Bitmap Heap Scan", False), ("Bitmap Index Scan", True)],
    ), json.dumps(plan, indent=1)
