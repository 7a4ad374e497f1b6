"""Queries compiled once per shape (docs/design.md §10).

Building and compiling a large ORM query (the drift counts: a ``UNION ALL`` of conditional
counts over every category) costs several times what the database takes to answer it. Such a
query differs between requests only in the ids it is asked about, so its SQL is compiled once
per number of ids, with unique marker ids, and later calls put their ids where the markers
were. Lists of ids are padded to a power of two (repeating their first id) so that few shapes
exist.

On PostgreSQL the query's other parameters are also written into its text once, quoted by
the driver: the text of the drift query is long, and the driver would otherwise scan all of
it for placeholders on every call. Only the ids are put in per call, as integers.

The small reads of the hot pages (a membership list, a page of partnerships) cost more to
build and compile than to answer, too; ``objects`` gives their model instances, made from the
rows by the ORM's own iterable.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence

from django.db import connection, connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable

#: Marker ids: negative, so never a primary key, and far apart per list.
_MARK = -(10**12)
_LIST_SPACING = 10**6
#: Where an id goes in a query whose other parameters are written into its text.
_SLOT = "cds-prepared-slot-{}"
_SLOT_QUOTED = re.compile(r"'cds-prepared-slot-(\d+)'")


class Prepared:
    """``Prepared(build).rows(ids_a, ids_b, …)`` runs ``build(ids_a, ids_b, …)``'s query.

    ``build`` must use each list only as the right-hand side of ``__in`` lookups, and must
    return a queryset whose other parameters do not depend on the ids. Keyword arguments
    (``rows(ids, status="active")``) are passed on to ``build`` and are part of the shape:
    they must be few values (a choice among some, a page's offset), never free input.
    """

    #: Shapes kept at most per query (a page's offset is part of its shape).
    MAX_SHAPES = 256

    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self._compiled: dict[tuple, _Compiled] = {}

    def statement(self, *id_lists: Sequence[int], **options) -> tuple[str, list | None]:
        """The query's SQL for these ids and its parameters (None on PostgreSQL: in the text)."""
        padded = [_padded(ids) for ids in id_lists]
        return self._compile(padded, options).bind(padded)

    def rows(self, *id_lists: Sequence[int], **options) -> list[tuple]:
        sql, params = self.statement(*id_lists, **options)
        return _fetched(sql, params)

    def objects(self, *id_lists: Sequence[int], **options) -> list:
        """The model instances ``build``'s queryset gives for these ids (with the objects
        it selects as related), made by the ORM's own iterable from the rows: only the
        building and compiling of the query is skipped."""
        padded = [_padded(ids) for ids in id_lists]
        compiled = self._compile(padded, options)
        rows = _fetched(*compiled.bind(padded))
        return list(ModelIterable(_Executed(compiled, rows)))

    def _compile(self, padded: list[list[int]], options: dict) -> _Compiled:
        shape = tuple(len(ids) for ids in padded)
        key = (connection.alias, connection.vendor, shape, tuple(sorted(options.items())))
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= self.MAX_SHAPES:
                self._compiled.clear()
            marks = [
                [_MARK - which * _LIST_SPACING - index for index in range(size)]
                for which, size in enumerate(shape)
            ]
            queryset = self.build(*marks, **options)
            compiler = queryset.query.get_compiler(connection.alias)
            sql, params = compiler.as_sql()
            where = {
                mark: (which, index)
                for which, listed in enumerate(marks)
                for index, mark in enumerate(listed)
            }
            slots = {n: where[p] for n, p in enumerate(params) if isinstance(p, int) and p in where}
            if set(where) - set(params):
                raise ValueError("Every id must appear in the query as a parameter of its own.")
            compiled = _Compiled(sql, list(params), slots, queryset, compiler)
            self._compiled[key] = compiled
        return compiled


class _Compiled:
    """One shape's SQL: its parameters with the slots of the ids, or, on PostgreSQL, its text
    with every other parameter written in, cut where the ids go; and the queryset and
    compiler it came from (what the ORM needs to make instances of its rows)."""

    def __init__(
        self, sql: str, params: list, slots: dict[int, tuple[int, int]], queryset, compiler
    ):
        self.sql, self.params, self.slots = sql, params, slots
        self.queryset, self.compiler = queryset, compiler
        self.pieces: list[str] | None = None
        self.order: list[tuple[int, int]] = []
        if connection.vendor == "postgresql":
            marked = [_SLOT.format(n) if n in slots else p for n, p in enumerate(params)]
            cut = _SLOT_QUOTED.split(connection.ops.compose_sql(sql, marked))
            self.pieces = cut[0::2]
            self.order = [slots[int(n)] for n in cut[1::2]]

    def bind(self, padded: list[list[int]]) -> tuple[str, list | None]:
        if self.pieces is None:
            params = list(self.params)
            for position, (which, index) in self.slots.items():
                params[position] = padded[which][index]
            return self.sql, params
        text = [self.pieces[0]]
        for (which, index), piece in zip(self.order, self.pieces[1:], strict=True):
            text += [f"({int(padded[which][index])})", piece]
        return "".join(text), None


class _Executed:
    """What ``ModelIterable`` reads of a queryset, for a query already run: its compiler
    (compiled once, given this thread's connection) answers with the rows read."""

    def __init__(self, compiled: _Compiled, rows: list[tuple]):
        queryset = compiled.queryset
        self.model, self.db = queryset.model, connection.alias
        self._fetch_mode = queryset._fetch_mode
        self._known_related_objects = {}
        self.query = self
        self.compiler = copy.copy(compiled.compiler)
        self.compiler.connection = connections[self.db]
        if self.compiler.has_extra_select:  # columns only for ordering, as the ORM drops them
            rows = [row[: self.compiler.col_count] for row in rows]
        self.compiler.execute_sql = lambda *args, **kwargs: [rows]

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        return self.compiler


def _fetched(sql: str, params: list | None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _padded(ids: Sequence[int]) -> list[int]:
    ids = list(ids) or [_MARK]
    size = 1
    while size < len(ids):
        size *= 2
    return ids + [ids[0]] * (size - len(ids))
