"""Queries compiled once per shape (docs/design.md §10).

Building and compiling a large ORM query (the drift counts: a ``UNION ALL`` of conditional
counts over every category) costs several times what the database takes to answer it. Such a
query differs between requests only in the ids it is asked about, so its SQL is compiled once
per number of ids, with unique marker ids, and later calls put their ids where the markers
were. Lists of ids are padded to a power of two (repeating their first id) so that few shapes
exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connection
from django.db.models import QuerySet

#: Marker ids: negative, so never a primary key, and far apart per list.
_MARK = -(10**12)
_LIST_SPACING = 10**6


class Prepared:
    """``Prepared(build).rows(ids_a, ids_b, …)`` runs ``build(ids_a, ids_b, …)``'s query.

    ``build`` must use each list only as the right-hand side of ``__in`` lookups, and must
    return a queryset whose other parameters do not depend on the ids.
    """

    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self._compiled: dict[tuple, tuple[str, list, dict[int, tuple[int, int]]]] = {}

    def rows(self, *id_lists: Sequence[int]) -> list[tuple]:
        padded = [_padded(ids) for ids in id_lists]
        sql, params, slots = self._compile(tuple(len(ids) for ids in padded))
        params = list(params)
        for position, (which, index) in slots.items():
            params[position] = padded[which][index]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _compile(self, shape: tuple[int, ...]):
        key = (connection.alias, connection.vendor, *shape)
        if key not in self._compiled:
            marks = [
                [_MARK - which * _LIST_SPACING - index for index in range(size)]
                for which, size in enumerate(shape)
            ]
            sql, params = self.build(*marks).query.sql_with_params()
            where = {
                mark: (which, index)
                for which, listed in enumerate(marks)
                for index, mark in enumerate(listed)
            }
            slots = {n: where[p] for n, p in enumerate(params) if isinstance(p, int) and p in where}
            if set(where) - set(params):
                raise ValueError("Every id must appear in the query as a parameter of its own.")
            self._compiled[key] = (sql, list(params), slots)
        return self._compiled[key]


def _padded(ids: Sequence[int]) -> list[int]:
    ids = list(ids) or [_MARK]
    size = 1
    while size < len(ids):
        size *= 2
    return ids + [ids[0]] * (size - len(ids))
