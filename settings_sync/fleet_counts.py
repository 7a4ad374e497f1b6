"""The fleet preview's counts of collection items, set-based: per batch of partners and per
category, one aggregate query gives what the engine's item rules would do to every partner
(docs/design.md §5, §12.3), without loading an item.

The engine's rules (:mod:`.engine.item_rules`) stay the definition: each count here is one of
their branches written as a SQL condition, and a property test holds the two equal. Two
situations are left to the engine, partner by partner: renames that chain (a copy whose
upstream item was renamed to a name another copy is leaving, or that a new item takes), and
two live copies of one upstream item. The query says which partners have them.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction

from . import registry
from .engine.plan import ADOPTED, ARCHIVED, CREATED, DETACHED, RESTORED, UPDATED
from .items import baseline_name

#: The columns a row of counts holds, in order (after the partnership's pk).
COUNTED = (CREATED, UPDATED, ADOPTED, RESTORED, ARCHIVED, DETACHED, "overwritten", "fallback")


@dataclass(frozen=True)
class Planned:
    """One partner's collection category, as the fleet preview plans it: its outcome (merge or
    match), and how copies of it are locked (``locks.lock_through``)."""

    partnership_id: int
    downstream_id: int
    upstream_id: int
    match: bool
    keeps_lock: bool
    locks: bool


def counts(category: registry.Category, planned: list[Planned]) -> dict[int, Counter]:
    """Partnership pk → action → count for a merge or match of ``category``, one query for the
    whole batch. ``fallback`` (1) marks a partner the engine must plan itself."""
    if not planned:
        return {}
    sql, params = _query(category, planned)
    result: dict[int, Counter] = {p.partnership_id: Counter() for p in planned}
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        _hash_joins(cursor, category, planned),
    ):
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for pk, *numbers in rows:
        result[pk].update({name: int(n or 0) for name, n in zip(COUNTED, numbers, strict=True)})
    return result


#: Below this many partner rows in a batch, PostgreSQL's own choice of joins is kept: nested
#: loops over a few rows are cheap, and with them forbidden the planner of a small query took
#: seconds.
HASH_JOINS_FROM = 5_000


@contextmanager
def _hash_joins(cursor, category: registry.Category, planned: list[Planned]):
    """On PostgreSQL, the query without nested loops: the planner cannot estimate how many
    rows the classifications keep (it guesses one), and a nested loop over tens of thousands
    of rows each side is quadratic. Every join here is an equality a hash join answers in one
    pass. The setting lasts for this query only (its transaction's, restored after it)."""
    if connection.vendor != "postgresql" or _rows(category, planned) < HASH_JOINS_FROM:
        yield
        return
    cursor.execute(
        "SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)"
    )
    before = cursor.fetchone()[0]
    try:
        yield
    finally:
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [before])


def _rows(category: registry.Category, planned: list[Planned]) -> int:
    """How many items the batch's partners hold in ``category`` (an index-only count)."""
    model = category.model
    manager = getattr(model, "all_objects", model._default_manager)
    return manager.filter(organization_id__in={p.downstream_id for p in planned}).count()


def _same(left: str, right: str, columns: list[tuple[str, str]]) -> str:
    """SQL: every synced value of ``left`` equals the one of ``right`` (NULL equal to NULL),
    as Python compares them in the rules."""
    return (
        "("
        + " AND ".join(
            f"({left}.{a} = {right}.{b} OR ({left}.{a} IS NULL AND {right}.{b} IS NULL))"
            for a, b in columns
        )
        + ")"
    )


def _query(category: registry.Category, planned: list[Planned]) -> tuple[str, list]:
    """The counting query. Every partner's items are read once (``d``: each with its upstream
    item and what the rules need of it); the channel manager's items are only looked up by
    key, and counted: an upstream item that no rule concerns is created."""
    model = category.model
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    values = [q(model._meta.get_field(name).column) for name in category.synced_fields]
    baselines = [
        q(model._meta.get_field(baseline_name(name)).column) for name in category.synced_fields
    ]

    def same(left: str, right: str, right_columns=None) -> str:
        return _same(left, right, list(zip(values, right_columns or values, strict=True)))

    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(planned))
    params: list = []
    for p in planned:
        params += [
            p.partnership_id,
            p.downstream_id,
            p.upstream_id,
            int(p.match),
            int(p.keeps_lock),
            int(p.locks),
        ]
    # who locks a copy of upstream item ``t`` (locks.lock_through, item_rules._manager_of)
    manager = (
        "COALESCE(CASE WHEN pp.keeps = 1 THEN {t}.managed_by_id END, "
        "CASE WHEN pp.locks = 1 THEN pp.uid END)"
    )
    origin = "COALESCE({t}.synced_origin_id, {t}.organization_id)"
    # a live copy whose value the partner's edit keeps (merge, unlocked): it keeps its name
    stays = (
        "(CASE WHEN diverged = 1 AND is_match = 0 AND src_locked = 0 AND same_src = 0 "
        "THEN 1 ELSE 0 END)"
    )
    upstream_by_key = "up t ON t.organization_id = {src}.uid AND t.normalised_key = {src}.nkey"
    downstream_ids = sorted({p.downstream_id for p in planned})
    upstream_ids = sorted({p.upstream_id for p in planned})
    params += [*upstream_ids, *downstream_ids]  # in the order the query lists them
    listed = lambda ids: ", ".join(["%s"] * len(ids))  # noqa: E731
    sql = f"""
WITH pp (pid, did, uid, is_match, keeps, locks) AS (VALUES {rows}),
up AS (
  SELECT * FROM {table}
  WHERE organization_id IN ({listed(upstream_ids)}) AND archived_at IS NULL
),
d AS (
  SELECT pp.pid, pp.uid, pp.is_match, x.id, x.normalised_key AS nkey,
    x.synced_partnership_id AS sp, x.synced_from_id AS sf, x.archived_at AS at,
    CASE WHEN x.archived_by_sync THEN 1 ELSE 0 END AS abs, x.synced_origin_id AS origin,
    CASE WHEN x.synced_partnership_id = pp.pid THEN 1 ELSE 0 END AS ours,
    CASE WHEN s.id IS NULL THEN 0 ELSE 1 END AS src_live,
    CASE WHEN {_same("x", "x", list(zip(values, baselines, strict=True)))}
      THEN 0 ELSE 1 END AS diverged,
    s.normalised_key AS src_key,
    CASE WHEN s.id IS NOT NULL AND {same("x", "s")} THEN 1 ELSE 0 END AS same_src,
    CASE WHEN {manager.format(t="s")} IS NULL THEN 0 ELSE 1 END AS src_locked,
    CASE WHEN (x.managed_by_id = {manager.format(t="s")}
               OR (x.managed_by_id IS NULL AND {manager.format(t="s")} IS NULL))
      AND x.synced_origin_id = {origin.format(t="s")} THEN 0 ELSE 1 END AS restamped,
    k.id AS key_src,
    CASE WHEN k.id IS NOT NULL AND {same("x", "k")} THEN 1 ELSE 0 END AS same_by_key
  FROM {table} x JOIN pp ON x.organization_id = pp.did
  LEFT JOIN up s ON s.id = x.synced_from_id AND s.organization_id = pp.uid
  LEFT JOIN up k ON k.organization_id = pp.uid AND k.normalised_key = x.normalised_key
  WHERE x.organization_id IN ({listed(downstream_ids)})
),
live AS (
  SELECT pid, id, sf, nkey, key_src, {stays} AS stays
  FROM d WHERE ours = 1 AND src_live = 1 AND at IS NULL
),
h AS (
  SELECT d.pid, d.id, d.nkey, d.key_src, d.same_by_key,
    CASE WHEN d.ours = 1 THEN NULL ELSE d.sp END AS sp,
    CASE WHEN d.ours = 1 THEN NULL ELSE d.sf END AS sf
  FROM d
  LEFT JOIN live w ON w.pid = d.pid AND w.sf = d.key_src
  WHERE d.at IS NULL AND (
    (d.ours = 0 AND (d.is_match = 0 OR (d.sp IS NULL AND d.key_src IS NOT NULL AND w.id IS NULL)))
    OR (d.is_match = 0 AND d.ours = 1 AND d.src_live = 0 AND d.diverged = 1))
),
st AS (
  SELECT pid, nkey, sf FROM h
  UNION ALL SELECT pid, nkey, sf FROM live WHERE stays = 1
),
dl AS (
  SELECT DISTINCT pid, uid, nkey, origin FROM d
  WHERE is_match = 0 AND ours = 0 AND at IS NOT NULL AND sp IS NOT NULL AND abs = 0
),
ac AS (
  SELECT pid, sf, MAX(at) AS latest FROM d
  WHERE ours = 1 AND src_live = 1 AND at IS NOT NULL GROUP BY pid, sf
),
acl AS (
  SELECT ac.pid, ac.sf, MAX(d.abs) AS abs_max, MIN(d.abs) AS abs_min
  FROM ac JOIN d ON d.pid = ac.pid AND d.sf = ac.sf AND d.at = ac.latest AND d.ours = 1
  GROUP BY ac.pid, ac.sf
),
cand AS (
  SELECT pid, key_src AS id FROM live WHERE stays = 1 AND key_src IS NOT NULL
  UNION SELECT pid, key_src FROM h WHERE key_src IS NOT NULL
  UNION SELECT pid, sf FROM acl
  UNION SELECT dl.pid, t.id FROM dl JOIN {upstream_by_key.format(src="dl")}
    AND {origin.format(t="t")} = dl.origin
),
copied AS (
  SELECT c.pid, c.same_src, c.diverged, c.restamped, c.is_match, c.src_locked,
    CASE WHEN {stays} = 0 AND c.nkey <> c.src_key
      AND b.pid IS NOT NULL THEN 1 ELSE 0 END AS conflict,
    CASE WHEN {stays} = 0 AND c.nkey <> c.src_key
      AND c.key_src IS NOT NULL THEN 1 ELSE 0 END AS chained
  FROM d c
  LEFT JOIN st b ON b.pid = c.pid AND b.nkey = c.src_key
  WHERE c.ours = 1 AND c.src_live = 1 AND c.at IS NULL
),
special AS (
  SELECT pp.pid, pp.is_match, {manager.format(t="t")} AS manager,
    CASE WHEN k.id IS NOT NULL AND h.id IS NULL THEN 1 ELSE 0 END AS conflict,
    h.id AS h_id, h.sp AS h_sp,
    h.same_by_key AS h_same,
    acl.abs_max, acl.abs_min,
    CASE WHEN dl.pid IS NULL THEN 0 ELSE 1 END AS declined
  FROM cand JOIN pp ON pp.pid = cand.pid
  JOIN up t ON t.id = cand.id
  LEFT JOIN live c ON c.pid = cand.pid AND c.sf = cand.id
  LEFT JOIN live k ON k.pid = cand.pid AND k.nkey = t.normalised_key AND k.stays = 1
  LEFT JOIN h ON h.pid = cand.pid AND h.nkey = t.normalised_key
  LEFT JOIN acl ON acl.pid = cand.pid AND acl.sf = cand.id
  LEFT JOIN dl ON dl.pid = cand.pid AND dl.nkey = t.normalised_key
    AND dl.origin = {origin.format(t="t")}
  WHERE c.id IS NULL
),
upstream AS (SELECT organization_id AS uid, COUNT(*) AS n FROM up GROUP BY organization_id)
SELECT pid, SUM(created), SUM(updated), SUM(adopted), SUM(restored), SUM(archived),
  SUM(detached), SUM(overwritten), MAX(fallback)
FROM (
  SELECT pp.pid, COALESCE(upstream.n, 0) AS created, 0 AS updated, 0 AS adopted,
    0 AS restored, 0 AS archived, 0 AS detached, 0 AS overwritten, 0 AS fallback
  FROM pp LEFT JOIN upstream ON upstream.uid = pp.uid
  UNION ALL
  SELECT pid, -1,
    CASE WHEN conflict = 0 AND (
      (same_src = 1 AND restamped = 1)
      OR (same_src = 0 AND NOT (diverged = 1 AND is_match = 0 AND src_locked = 0)))
      THEN 1 ELSE 0 END,
    0, 0, 0, 0,
    CASE WHEN conflict = 0 AND same_src = 0 AND diverged = 1
      AND (is_match = 1 OR src_locked = 1) THEN 1 ELSE 0 END,
    chained
  FROM copied
  UNION ALL
  SELECT pid,
    CASE WHEN conflict = 0 AND h_id IS NULL AND abs_max IS NULL
      AND NOT (is_match = 0 AND declined = 1) THEN 0 ELSE -1 END,
    0,
    CASE WHEN conflict = 0 AND h_id IS NOT NULL AND h_sp IS NULL THEN 1 ELSE 0 END,
    CASE WHEN conflict = 0 AND h_id IS NULL AND abs_max IS NOT NULL
      AND (abs_max = 1 OR is_match = 1) THEN 1 ELSE 0 END,
    0, 0,
    CASE WHEN conflict = 0 AND h_id IS NOT NULL AND h_sp IS NULL
      AND (is_match = 1 OR manager IS NOT NULL) AND h_same = 0 THEN 1 ELSE 0 END,
    CASE WHEN abs_max <> abs_min THEN 1 ELSE 0 END
  FROM special
  UNION ALL
  SELECT d.pid, 0, 0, 0, 0,
    CASE WHEN d.ours = 1 AND d.src_live = 0 AND d.at IS NULL
      AND NOT (d.is_match = 0 AND d.diverged = 1) THEN 1
      WHEN d.ours = 0 AND d.at IS NULL AND d.is_match = 1 AND k.id IS NULL THEN 1
      ELSE 0 END,
    CASE WHEN d.ours = 1 AND d.src_live = 0 AND d.at IS NULL AND d.is_match = 0
      AND d.diverged = 1 THEN 1 ELSE 0 END,
    0, 0
  FROM d LEFT JOIN h k ON k.pid = d.pid AND k.id = d.id
  UNION ALL
  SELECT pid, 0, 0, 0, 0, 0, 0, 0, 1 FROM live GROUP BY pid, sf HAVING COUNT(*) > 1
) counted
GROUP BY pid
"""  # noqa: S608 (our identifiers; the ids are parameters)
    return sql, params
