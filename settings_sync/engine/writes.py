"""Writing plans: every category of every run of a batch in a few bulk statements.

Archives are written first (they free natural keys), then updates, then creations; a partner
with nothing in a category gets every upstream item by one ``INSERT … SELECT``; the history of
all the runs is one insert (docs/design.md §7, §10).

Sync writes never call ``save()`` on a partner's items, so no model signal fires for them: a
receiver of the partner's own edits (which starts that partner's fan-out) never sees the sync's
writes. Travelling further down a network is an explicit step of a run, not a side effect
(docs/design.md §8). ``tests/settings_sync/test_writes.py`` holds this.
"""

from __future__ import annotations

import json

from django.core.files.base import ContentFile
from django.db import connection, models
from django.db.models import F, Value
from django.db.models.expressions import Col, RawSQL
from django.db.models.functions import Cast, Coalesce, Concat, JSONObject, Trim
from django.utils import timezone

from organizations.natural_keys import NaturalKeyModel
from organizations.prepared import HASH_JOINS_ONLY, Template, fetched_together
from partnerships.models import Partnership

from .. import drift_counts, locks
from ..items import FRESH_COPY, Fresh, baseline_name
from ..models import SyncChange, SyncRun
from .plan import CREATED, CategoryPlan, Plan


def apply(
    runs: list[tuple[Plan, SyncRun]], *, also: list[tuple[str, list | None]] = ()
) -> list[list[tuple]]:
    """Write the plans of one or several runs (into different partners), category by
    category: one bulk statement per category and kind of write, whatever the number of runs.

    ``also``: statements of the caller's sent with the first copies (one round trip on
    PostgreSQL, docs/design.md §10); their rows are returned."""
    now = timezone.now()
    by_category: dict[str, list[tuple[CategoryPlan, Plan, SyncRun]]] = {}
    for plan, sync_run in runs:
        for category_plan in plan.categories:
            by_category.setdefault(category_plan.category.key, []).append(
                (category_plan, plan, sync_run)
            )
    copies: list[tuple[str, list]] = []  # the first copies' statements, sent together
    for entries in by_category.values():
        category = entries[0][0].category
        model = category.model
        manager = getattr(model, "all_objects", model._default_manager)
        # Partners may have different outcomes for one category (a fan-out into strict and
        # merge partners): write every field any of their plans writes.
        update_fields = tuple(
            dict.fromkeys(name for entry in entries for name in entry[0].update_fields)
        )
        keyed = issubclass(model, NaturalKeyModel)
        if keyed and update_fields:
            update_fields = tuple(dict.fromkeys([*update_fields, "normalised_key"]))
        # Archive first, so the keys they free can be taken by the updates and creations.
        for batch in ("to_archive", "to_update"):
            unique = list(
                {id(obj): obj for entry in entries for obj in getattr(entry[0], batch)}.values()
            )
            if not unique or category.copied_as_files:
                continue
            for obj in unique:
                if hasattr(obj, "updated_at"):
                    obj.updated_at = now
                if keyed:
                    obj.normalised_key = obj.compute_normalised_key()
            fields = changed_fields(unique, update_fields)
            if batch == "to_update" and keyed and (placeholder := free_keys(manager, unique)):
                fields = list(dict.fromkeys([*fields, placeholder]))  # written back in any case
            bulk_write(manager, unique, fields)
        to_create = [obj for entry in entries for obj in entry[0].to_create]
        for obj in to_create if keyed else ():
            obj.normalised_key = obj.compute_normalised_key()
        if to_create:
            model.objects.bulk_create(to_create, batch_size=None)
        first_copies = [(plan.partnership, run) for cp, plan, run in entries if cp.bulk_copies]
        if first_copies:
            copies += copy_in_sql(category, first_copies, now)
        for category_plan, _plan, _sync_run in entries:
            for obj, name, source, beside in category_plan.files:
                copy_file(obj, name, source, beside)
    # The drift counts of what the runs write are marked in the copies' round trip, in the
    # runs' transaction (docs/design.md §10).
    marking = drift_counts.written(runs)
    sent = [*copies, *([marking.statement] if marking else []), *also]
    results = fetched_together(sent) if sent else []
    if marking:
        marking.done()
    # The history of all the runs is one insert, so the count stays constant.
    history = [
        SyncChange(
            run=sync_run,
            category=change.category,
            action=change.action,
            item_id=getattr(change.item, "pk", None),
            upstream_item_id=getattr(change.upstream, "pk", None),
            label=change.label,
            before=change.before,
            after=change.after,
            note=change.note[:300],
        )
        for plan, sync_run in runs
        for change in plan.changes
        if not change.repeated
    ]
    if history:
        SyncChange.objects.bulk_create(history, batch_size=None)
    return results[len(results) - len(also) :]


def changed_fields(objects: list, fields: tuple[str, ...]) -> list[str]:
    """The fields (of ``fields``) that differ from what any of ``objects`` was loaded with."""
    changed = []
    for name in fields:
        attname = objects[0]._meta.get_field(name).attname
        for obj in objects:
            loaded = getattr(obj, "_sync_loaded", None)
            if loaded is None or loaded.get(attname) != getattr(obj, attname):
                changed.append(name)
                break
    return changed or list(fields[:1])


#: Marks the keys items hold for a moment while a run renames several of them at once.
PLACEHOLDER = "⧗ renaming "


def free_keys(manager, objects: list) -> str | None:
    """Before one statement gives several items new natural keys (upstream renames, a swap
    of two names, copies restored under names others leave), move them to placeholder keys:
    a unique index is checked row by row, so the order of the rows must not matter. Returns
    the column that now holds placeholders (the caller writes it back), or None."""

    def moves(obj) -> bool:
        loaded = getattr(obj, "_sync_loaded", None)
        if loaded is None:
            return False
        restored = loaded.get("archived_at") is not None and obj.archived_at is None
        return restored or loaded["normalised_key"] != obj.normalised_key

    moving = [obj.pk for obj in objects if moves(obj)]
    if len(moving) < 2:
        return None  # one item alone cannot meet itself; others' keys the planner checked
    manager.filter(pk__in=moving).update(
        normalised_key=Concat(Value(PLACEHOLDER), Cast("pk", models.CharField()))
    )
    return "normalised_key"


def bulk_write(manager, objects: list, fields: list[str]) -> None:
    """Write ``fields`` of ``objects`` in one statement.

    When every object gets the same values (one upstream change fanned out to many partners)
    that is a plain ``UPDATE … WHERE id IN (…)``; otherwise a ``bulk_update``, whose
    ``CASE WHEN`` per object and field costs far more to build.
    """
    model = objects[0]._meta.model
    attnames = [model._meta.get_field(name).attname for name in fields]

    def values(obj) -> str:
        return json.dumps([getattr(obj, a) for a in attnames], default=str, sort_keys=True)

    if not fields:
        raise ValueError("Nothing to write.")
    first = values(objects[0])
    if all(values(obj) == first for obj in objects[1:]):
        manager.filter(pk__in=[obj.pk for obj in objects]).update(
            **{attname: getattr(objects[0], attname) for attname in attnames}
        )
    else:
        manager.bulk_update(objects, fields, batch_size=None)


def insert_select(model, columns: list[str], queryset) -> None:
    """INSERT INTO model (columns) SELECT … — the SELECT compiled from an ORM queryset."""
    with connection.cursor() as cursor:
        cursor.execute(*insert_select_sql(model, columns, queryset))


def insert_select_sql(model, columns: list[str], queryset) -> tuple[str, list]:
    """The statement of ``insert_select`` and its parameters."""
    sql, params = queryset.query.sql_with_params()
    return (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} "
        f"({', '.join(connection.ops.quote_name(c) for c in columns)}) {sql}",
        list(params),
    )


def copy_in_sql(category, copies: list[tuple[Partnership, SyncRun]], now) -> list[tuple[str, list]]:
    """The statements that copy every upstream item into partners that have none, and record
    it: two for all the partners of a batch that share a channel manager and a way of
    locking (one run each; one on PostgreSQL), the rows never passing through Python (the
    physical limit of a copy). Each category's copies touch its own table only: the caller
    sends the statements of every category together (``fetched_together``)."""
    groups: dict[tuple, list[tuple[Partnership, SyncRun]]] = {}
    for partnership, sync_run in copies:
        shape = (partnership.upstream_id, *locks.lock_through(partnership, category.key))
        groups.setdefault(shape, []).append((partnership, sync_run))
    return [
        statement
        for (_upstream, keeps, locks_itself), group in groups.items()
        for statement in _copy_group(category, keeps, locks_itself, group, now)
    ]


def _copy_group(
    category, keeps: bool, locks_itself: bool, group: list[tuple[Partnership, SyncRun]], now
) -> list[tuple[str, list]]:
    partnership, sync_run = group[0]
    grouped = len(group) > 1
    # On PostgreSQL the history is written by the copies' own statement (``together``).
    shape = (category.key, keeps, locks_itself, grouped, connection.vendor == "postgresql")
    # A group's statements take its partners, partnerships and runs from its lists; one
    # partnership's, from its own ids.
    return _COPIES.statements(
        shape,
        partnership.upstream_id,
        None if grouped else partnership.downstream_id,
        None if grouped else partnership.pk,
        None if grouped else sync_run.pk,
        now,
        [p.pk for p, _ in group] if grouped else None,
        [run.pk for _, run in group] if grouped else None,
        # One partnership's statement reads the channel manager's items by the index on
        # their organization and joins nothing: planned once per connection.
        planned=True,
    )


def _copy_statements(
    shape: tuple, upstream_id, downstream_id, partnership_id, run_id, now, partnerships, runs
) -> list[tuple[str, list]]:
    """The copies of a group and their history: two ``INSERT … SELECT`` built by the ORM,
    once per shape (``_COPIES``): only their ids and their time change between runs; with
    ``together`` (PostgreSQL), one statement that writes both."""
    from .. import registry

    key, keeps, locks_itself, grouped, together = shape
    category = registry.find(key)
    model = category.model
    expressions = copy_columns(
        category, keeps, locks_itself, upstream_id, downstream_id, partnership_id, now
    )
    source = model.objects.filter(organization_id=upstream_id)
    history_of = model.all_objects.filter(
        organization_id=downstream_id, synced_partnership_id=partnership_id
    )
    run: models.Expression = Value(run_id, output_field=models.BigIntegerField())
    if grouped:
        # One row per upstream item and partnership of the group: the join through the
        # channel manager's partnerships gives each copy its partner and partnership.
        through = "organization__downstream_partnerships"
        source = source.filter(**{f"{through}__pk__in": partnerships})
        expressions["organization_id"] = F(f"{through}__downstream_id")
        expressions[model._meta.get_field("synced_partnership").column] = F(f"{through}__pk")
        history_of = model.all_objects.filter(
            synced_partnership_id__in=partnerships,
            organization_id=F("synced_partnership__downstream_id"),
            synced_partnership__sync_runs__pk__in=runs,
        )
        run = F("synced_partnership__sync_runs__pk")
    elif together:
        # One partnership's copies hold their values, and their baselines, which the history
        # rows of their creation read until they first change: each copy is given the id of
        # its row, which is then written without them (docs/design.md §7.5).
        expressions[model._meta.get_field("created_change_id").column] = RawSQL(
            "nextval(%s::regclass)", [_history_sequence()], output_field=models.BigIntegerField()
        )
    aliases = {f"copy_{n}": expression for n, expression in enumerate(expressions.values())}
    copies = insert_select_sql(
        model, list(expressions), source.order_by().annotate(**aliases).values_list(*aliases)
    )
    label_parts = []
    for name in category.label_fields:
        label_parts += [Cast(name, models.CharField()), Value(" ")]
    history = {
        "run_id": run,
        "category": Value(category.key, output_field=models.CharField()),
        "action": Value(CREATED, output_field=models.CharField()),
        "item_id": F("pk"),
        "upstream_item_id": F("synced_from_id"),
        "label": Trim(Concat(*label_parts, output_field=models.CharField()))
        if len(label_parts) > 2
        else Cast(category.label_fields[0], models.CharField()),
        "after": JSONObject(**{name: name for name in category.synced_fields}),
        "note": Value("", output_field=models.CharField()),
    }
    if together and grouped:
        # A group's copies of one upstream item share its label and values: described once
        # per upstream item, not once per copy (docs/design.md §10).
        described = source.model.objects.filter(organization_id=upstream_id).order_by()
        described = described.annotate(
            described_id=F("pk"),
            described_label=history.pop("label"),
            described_after=history.pop("after"),
        ).values_list("described_id", "described_label", "described_after")
        return _hash_joined(
            _copied_and_recorded(model, copies, history, runs, described.query.sql_with_params())
        )
    if together:
        history.pop("after")
        history = {"id": F("created_change_id"), **history}
        return [_copied_and_recorded(model, copies, history, None)]
    aliases = {f"change_{n}": expression for n, expression in enumerate(history.values())}
    recorded = insert_select_sql(
        SyncChange, list(history), history_of.order_by().annotate(**aliases).values_list(*aliases)
    )
    return [copies, recorded]


def _history_sequence() -> str:
    """PostgreSQL: the sequence that gives the history's ids (the one PostgreSQL names for
    the identity column Django declares)."""
    return f"{SyncChange._meta.db_table}_id_seq"


#: How a group's first copies are planned: hash joins only, and no table walked where an
#: index can read it (``_hash_joined``).
GROUP_COPY_PLANNER = {**HASH_JOINS_ONLY, "enable_seqscan": "off"}


def _hash_joined(statement: tuple[str, list]) -> list[tuple[str, list]]:
    """``statement`` planned with hash joins only (for that statement alone): its joins are
    of rows just made, which no statistics know, to rows that may be newer than the
    statistics too. Estimated at a row each, they would be joined by a nested loop that
    scans one side once per row of the other; a hash join reads each side once, whichever
    the planner hashes. Nor does it walk a table: statistics that know the channel
    manager's items alone would have it read the whole table, every earlier batch's copies
    included, for the items it reads by their organization's index (docs/design.md §10)."""
    return [
        *((f"SET LOCAL {name} = {value}", []) for name, value in GROUP_COPY_PLANNER.items()),
        statement,
        *((f"RESET {name}", []) for name in GROUP_COPY_PLANNER),
    ]


def _copied_and_recorded(
    model,
    copies: tuple[str, list],
    history: dict[str, models.Expression],
    runs,
    described: tuple[str, list] | None = None,
) -> tuple[str, list]:
    """PostgreSQL: the copies and their history in one statement (docs/design.md §10, *A
    first copy's history written with its copies*). The history's rows are built from the
    rows the ``INSERT`` returns (``made``), not read again: each value is the expression
    the ORM builds for a copy's row, compiled over ``made`` (the columns it reads, returned
    by the ``INSERT`` under the same names). A group's rows find their run by their
    partnership among the group's runs."""
    qn = connection.ops.quote_name
    made, run = qn("made"), qn("run")
    query = model.objects.all().query
    compiler = query.get_compiler(connection=connection)
    table = f"{qn(model._meta.db_table)}."
    columns, params = [], list(copies[1])
    returned = {"synced_partnership_id"} if runs is not None else set()
    for name, expression in history.items():
        if name == "run_id" and runs is not None:
            columns.append(f"{run}.{qn('id')}")
            continue
        resolved = expression.resolve_expression(query)
        sql, expression_params = compiler.compile(resolved)
        columns.append(sql.replace(table, f"{made}."))
        params += expression_params
        returned |= _columns_read(resolved)
    names = list(history)
    source = ""
    if described is not None:
        # The upstream item's label and values, read once per upstream item (``src``),
        # joined to its copies by ``synced_from_id``.
        src = qn("src")
        source = f"{src} AS MATERIALIZED ({described[0]}), "
        params = [*described[1], *params]
        returned.add("synced_from_id")
        names += ["label", "after"]
        columns += [f"{src}.{qn('described_label')}", f"{src}.{qn('described_after')}"]
    sql = (
        f"WITH {source}{made} AS ({copies[0]} "  # noqa: S608 (our identifiers)
        f"RETURNING {', '.join(qn(column) for column in sorted(returned))}) "
        f"INSERT INTO {qn(SyncChange._meta.db_table)} "
        f"({', '.join(qn(name) for name in names)}) "
        f"SELECT {', '.join(columns)} FROM {made}"
    )
    if described is not None:
        sql += (
            f" INNER JOIN {qn('src')} ON {qn('src')}.{qn('described_id')} = "
            f"{made}.{qn('synced_from_id')}"
        )
    if runs is not None:
        sql += (
            f" INNER JOIN {qn(SyncRun._meta.db_table)} {run}"
            f" ON {run}.{qn('partnership_id')} = {made}.{qn('synced_partnership_id')}"
            f" WHERE {run}.{qn('id')} IN ({', '.join(['%s'] * len(runs))})"
        )
        params += list(runs)
    return sql, params


def _columns_read(expression) -> set[str]:
    """The columns of its table that a resolved expression reads."""
    if isinstance(expression, Col):
        return {expression.target.column}
    return set().union(
        *(_columns_read(source) for source in expression.get_source_expressions() if source)
    )


_COPIES = Template(_copy_statements)


def copy_columns(
    category, keeps_lock: bool, locks_itself: bool, upstream_id, downstream_id, partnership_id, now
) -> dict[str, models.Expression]:
    """Column → the value a fresh copy of an upstream row holds in it (``F`` of the upstream
    row, or a constant of this run): every column of the table but its primary key. The
    copy keeps its source's lock, or locks itself, as ``locks.lock_through`` says."""
    model = category.model
    fields = category.synced_fields
    manager = F("managed_by") if keeps_lock else Value(None, output_field=models.BigIntegerField())
    if locks_itself:
        manager = Coalesce(manager, Value(upstream_id, output_field=models.BigIntegerField()))
    fresh = {
        Fresh.PARTNERSHIP: Value(partnership_id, output_field=models.BigIntegerField()),
        Fresh.SOURCE: F("pk"),
        Fresh.KEY: F("normalised_key"),
        Fresh.NOW: Value(now, output_field=models.DateTimeField()),
        Fresh.MANAGER: manager,
        Fresh.ORIGIN: Coalesce(F("synced_origin"), F("organization")),
    }
    return {
        "organization_id": Value(downstream_id, output_field=models.BigIntegerField()),
        **{
            model._meta.get_field(name).column: fresh[value]
            if isinstance(value, Fresh)
            else _typed(value, model._meta.get_field(name))
            for name, value in FRESH_COPY.items()
        },
        **{model._meta.get_field(name).column: F(name) for name in fields},
        **{model._meta.get_field(baseline_name(name)).column: F(name) for name in fields},
    }


def _typed(value, field) -> Value:
    return Value(value, output_field=models.BigIntegerField() if field.is_relation else field)


def copy_file(obj, name: str, source, also: dict) -> None:
    """Give ``obj`` a file of its own with the content of ``source`` (no ``save()``, so no
    signal: the column, and the ``also`` columns beside it, are written by an ``UPDATE``)."""
    with source.open("rb") as handle:
        content = handle.read()
    field_file = getattr(obj, name)
    field_file.save(source.name.rsplit("/", 1)[-1], ContentFile(content), save=False)
    for column, value in also.items():
        setattr(obj, column, value)
    type(obj)._default_manager.filter(pk=obj.pk).update(**{name: field_file.name, **also})
