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

import _thread
import copy
import itertools
import re
import weakref
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import DatabaseError, connection, connections, transaction
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.db.models.sql.constants import LOUTER
from django.db.models.sql.datastructures import Join

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

    def __init__(self, build: Callable[..., QuerySet], *, by_key: bool = False):
        """``by_key``: on PostgreSQL each table the query joins is read by its key in a
        subquery of its own (``_by_key``), for a plan made once (``planned``)."""
        self.build = build
        self.by_key = by_key
        self._compiled: dict[tuple, _Compiled] = {}

    def statement(self, *id_lists: Sequence[int], **options) -> tuple[str, list | None]:
        """The query's SQL for these ids and its parameters (None on PostgreSQL: in the text)."""
        padded = [padded_ids(ids) for ids in id_lists]
        return self._compile(padded, options).bind(padded)

    def planned(self, *id_lists: Sequence[int], **options) -> tuple[str, list[int]]:
        """PostgreSQL: the query's text with its ids as ``$1`` … ``$n``, and the ids in that
        order, for ``Planned``: the text is the same for every call of a shape."""
        padded = [padded_ids(ids) for ids in id_lists]
        compiled = self._compile(padded, options)
        text, ids = [compiled.pieces[0]], []
        for (which, index), piece in zip(compiled.order, compiled.pieces[1:], strict=True):
            ids.append(padded[which][index])
            text += [f"(${len(ids)})", piece]
        return "".join(text), ids

    def rows(self, *id_lists: Sequence[int], **options) -> list[tuple]:
        sql, params = self.statement(*id_lists, **options)
        return _fetched(sql, params)

    def objects(self, *id_lists: Sequence[int], **options) -> list:
        """The model instances ``build``'s queryset gives for these ids (with the objects
        it selects as related), made by the ORM's own iterable from the rows: only the
        building and compiling of the query is skipped."""
        padded = [padded_ids(ids) for ids in id_lists]
        compiled = self._compile(padded, options)
        return self._instances(compiled, _fetched(*compiled.bind(padded)))

    def instances(self, rows: list[tuple], *id_lists: Sequence[int], **options) -> list:
        """``objects`` of rows this query's ``statement`` gave, read by the caller (sent in
        the round trip of another statement)."""
        return self._instances(self._compile([padded_ids(ids) for ids in id_lists], options), rows)

    @staticmethod
    def _instances(compiled: _Compiled, rows: list[tuple]) -> list:
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
            if self.by_key and connection.vendor == "postgresql":
                sql, params = _by_key(compiler)
            else:
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


def _by_key(compiler) -> tuple[str, list]:
    """PostgreSQL: the compiler's query (compiled, so the ORM can read its rows) with each table it
    joins read in a ``LATERAL`` subquery of its own, by the key the join gives it, fenced by
    ``OFFSET 0`` so that the planner does not turn it back into a join. Its columns are the
    ones the ORM reads, under the same names. The planner is left one order, from the first
    table on, and one way to read each of the others: a plan made once, while the tables
    were small, finds each row by its key however large they grow (docs/design.md §10)."""
    query, quote = compiler.query, connection.ops.quote_name
    if query.order_by or query.distinct or query.group_by or query.select_for_update:
        raise ValueError("Only a plain read can be read by key.")
    # The tables the query reads, as its own FROM clause counts them (``as_sql`` sets them
    # up, then forgets them).
    used: dict[str, int] = {}
    from_clause = compiler.get_from_clause

    def counted():
        used.update(query.alias_refcount)
        return from_clause()

    compiler.get_from_clause = counted
    compiler.as_sql()
    columns, params = [], []
    for _expression, (sql, sql_params), alias in compiler.select:
        columns.append(f"{sql} AS {quote(alias)}" if alias else sql)
        params += sql_params
    tables = []
    for alias, table in query.alias_map.items():
        if not used.get(alias):
            continue
        if not isinstance(table, Join):
            tables.append(
                quote(table.table_name) + ("" if alias == table.table_name else f" {quote(alias)}")
            )
            continue
        on = " AND ".join(
            f"cds_key.{quote(rhs)} = {quote(table.parent_alias)}.{quote(lhs)}"
            for lhs, rhs in table.join_cols
        )
        read = (
            f"LATERAL (SELECT * FROM {quote(table.table_name)} cds_key "  # noqa: S608
            f"WHERE {on} OFFSET 0) {quote(alias)}"
        )
        tables.append(
            f"LEFT JOIN {read} ON TRUE" if table.join_type == LOUTER else f"CROSS JOIN {read}"
        )
    where, where_params = compiler.compile(query.where)
    return (
        f"SELECT {', '.join(columns)} FROM {' '.join(tables)} WHERE {where}",  # noqa: S608
        [*params, *where_params],
    )


class _Compiled:
    """One shape's SQL: its parameters with the slots of the ids, or, on PostgreSQL, its text
    with every other parameter written in, cut where the ids go; and the queryset and
    compiler it came from (what the ORM needs to make instances of its rows)."""

    def __init__(
        self, sql: str, params: list, slots: dict[int, tuple[int, int]], queryset, compiler
    ):
        self.sql, self.params, self.slots = sql, params, slots
        self.queryset, self.compiler = queryset, compiler
        #: The converters of its columns, per connection (they are bound to its operations).
        self.converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.pieces: list[str] | None = None
        self.order: list[tuple[int, int]] = []
        if connection.vendor == "postgresql":
            self.pieces, positions = _cut(sql, params, slots)
            self.order = [slots[position] for position in positions]

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
        # The ORM asks for the converters of the same columns on every call; they are found
        # once per connection (the tenth of a run's own CPU went to finding them again).
        converters = compiled.converters.get(self.compiler.connection)
        if converters is None:
            columns = [column for column, *_ in self.compiler.select[: self.compiler.col_count]]
            converters = self.compiler.get_converters(columns)
            compiled.converters[self.compiler.connection] = converters
        self.compiler.get_converters = lambda expressions: converters

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        return self.compiler


def _cut(sql: str, params: list, slots) -> tuple[list[str], list[int]]:
    """PostgreSQL: ``sql`` with every parameter but those at the positions ``slots`` holds
    written in by the driver, cut where those go: the pieces, and the position of the
    parameter that goes after each piece but the last."""
    marked = [_SLOT.format(n) if n in slots else p for n, p in enumerate(params)]
    cut = _SLOT_QUOTED.split(connection.ops.compose_sql(sql, marked))
    return cut[0::2], [int(n) for n in cut[1::2]]


def _fetched(sql: str, params: list | None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def fetched_together(
    statements: Sequence[tuple[str, Sequence | None] | Planned],
) -> list[list[tuple]]:
    """The rows of each statement (``(sql, params)``; params None: written in, as
    ``Prepared.statement`` gives them on PostgreSQL; or, on PostgreSQL, the ``EXECUTE`` of a
    ``Planned``), run in order: on PostgreSQL as one text, one round trip, their parameters
    quoted in by the driver; elsewhere one by one. A statement that returns no rows (an
    ``INSERT``) gives an empty list (docs/design.md §10)."""
    results = []
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall() if cursor.description else [])
            return results
        texts = [_texts(statement) for statement in statements]
        planned = [statement for statement in statements if isinstance(statement, Planned)]
        try:
            cursor.execute("; ".join(text for group in texts for text in group))
        except Exception as error:
            for call in planned:
                call.held.pop(call.text, None)  # prepared again next time
            if planned and sqlstate(error) == UNKNOWN_PREPARED_STATEMENT:
                # Something dropped the server's prepared statements behind our back (a
                # pooler's reset, ``DEALLOCATE ALL``): every one is prepared again next
                # time, not each after a failure of its own.
                planned[0].held.clear()
            raise
        for call in planned:
            call.held[call.text] = call.name
        at = start = 0  # the result the cursor is at; the first of the statement's texts
        for statement, group in zip(statements, texts, strict=True):
            position = start + (statement.position if isinstance(statement, Planned) else 0)
            for _ in range(position - at):
                cursor.nextset()
            at, start = position, start + len(group)
            # Whether the statement returned rows, without building the description of
            # every column (each one an object; a run's read has sixty).
            results.append(cursor.fetchall() if cursor.rownumber is not None else [])
        return results


#: PostgreSQL's SQLSTATE for a prepared statement that does not exist.
UNKNOWN_PREPARED_STATEMENT = "26000"


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error (the driver's, under Django's)."""
    return getattr(error, "sqlstate", None) or getattr(error.__cause__, "sqlstate", None)


def _texts(statement: tuple[str, Sequence | None] | Planned) -> list[str]:
    """PostgreSQL: the texts that carry ``statement``."""
    if isinstance(statement, Planned):
        return statement.texts
    sql, params = statement
    return [sql if params is None else connection.ops.compose_sql(sql, params)]


@contextmanager
def savepoint_sent_ahead(inserted=None):
    """A nested atomic block whose ``SAVEPOINT`` goes to the server in the text of the
    block's first statement and which the transaction's commit releases: two round trips
    fewer than ``transaction.atomic()`` inside a transaction (docs/design.md §10).

    As with ``atomic``, an exception rolls the block's writes back to the savepoint, with
    the on-commit callbacks registered in it, and the caller's transaction goes on. Outside
    a transaction, or elsewhere than on PostgreSQL, it is ``transaction.atomic()``.

    ``inserted``: a new model instance inserted as ``insert_rows`` inserts it, as it is when
    the block starts, before the savepoint, so that nothing the block does takes it back:
    on PostgreSQL in the text of the block's first statement (it is given its id once that
    text has run: the block must not need it before), elsewhere before the block. Should
    that text fail after the row went in, the row stays and is given its id all the same
    (the last its table's sequence gave this session: the first statement must not take
    one from it). A block that sends no statement still inserts it, when it ends."""
    conn = transaction.get_connection()
    if conn.vendor != "postgresql" or not conn.in_atomic_block or conn.needs_rollback:
        if inserted is not None:
            insert_rows([inserted])
        with transaction.atomic():
            yield
        return
    text_ahead = None if inserted is None else _inserted_text(inserted)
    sid = f"s{str(_thread.get_ident()).replace('-', '')}_x{conn.savepoint_state + 1}"
    conn.savepoint_state += 1
    sent = False

    def take_id(cursor) -> None:
        _inserted_ids([inserted], [pk for (pk,) in cursor.fetchall()])

    def insert_alone() -> None:
        if text_ahead is not None:
            with conn.cursor() as cursor:
                cursor.execute(text_ahead)
                take_id(cursor)

    def ahead(execute, sql, params, many, context):
        nonlocal sent
        if sent:
            return execute(sql, params, many, context)
        sent = True
        if many:  # ``executemany`` sends one statement: what goes ahead goes first, alone
            insert_alone()
            conn._savepoint(sid)
            return execute(sql, params, many, context)
        text = sql if params is None else conn.ops.compose_sql(sql, params)
        texts = [text_ahead, conn.ops.savepoint_create_sql(sid), text]
        result = execute("; ".join(t for t in texts if t is not None), None, many, context)
        cursor = context["cursor"]
        if text_ahead is not None:
            take_id(cursor)
            cursor.nextset()
        cursor.nextset()  # the caller reads its own statement's results
        return result

    conn.savepoint_ids.append(sid)  # on-commit callbacks registered now go with it
    try:
        with conn.execute_wrapper(ahead):
            yield
    except BaseException:
        if sent:
            conn.needs_rollback = False
            try:
                conn.savepoint_rollback(sid)
            except DatabaseError:
                conn.needs_rollback = True  # the caller's transaction cannot go on
            else:
                if text_ahead is not None and inserted._state.adding:  # failed after the row
                    _inserted_ids([inserted], [_last_id(inserted)])
        raise
    finally:
        conn.savepoint_ids.pop()
        if not sent:  # no statement was sent: nothing to take back, the row still goes in
            insert_alone()


def _last_id(instance) -> int:
    """PostgreSQL: the id its table's sequence gave last in this session."""
    meta = instance._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT currval(pg_get_serial_sequence(%s, %s))",
            [connection.ops.quote_name(meta.db_table), meta.pk.column],
        )
        return cursor.fetchone()[0]


#: The statements PostgreSQL holds prepared, per connection of the driver (a new connection
#: starts with none): text → its name there.
_SERVER_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_names = itertools.count()


def execute_planned(text: str, ids: Sequence[int], *, by_index: bool = False) -> list[tuple]:
    """The rows of ``text`` with ``ids`` (integers) for its placeholders: on PostgreSQL a
    statement the server parses once per connection (``PREPARE``, its placeholders ``$1`` …
    ``$n``; later calls only ``EXECUTE`` it) and plans for each call's ids, elsewhere as it
    is (each ``$n`` a parameter).

    For a long statement asked often: parsing it cost more than running it (docs/design.md
    §10). It is planned for each call's ids (``plan_cache_mode``, for this statement only):
    a plan made once for any ids, kept by a long-lived connection, was made for the tables
    as they were and can walk a whole table once they have grown.

    ``by_index``: the statement is planned once per connection for any ids (a generic plan)
    with sequential scans disabled while it is planned (``enable_seqscan``, for this
    statement only). Only for a statement written so that every table it reads has one
    index that its conditions can use, and no join whose order or method the planner would
    choose on statistics that lag the tables: then the plan reads each table through that
    index, whatever the tables held when it was made. The in-sync statement is written so,
    and so is the lock of a run's partners (docs/design.md §10).

    The ids are written into the text (only integers), so the driver does not scan it.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            order = [int(n) - 1 for n in _DOLLAR.findall(text)]
            cursor.execute(_DOLLAR.sub("%s", text), [ids[n] for n in order])
            return cursor.fetchall()
    return fetched_together([Planned(text, ids, by_index=by_index)])[0]


class Planned:
    """PostgreSQL: one ``EXECUTE`` of ``execute_planned`` as statements of a text that may
    carry others (``fetched_together``): the ``PREPARE`` the first time on a connection, the
    planner's settings for this statement alone, the ``EXECUTE``, the settings reset.

    Its values are ids (``bigint``) or times with their zone (``timestamptz``), each written
    into the ``EXECUTE``."""

    def __init__(self, text: str, ids: Sequence, *, by_index: bool = False):
        self.text = text
        self.held = _SERVER_PREPARED.setdefault(connection.connection, {})
        # A new name each time: a statement prepared in a text that then failed may exist
        # on the server without being recorded here.
        self.name = self.held.get(text) or f"cds_planned_{next(_names)}"
        self.texts = []
        if text not in self.held:
            types = ", ".join("timestamptz" if isinstance(v, datetime) else "bigint" for v in ids)
            self.texts.append(f"PREPARE {self.name}({types}) AS {text}")
        settings = ["plan_cache_mode = force_custom_plan"]
        if by_index:
            settings = ["plan_cache_mode = force_generic_plan", "enable_seqscan = off"]
        self.texts += [f"SET LOCAL {setting}" for setting in settings]
        #: Where its rows are among the results of its statements.
        self.position = len(self.texts)
        arguments = [_time(v) if isinstance(v, datetime) else str(int(v)) for v in ids]
        self.texts.append(f"EXECUTE {self.name}({', '.join(arguments)})")
        self.texts += [f"RESET {setting.split(' = ')[0]}" for setting in settings]


def _time(value: datetime) -> str:
    """A time with its zone written into a text, in ISO 8601 (as the driver writes it)."""
    if value.tzinfo is None:
        raise ValueError("A time written into a statement must carry its zone.")
    return f"'{value.isoformat(sep=' ')}'::timestamptz"


def expanded(sql: str) -> str:
    """``sql`` with the text of each statement this connection prepared (``Planned``)
    written after its ``EXECUTE``, as a comment: what a text sent to the server does, for
    whoever reads a log of them (a test looking for the table a statement writes)."""
    if connection.vendor != "postgresql" or connection.connection is None:
        return sql
    names = {name: text for text, name in _SERVER_PREPARED.get(connection.connection, {}).items()}
    return _EXECUTE.sub(lambda m: f"{m.group(0)} /* {names.get(m.group(1), '?')} */", sql)


_EXECUTE = re.compile(r"EXECUTE (cds_planned_\d+)\([^)]*\)")
_DOLLAR = re.compile(r"\$(\d+)")

#: PostgreSQL's planner settings under which every join is a hash join, for a statement whose
#: joins meet rows no statistics know yet: estimated at a row or so, they would be joined by
#: a nested loop, quadratic in what they really hold (docs/design.md §10, §12.3).
HASH_JOINS_ONLY = {"enable_nestloop": "off", "enable_mergejoin": "off"}


def insert_rows(objects: list) -> list:
    """``model.objects.bulk_create(objects)`` (all of one model): inserted, each given its
    id, no signal sent. The text is built once per model and number of rows from the model's
    own table and columns, and each value is prepared for the database by its field
    (``pre_save``, then ``get_db_prep_save``), exactly as the ORM's insert prepares it: for
    the small inserts of a hot path (a run's record, a partnership), building and compiling
    the ORM's insert cost more CPU than the statement costs the database (docs/design.md
    §10)."""
    if not objects:
        return objects
    model = type(objects[0])
    if not connection.features.can_return_rows_from_bulk_insert:
        return model._default_manager.bulk_create(objects)
    fields = _inserted_fields(model)
    # As many rows a statement as the database takes parameters (as ``bulk_create``), and at
    # most ROWS_PER_STATEMENT, so that few texts are kept.
    size = max(1, min(ROWS_PER_STATEMENT, connection.ops.bulk_batch_size(fields, objects)))
    for start in range(0, len(objects), size):
        _insert_some(objects[start : start + size], fields)
    return objects


#: The most rows ``insert_rows`` writes with one statement.
ROWS_PER_STATEMENT = 500


def _inserted_fields(model) -> list:
    """The columns ``insert_rows`` writes: every concrete one but the key and generated ones."""
    return [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and not getattr(field, "generated", False)
    ]


def _insert_some(objects: list, fields: list) -> None:
    text, params = _insert_statement(objects, fields)
    with connection.cursor() as cursor:
        cursor.execute(text, params)
        _inserted_ids(objects, [pk for (pk,) in cursor.fetchall()])


def _insert_statement(objects: Sequence, fields: list) -> tuple[str, list]:
    """The statement of ``_insert_some``: its text built once per shape, its values."""
    meta = objects[0]._meta
    shape = (meta.label, connection.alias, len(objects))
    text = _INSERTS.get(shape)
    if text is None:
        if len(_INSERTS) >= 64:
            _INSERTS.clear()
        quote = connection.ops.quote_name
        row = f"({', '.join(['%s'] * len(fields))})"
        text = _INSERTS[shape] = (
            f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608 (identifiers)
            f"({', '.join(quote(field.column) for field in fields)}) "
            f"VALUES {', '.join([row] * len(objects))} "
            f"RETURNING {quote(meta.pk.column)}"
        )
    params = [
        field.get_db_prep_save(field.pre_save(obj, True), connection)
        for obj in objects
        for field in fields
    ]
    return text, params


def _inserted_text(instance) -> str:
    """PostgreSQL: the text of ``insert_rows([instance])``, its values written in."""
    return connection.ops.compose_sql(*_insert_statement([instance], _inserted_fields(instance)))


def _inserted_ids(objects: Sequence, ids: list[int]) -> None:
    """Each object inserted, given its id: PostgreSQL and SQLite return the rows of a
    multi-row ``VALUES`` in its order."""
    for obj, pk in zip(objects, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias


#: The statements of ``insert_rows``, per model, database and number of rows.
_INSERTS: dict[tuple, str] = {}


def padded_ids(ids: Sequence[int]) -> list[int]:
    """``ids`` padded to a power of two (repeating the first), so that few shapes exist."""
    ids = list(ids) or [_MARK]
    size = 1
    while size < len(ids):
        size *= 2
    return ids + [ids[0]] * (size - len(ids))


class Template:
    """Statements built once per shape from marker values; later calls put their own values
    where the markers were, by position among the parameters (docs/design.md §10).

    ``Template(build).statements(shape, *values)`` returns ``build(shape, *values)``'s
    statements, a list of ``(sql, params)`` (on PostgreSQL params None: every value written
    into the text, as ``Prepared.statement`` gives it). ``build`` must depend on ``shape`` and the
    number of ids in each list only, and pass every value (an id, a list of ids or a time)
    to the query as a parameter of its own; a value given as None is not used. Lists are
    padded as ``Prepared`` pads them. The copies of a first link are built so: compiling
    their two ``INSERT … SELECT`` took longer than running them.
    """

    def __init__(self, build: Callable[..., list[tuple[str, Sequence]]]):
        self.build = build
        self._compiled: dict[tuple, list[_Statement]] = {}

    def statements(self, shape: tuple, *values, planned: bool = False) -> list:
        """The statements with these values; with ``planned``, on PostgreSQL and when no
        value is a list, each as a ``Planned`` (for ``fetched_together``): prepared on the
        server once per connection and planned once, for any values, with sequential
        scans off (``execute_planned``'s ``by_index``). Only for statements whose every
        read has one index its conditions can use and no join for the planner to choose:
        parsing and planning a first copy's statement cost the server more than half a
        millisecond a run (docs/design.md §10)."""
        padded = [padded_ids(value) if isinstance(value, list) else value for value in values]
        key = (
            connection.alias,
            shape,
            *(len(value) if isinstance(value, list) else type(value) for value in padded),
        )
        if key not in self._compiled:
            self._compiled[key] = self._compile(shape, padded)
        compiled = self._compiled[key]
        if (
            planned
            and connection.vendor == "postgresql"
            and not any(isinstance(value, list) for value in padded)
        ):
            return [statement.planned(padded) for statement in compiled]
        return [statement.bind(padded) for statement in compiled]

    def _compile(self, shape: tuple, padded: list) -> list[_Statement]:
        markers = [
            [_MARK - which * _LIST_SPACING - index for index in range(len(value))]
            if isinstance(value, list)
            else _time_marker(which)
            if isinstance(value, datetime)
            else None
            if value is None
            else _MARK - which * _LIST_SPACING
            for which, value in enumerate(padded)
        ]
        # Where each marker may appear: as itself, or a time as the backend adapts it.
        forms = []
        for which, marker in enumerate(markers):
            if isinstance(marker, list):
                forms += [(m, which, index, None) for index, m in enumerate(marker)]
            elif marker is None:
                continue
            elif isinstance(marker, datetime):
                adapt = connection.ops.adapt_datetimefield_value
                forms += [(marker, which, None, None), (adapt(marker), which, None, adapt)]
            else:
                forms.append((marker, which, None, None))
        compiled, seen = [], set()
        for sql, params in self.build(shape, *markers):
            slots = {}
            for position, param in enumerate(params):
                for form, which, index, adapt in forms:
                    if _same(param, form):
                        # An id keeps the type the backend gave it (PostgreSQL: ``Int8``).
                        slots[position] = (which, index, adapt or _retyped(param))
                        seen.add((which, index))
            compiled.append(_Statement(sql, list(params), slots))
        expected = {(which, index) for _form, which, index, _adapt in forms}
        if expected - seen:
            raise ValueError("Every value must appear in the statements as a parameter.")
        return compiled


class _Statement:
    """One statement of a ``Template``: its parameters with the slots of the values, or, on
    PostgreSQL, its text with every other parameter written in, cut where the values go (as
    ``_Compiled``): a first copy's text is long, and the driver quoting its thirty-odd
    parameters into it on every run cost a tenth of a link's CPU (docs/design.md §10)."""

    def __init__(self, sql: str, params: list, slots: dict[int, tuple]):
        self.sql, self.params, self.slots = sql, params, slots
        self.pieces: list[str] | None = None
        self.prepared: tuple[str, list[tuple]] | None = None
        if connection.vendor == "postgresql":
            self.pieces, self.order = _cut(sql, params, slots)

    def planned(self, padded: list) -> Planned:
        """PostgreSQL: the statement as a ``Planned``, its values as ``$1`` … (one a value,
        wherever it appears)."""
        if self.prepared is None:
            numbers: dict[tuple, int] = {}
            text = [self.pieces[0]]
            for position, piece in zip(self.order, self.pieces[1:], strict=True):
                which, index, _adapt = self.slots[position]
                text += [f"${numbers.setdefault((which, index), len(numbers) + 1)}", piece]
            self.prepared = "".join(text), list(numbers)
        text, numbered = self.prepared
        values = [
            padded[which] if index is None else padded[which][index] for which, index in numbered
        ]
        return Planned(text, values, by_index=True)

    def bind(self, padded: list) -> tuple[str, list | None]:
        values = {}
        for position, (which, index, adapt) in self.slots.items():
            value = padded[which] if index is None else padded[which][index]
            values[position] = adapt(value) if adapt else value
        if self.pieces is None:
            params = list(self.params)
            for position, value in values.items():
                params[position] = value
            return self.sql, params
        text = [self.pieces[0]]
        for position, piece in zip(self.order, self.pieces[1:], strict=True):
            text += [_literal(values[position]), piece]
        return "".join(text), None


def _literal(value) -> str:
    """PostgreSQL: ``value`` written into a text: an id as ``Prepared`` writes its ids, a
    time with its zone in ISO 8601 (as the driver writes it, without asking the driver for
    a cursor of its own each time), anything else by the driver."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"({int(value)})"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _time(value)
    return connection.ops.compose_sql("%s", [value])


def _same(param, form) -> bool:
    if isinstance(form, int):
        return isinstance(param, int) and not isinstance(param, bool) and param == form
    return type(param) is type(form) and param == form


def _retyped(param):
    """How a value is given the type of the parameter it replaces (None: as it is)."""
    kind = type(param)
    return None if kind is int or not isinstance(param, int) else kind


def _time_marker(which: int) -> datetime:
    """A time no run writes: the marker of the ``which``-th value."""
    return datetime(1971, 1, 1, tzinfo=UTC) + timedelta(microseconds=which + 1)
