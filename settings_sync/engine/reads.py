"""What planning reads, read once for every partner planned together.

One run reads each category with two queries (the channel manager's items, the partner's
items); a batch of runs from one fan-out reads the same two queries for all its partners
(docs/design.md §10).
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.utils import timezone

from organizations.natural_keys import normalise_key
from organizations.prepared import execute_planned
from partnerships.models import Partnership

from ..items import baseline_name
from ..models import SyncChange


def values_of(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def key_of(obj, natural_key) -> str:
    """The item's natural key, normalised exactly as its unique index stores it."""
    return normalise_key(getattr(obj, name) for name in natural_key)


def label_of(obj) -> str:
    return str(obj)[:300]


def remember(obj):
    """Keep the values an object was loaded with, to write back only what the plan changed."""
    obj._sync_loaded = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    return obj


class Reads:
    """The rows the runs of one batch plan against, each category read once for all of them.

    With ``skip_plain`` (the runs; previews read everything), a collection's read leaves out
    the partners' plain copies: a live copy through the run's partnership that holds its live
    upstream item's values as its values and its baseline, with the lock and origin the rules
    would give it, and no other live copy of that item through the partnership. The rules plan
    nothing for such a pair and nothing else they plan depends on it, so the pair (the copy
    and its upstream item) is left out of that partner's planning (``plain_sources``) instead
    of being loaded and compared in Python (docs/design.md §10).
    """

    def __init__(self, partnerships: list[Partnership], *, skip_plain: bool = False) -> None:
        self.skip_plain = skip_plain
        #: model → partnership pk → the upstream items with a plain copy through it
        self._plain: dict[type, dict[int, set[int]]] = {}
        self.downstream_ids = sorted(
            {p.downstream_id for p in partnerships if p.downstream_id is not None}
        )
        self._partnerships = partnerships
        self._upstream: dict[tuple[type, int], list] = {}
        self._upstream_counts: dict[tuple[type, int], int] = {}
        self._downstream: dict[type, dict[int, list]] = {}
        self._singletons: dict[type, dict[int, Any]] = {}
        self._upstream_names: dict[int, dict[int, str]] | None = None
        self.partnership_ids = sorted({p.pk for p in partnerships if p.pk is not None})
        upstream_ids = {p.upstream_id for p in partnerships if p.upstream_id is not None}
        self._singleton_ids = sorted({*self.downstream_ids, *upstream_ids})
        self._conflicts: dict[str, dict[tuple[int, int], tuple]] = {}
        self.now = timezone.now()  # one clock for the batch: its copies share their values

    def override_values(self, partnership: Partnership) -> dict[str, str]:
        """The partnership's category overrides, read once for the whole batch."""
        from .. import overrides

        if getattr(partnership, "_override_values", None) is None and partnership.pk:
            overrides.prefetch(
                [p for p in self._partnerships if getattr(p, "_override_values", None) is None]
                + [partnership]
            )
        return overrides.overrides_of(partnership)

    def upstream_items(self, model, upstream_id: int) -> list:
        """The channel manager's live items, oldest first (shared, never written)."""
        key = (model, upstream_id)
        if key not in self._upstream:
            self._upstream[key] = list(
                model.objects.filter(organization_id=upstream_id).order_by("pk")
            )
        return self._upstream[key]

    def upstream_count(self, model, upstream_id: int) -> int:
        if (model, upstream_id) in self._upstream:
            return len(self._upstream[model, upstream_id])
        if (model, upstream_id) not in self._upstream_counts:  # once for the batch
            self._upstream_counts[model, upstream_id] = model.objects.filter(
                organization_id=upstream_id
            ).count()
        return self._upstream_counts[model, upstream_id]

    def downstream_items(self, model, downstream_id: int, *, planned: bool = False) -> list:
        """Every item of the partner, archived ones included, as loaded (see ``remember``);
        for a category ``planned`` by merge or match in a run, all but its plain copies."""
        skip = planned and self.skip_plain
        if (model, skip) not in self._downstream:
            self._read_downstream(model, skip)
        return self._downstream[model, skip].get(downstream_id, [])

    def plain_sources(self, model, partnership: Partnership) -> set[int]:
        """The upstream items whose plain copy through ``partnership`` was left out of
        ``downstream_items(…, planned=True)`` (none when the reads skip nothing)."""
        if not self.skip_plain:
            return set()
        if (model, True) not in self._downstream:
            self._read_downstream(model, True)
        return self._plain[model].get(partnership.pk, set())

    def _read_downstream(self, model, skip: bool) -> None:
        by_organization: dict[int, list] = {pk: [] for pk in self.downstream_ids}
        queryset = model.all_objects.filter(organization_id__in=self.downstream_ids)
        plain: dict[int, set[int]] = {}
        astray: set[int] = set()  # partners holding a copy made through another partnership
        downstream = {p.pk: p.downstream_id for p in self._partnerships if p.pk is not None}
        if skip and (condition := self._plain_condition(model)) is not None:
            # Two plain copies of one upstream item cannot both be live: they would share
            # its name, which the partner's unique key forbids.
            for organization_id, partnership_id, source_id in (
                queryset.filter(condition)
                .order_by()
                .values_list("organization_id", "synced_partnership_id", "synced_from_id")
            ):
                if downstream.get(partnership_id) != organization_id:
                    astray.add(organization_id)
                plain.setdefault(partnership_id, set()).add(source_id)
            queryset = queryset.exclude(condition)
        for item in queryset:
            by_organization[item.organization_id].append(remember(item))
        if plain:
            self._keep_whole(model, plain, astray, downstream, by_organization)
        self._plain[model] = plain
        self._downstream[model, skip] = by_organization

    def _keep_whole(
        self,
        model,
        plain: dict[int, set[int]],
        astray: set[int],
        downstream: dict[int, int],
        by_organization: dict,
    ) -> None:
        """Partners for which leaving the plain copies out would change the plan get every
        item read after all: another live copy of the same upstream item is theirs too (the
        rules archive one of them), or they hold a copy made through another partnership of
        the batch (``astray``; the sync never makes one, but the rows are not constrained).
        ``downstream``: partnership → partner."""
        organizations = set(astray)
        for partnership_id, sources in plain.items():
            if any(
                item.archived_at is None
                and item.synced_partnership_id == partnership_id
                and item.synced_from_id in sources
                for item in by_organization.get(downstream.get(partnership_id), [])
            ):
                organizations.add(downstream[partnership_id])
        if not organizations:
            return
        for organization in organizations:
            by_organization[organization] = []
        for item in model.all_objects.filter(organization_id__in=sorted(organizations)):
            by_organization[item.organization_id].append(remember(item))
        for partnership_id in list(plain):
            if downstream.get(partnership_id) in organizations:
                del plain[partnership_id]

    def _plain_condition(self, model) -> RawSQL | None:
        """True for a plain copy (see the class) through one of the batch's partnerships;
        the partnerships grouped by channel manager and by how their copies are locked."""
        from .. import locks, registry

        category = registry.for_model(model)
        groups: dict[tuple[int, bool, bool], list[tuple[int, int]]] = {}
        for partnership in self._partnerships:
            if partnership.pk is None or partnership.downstream_id is None:
                continue
            self.override_values(partnership)  # the lock follows the category's mode
            shape = (partnership.upstream_id, *locks.lock_through(partnership, category.key))
            groups.setdefault(shape, []).append((partnership.downstream_id, partnership.pk))
        if not groups:
            return None
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        archived = quote(model._meta.get_field("archived_at").column)
        source = quote(model._meta.get_field("synced_from").column)
        through = quote(model._meta.get_field("synced_partnership").column)
        alternatives, params = [], []
        for (upstream, keeps, locks_itself), pairs in groups.items():
            conditions = copy_matches_source(category, keeps, locks_itself, copy=table)
            # By partnership alone (a list PostgreSQL matches by hash, not row by row): a copy
            # in another partner than its partnership's is found by the caller (``astray``).
            alternatives.append(
                f"({table}.{through} IN ({', '.join(['%s'] * len(pairs))}) "
                f"AND s.organization_id = %s AND {' AND '.join(conditions)})"
            )
            params += [pk for _downstream, pk in pairs]
            params.append(upstream)
            if keeps and locks_itself:
                params.append(upstream)
        sql = (
            f"{table}.{archived} IS NULL AND EXISTS (SELECT 1 FROM {table} s "  # noqa: S608
            f"WHERE s.{quote(model._meta.pk.column)} = {table}.{source} "
            f"AND s.{archived} IS NULL AND ({' OR '.join(alternatives)}))"
        )
        # Identifiers come from the models; every value is a parameter.
        return RawSQL(sql, params, output_field=models.BooleanField())  # noqa: S611

    def singleton(self, model, organization_id: int):
        """The organization's row of a singleton category (None if it has none yet)."""
        if model not in self._singletons:  # the partners' rows and their channel managers'
            self._singletons[model] = {
                row.organization_id: row
                for row in model.objects.filter(organization_id__in=self._singleton_ids)
            }
        rows = self._singletons[model]
        if organization_id not in rows and organization_id not in self._singleton_ids:
            rows[organization_id] = model.objects.filter(organization_id=organization_id).first()
        return rows.get(organization_id)

    def reported_conflict(self, key: str, partnership_id: int, upstream_item_id: int):
        """(before, after) of the latest conflict recorded for this upstream item in this
        partnership, or None; one query per category for the whole batch, when asked."""
        if key not in self._conflicts:
            latest = {}
            for partnership, item, before, after in (
                SyncChange.objects.filter(
                    run__partnership_id__in=self.partnership_ids,
                    category=key,
                    action=SyncChange.Action.CONFLICT,
                )
                .order_by("pk")
                .values_list("run__partnership_id", "upstream_item_id", "before", "after")
            ):
                latest[partnership, item] = (before, after)
            self._conflicts[key] = latest
        return self._conflicts[key].get((partnership_id, upstream_item_id))

    def upstream_name(self, downstream_id: int, partnership_id: int) -> str:
        """The channel manager behind another partnership of the partner (conflict notes)."""
        if self._upstream_names is None:
            self._upstream_names = {}
            for downstream, pk, name in Partnership.objects.filter(
                downstream_id__in=self.downstream_ids
            ).values_list("downstream_id", "pk", "upstream__name"):
                self._upstream_names.setdefault(downstream, {})[pk] = name
        names = self._upstream_names.get(downstream_id, {})
        return names.get(partnership_id, "another channel manager")


#: The statement of ``in_sync`` per shape (categories, how each is locked, match or merge),
#: built once per process; its placeholders are ``$1`` (the channel manager), ``$2`` (the
#: partner) and ``$3`` (the partnership): only they change between runs.
_IN_SYNC_SQL: dict[tuple, str] = {}


def in_sync(
    partnership: Partnership, checks: list[tuple[Any, bool, bool, bool]]
) -> tuple[set[str], dict[str, int]]:
    """Where a run of ``partnership`` needs no item-by-item planning, decided in the database
    by one statement for all the categories it syncs (a ``UNION ALL``): (the keys of the
    categories already in sync, key → the number of upstream items for the collections in
    which the partner has nothing at all, archived items included: a first copy).

    A singleton is in sync when the partner's row was last written through this partnership
    and holds the channel manager's values (its rule then writes nothing).

    ``checks`` holds, per category, (the category, it keeps its source's lock, it locks
    itself, match). A category is in sync exactly when every live upstream item has one live
    copy through this partnership holding the upstream item's values as its values and its
    baseline, and the lock and origin the rules would give it; no other live copy is ours;
    and, for match, the partner has no other live item. Those are the cases in which the rules
    of §5.3 to §5.5 plan no change at all, or one ``INSERT … SELECT`` (docs/design.md §10);
    every other category is read and planned item by item.

    On PostgreSQL the server parses and plans the statement once per connection and shape
    (``execute_planned``, ``by_index``): parsing and planning it took longer than answering
    it. It is written so that that plan reads every table through the index on its ids,
    whatever the tables held when it was made (docs/design.md §10).
    """
    if not checks:
        return set(), {}
    shape = (
        connection.vendor,
        *((category.key, keeps, locks, match) for category, keeps, locks, match in checks),
    )
    text = _IN_SYNC_SQL.get(shape)
    if text is None:
        text = _IN_SYNC_SQL[shape] = _numbered(
            " UNION ALL ".join(
                _singleton_select(n, category)
                if category.is_singleton
                else _in_sync_select(n, category, keeps, locks)
                for n, (category, keeps, locks, _match) in enumerate(checks)
            ),
            checks,
        )
    rows = execute_planned(
        text, [partnership.upstream_id, partnership.downstream_id, partnership.pk], by_index=True
    )
    quiet, empty = set(), {}
    for n, upstream_count, held, ours, others, good in rows:
        category, _keeps, _locks, match = checks[n]
        if not held:
            empty[category.key] = upstream_count
        elif upstream_count == ours == good and not (match and others):
            quiet.add(category.key)
    return quiet, empty


def _numbered(sql: str, checks: list[tuple[Any, bool, bool, bool]]) -> str:
    """``sql`` with each ``%s`` placeholder numbered for what it stands for: ``$1`` the
    channel manager, ``$2`` the partner, ``$3`` the partnership."""
    upstream, downstream, partnership = "$1", "$2", "$3"
    order = []
    for category, keeps, locks, _match in checks:
        if category.is_singleton:
            order += [upstream, downstream, partnership]
            continue
        order += [upstream, downstream, downstream, partnership, downstream, partnership]
        order += [downstream, partnership, upstream]
        if keeps and locks:
            order.append(upstream)
        order += [upstream, downstream]
    pieces = sql.split("%s")
    text = [pieces[0]]
    for number, piece in zip(order, pieces[1:], strict=True):
        text += [number, piece]
    return "".join(text)


def _singleton_select(n: int, category) -> str:
    """A singleton's row of ``in_sync``: in sync when the partner's row was last written
    through this partnership and holds the channel manager's values."""
    model = category.model
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    partnership = quote(model._meta.get_field("synced_partnership").column)
    same = " AND ".join(
        f"(d.{column} = u.{column} OR (d.{column} IS NULL AND u.{column} IS NULL))"
        for column in (quote(model._meta.get_field(name).column) for name in category.synced_fields)
    )
    return (
        f"SELECT {n}, 1, 1, 1, 0, COUNT(*) FROM {table} d "  # noqa: S608
        f"JOIN {table} u ON u.organization_id = %s "
        f"WHERE d.organization_id = %s AND d.{partnership} = %s AND {same}"
    )


def copy_matches_source(category, keeps: bool, locks: bool, *, copy: str) -> list[str]:
    """The conditions under which the copy ``copy`` (a table or its alias) is what the rules
    would make of its source ``s``: the source's values as its values and its baseline, the
    lock and the origin they would give it. A lock of its own (``keeps`` and ``locks``) is
    the one parameter ("%s", the channel manager)."""
    model = category.model
    quote = connection.ops.quote_name

    def column(alias: str, name: str) -> str:
        return f"{alias}.{quote(model._meta.get_field(name).column)}"

    def same(left: str, right: str) -> str:
        return f"({left} = {right} OR ({left} IS NULL AND {right} IS NULL))"

    conditions = []
    for name in category.synced_fields:
        conditions.append(same(column(copy, name), column("s", name)))
        conditions.append(same(column(copy, baseline_name(name)), column("s", name)))
    managed_by, source_managed_by = column(copy, "managed_by"), column("s", "managed_by")
    if keeps and locks:
        conditions.append(f"{managed_by} = COALESCE({source_managed_by}, %s)")
    elif keeps:
        conditions.append(same(managed_by, source_managed_by))
    elif locks:  # never so today: a partnership that locks also keeps the source's lock
        raise ValueError("A partnership that locks its copies keeps their sources' locks.")
    else:
        conditions.append(f"{managed_by} IS NULL")
    conditions.append(
        f"{column(copy, 'synced_origin')} = "
        f"COALESCE({column('s', 'synced_origin')}, {column('s', 'organization')})"
    )
    return conditions


def _in_sync_select(n: int, category, keeps: bool, locks: bool) -> str:
    """One category's row of ``in_sync``: (n, live upstream items, the partner's items
    archived ones included, its live copies through the partnership, its other live items,
    the upstream items with one such copy in sync)."""
    model = category.model
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)

    def column(alias: str, name: str) -> str:
        return f"{alias}.{quote(model._meta.get_field(name).column)}"

    conditions = copy_matches_source(category, keeps, locks, copy="x")
    organization = "organization_id"
    archived = quote(model._meta.get_field("archived_at").column)
    partnership = quote(model._meta.get_field("synced_partnership").column)
    pk = quote(model._meta.pk.column)
    live = f"x.{archived} IS NULL"
    ours = f"x.{organization} = %s AND {live} AND x.{partnership} = %s"
    source = column("x", "synced_from")
    # One pass over the items of both organizations; each of our live copies looks up its
    # upstream item by primary key. Not a join: the planner would estimate a merge join
    # over the primary key from statistics that cannot know the newest items (a new
    # channel manager's ids lie past their histogram), and walk the whole table to reach
    # them (docs/design.md §10). The statement is planned once per connection, whatever
    # the tables held then (``execute_planned(by_index=True)``): so the primary key is the
    # only index the lookup's conditions can use (the others are one condition, ``IS
    # TRUE``, which no index serves; in a WHERE it is the same as the conditions), and the
    # scan's only usable index is the one on the organization. Identifiers come from the
    # models; every value is a parameter.
    return (
        f"SELECT {n}, "  # noqa: S608
        f"COUNT(CASE WHEN x.{organization} = %s AND {live} THEN 1 END), "
        f"COUNT(CASE WHEN x.{organization} = %s THEN 1 END), "
        f"COUNT(CASE WHEN {ours} THEN 1 END), "
        f"COUNT(CASE WHEN x.{organization} = %s AND {live} "
        f"AND (x.{partnership} IS NULL OR x.{partnership} <> %s) THEN 1 END), "
        f"COUNT(DISTINCT CASE WHEN {ours} AND EXISTS (SELECT 1 FROM {table} s "
        f"WHERE s.{pk} = {source} AND (s.{organization} = %s AND s.{archived} IS NULL "
        f"AND {' AND '.join(conditions)}) IS TRUE) THEN {source} END) "
        f"FROM {table} x WHERE x.{organization} IN (%s, %s)"
    )


class RunContext:
    """One partnership's event as the rules see it: who copies into whom, in which mode."""

    def __init__(
        self, partnership: Partnership, event: str, mode: str, *, by=None, reads=None
    ) -> None:
        self.partnership = partnership
        self.upstream = partnership.upstream
        self.downstream = partnership.downstream
        self.event = event
        self.mode = mode
        self.by = by
        self.reads = reads or Reads([partnership])
        self.now = self.reads.now
        # An unsaved partnership (a preview of one not created yet) has no copies.
        self.partnership_pk = partnership.pk

    @property
    def downstream_exists(self) -> bool:
        return self.downstream is not None and self.downstream.pk is not None

    def is_ours(self, item) -> bool:
        """The item was copied (or last overwritten) through this partnership."""
        return self.partnership_pk is not None and item.synced_partnership_id == self.partnership_pk
