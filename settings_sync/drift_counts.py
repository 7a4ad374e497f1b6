"""Drift counts kept per partnership and collection category (docs/design.md §10, "Drift is
kept, not recounted").

Writers mark; readers recount what is marked. Every write of an organization's items in a
category marks, in the writer's own transaction, the rows of every partnership on either side
of that organization for that category: ``fresh`` off and ``generation`` up by one, the row
inserted if it did not exist yet. The Partnerships tab reads the rows of its page; it recounts
the rows it finds stale or missing and stores the counts only where the row's generation is
still the one it read, so a count that a concurrent writer made stale is never stored as
fresh.

The writers: the engine's runs (every category a run wrote, ``written``), and every save,
archive, restore or delete of an item and every import (through
``tasks.schedule_upstream_change``, which all of them reach), and *keep mine*, which moves a
baseline with a queryset update. A write that bypasses all of them (a queryset ``update()``
or raw SQL on items) must call ``mark`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import OperationalError, connection

from partnerships.models import Partnership

from . import registry, transaction_marks
from .models import DriftCount

#: How long a reader waits for a writer's row before it gives up storing (PostgreSQL): it
#: shows its own recount either way, and the row stays stale for the next reader.
STORE_LOCK_TIMEOUT = "50ms"


def mark(pairs: Iterable[tuple[int, str]]) -> None:
    """The items of ``(organization id, category key)`` pairs changed: mark the drift counts
    of every partnership on either side of each organization, for that category, stale.

    One statement; the rows are locked in the order of their keys, so two writers never wait
    for each other in a cycle. A pair marked earlier in the same transaction (and not rolled
    back since) is not marked again: the rows stay locked by this transaction until it ends,
    so no reader can store counts for them meanwhile.
    """
    if marking := Marking.of(pairs):
        with connection.cursor() as cursor:
            cursor.execute(*marking.statement)
        marking.done()


class Marking:
    """``mark``'s statement, for a writer that sends it with its own (one round trip): the
    writer executes ``statement``, then calls ``done``."""

    def __init__(self, wanted: list[tuple[int, str]]) -> None:
        self.wanted = wanted
        table = connection.ops.quote_name(DriftCount._meta.db_table)
        partnerships = connection.ops.quote_name(Partnership._meta.db_table)
        values = ", ".join(["(%s, %s)"] * len(wanted))
        organizations = sorted({organization for organization, _key in wanted})
        among = ", ".join(["%s"] * len(organizations))
        # The partnerships on either side are read by naming the organizations, each side
        # by its index (a new partner has one or two), before the categories are joined:
        # joined to the categories directly, the planner estimated any organization's
        # partnerships as a busy channel manager's and read the whole table for a new
        # partner's run (docs/design.md §10).
        sql = (
            f"WITH changed (organization_id, category) AS (VALUES {values}), "  # noqa: S608
            f"sides AS MATERIALIZED (SELECT id, upstream_id, downstream_id FROM {partnerships} "
            f"WHERE upstream_id IN ({among}) OR downstream_id IN ({among})), "
            "touched AS (SELECT DISTINCT s.id AS partnership_id, c.category FROM sides s "
            "JOIN changed c ON c.organization_id IN (s.upstream_id, s.downstream_id)) "
            f"INSERT INTO {table} "
            "(partnership_id, category, generation, fresh, diverged, missing, out_of_date) "
            "SELECT partnership_id, category, 1, false, 0, 0, 0 FROM touched WHERE true "
            "ORDER BY partnership_id, category "
            "ON CONFLICT (partnership_id, category) DO UPDATE "
            f"SET generation = {table}.generation + 1, fresh = false"
        )
        self.statement = (
            sql,
            [*(value for pair in wanted for value in pair), *organizations, *organizations],
        )

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, str]]) -> Marking | None:
        """The marking of ``pairs`` (None when every pair is marked already)."""
        collections = {category.key for category in registry.all() if category.is_collection}
        wanted = sorted({(int(org), key) for org, key in pairs if key in collections})
        if connection.in_atomic_block:
            done = _marked_in_this_transaction()
            wanted = [pair for pair in wanted if pair not in done]
        return cls(wanted) if wanted else None

    def done(self) -> None:
        """The statement was executed: remember its pairs for the rest of the transaction."""
        if connection.in_atomic_block:
            transaction_marks.leave(_Marked(self.wanted))


def written(runs: list) -> Marking | None:
    """The marking of the categories the applied runs write into their partners (``(plan,
    run)`` pairs, as the engine's writer gets them)."""
    return Marking.of(
        (plan.partnership.downstream_id, category_plan.category.key)
        for plan, _run in runs
        for category_plan in plan.categories
        if category_plan.to_create
        or category_plan.to_archive
        or category_plan.to_update
        or category_plan.bulk_copies
    )


def store(counted: list[tuple[int, str, int, int, int, int]]) -> None:
    """Store recounts: ``(partnership id, category, generation read, diverged, missing, out
    of date)``, each only where the row's generation is still the one read (0: there was no
    row) — a writer that marked it since, committed or not, keeps it stale.

    Outside a transaction on PostgreSQL the statement waits at most ``STORE_LOCK_TIMEOUT``
    for a writer's row, and gives up storing (the counts were shown all the same)."""
    if not counted:
        return
    table = connection.ops.quote_name(DriftCount._meta.db_table)
    # Every value is an integer or a registry key: written into the text, which is then sent
    # with the bound of its wait in one implicit transaction.
    keys = {category.key for category in registry.all()}
    rows = ", ".join(
        f"({int(pk)}, '{key}', {int(generation)}, true, {int(a)}, {int(b)}, {int(c)})"
        for pk, key, generation, a, b, c in sorted(counted)
        if key in keys
    )
    sql = (
        f"INSERT INTO {table} "  # noqa: S608 (our identifiers, integers and registry keys)
        "(partnership_id, category, generation, fresh, diverged, missing, out_of_date) "
        f"VALUES {rows} "
        "ON CONFLICT (partnership_id, category) DO UPDATE SET fresh = true, "
        "diverged = excluded.diverged, missing = excluded.missing, "
        f"out_of_date = excluded.out_of_date WHERE {table}.generation = excluded.generation"
    )
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(sql)
        if connection.in_atomic_block:  # what this transaction marked before must be again
            transaction_marks.leave(_Stored())
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{STORE_LOCK_TIMEOUT}'; {sql}")
    except OperationalError:  # a writer holds a row: it is stale anyway
        pass


class _Marked(transaction_marks.Mark):
    """The pairs this transaction marked (gone with a savepoint rolled back)."""

    def __init__(self, pairs: list[tuple[int, str]]) -> None:
        self.pairs = pairs


class _Stored(transaction_marks.Mark):
    """This transaction stored counts, after the marks before it (a reader in the writer's
    own transaction is not kept out by the writer's locks)."""


def _marked_in_this_transaction() -> set[tuple[int, str]]:
    marked: set[tuple[int, str]] = set()
    for callback in transaction_marks.pending(_Stored, _Marked):
        if isinstance(callback, _Stored):
            marked.clear()
        elif isinstance(callback, _Marked):
            marked.update(callback.pairs)
    return marked
