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

from organizations.prepared import HASH_JOINS_ONLY

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
    sql = _query(category, planned)
    result: dict[int, Counter] = {p.partnership_id: Counter() for p in planned}
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        _planner_settings(cursor),
    ):
        cursor.execute(sql)
        rows = cursor.fetchall()
    for pk, *numbers in rows:
        result[pk].update({name: int(n or 0) for name, n in zip(COUNTED, numbers, strict=True)})
    return result


#: The planner settings the query runs with on PostgreSQL. No nested loops: the planner
#: cannot estimate how many rows the classifications keep (it guesses one), and a nested loop
#: over tens of thousands of rows each side is quadratic; every join here is an equality a
#: hash join answers in one pass, and the lookups by name are subqueries an index answers. No
#: merge joins: with the partners' items inlined, the planner joined them to their upstream
#: items along the table's whole primary key (docs/design.md §12.3, P1b). (JIT is off for
#: every connection, docs/design.md §10.)
PLANNER_SETTINGS = HASH_JOINS_ONLY


@contextmanager
def _planner_settings(cursor):
    """On PostgreSQL, ``PLANNER_SETTINGS`` for this query only: set for its transaction, and
    restored after it (the transaction may be a caller's, the query's own a savepoint)."""
    if connection.vendor != "postgresql":
        yield
        return
    names = list(PLANNER_SETTINGS)
    cursor.execute(
        "SELECT " + ", ".join("current_setting(%s), set_config(%s, %s, true)" for _ in names),
        [value for name in names for value in (name, name, PLANNER_SETTINGS[name])],
    )
    before = cursor.fetchone()[::2]
    try:
        yield
    finally:
        cursor.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
            [value for name, old in zip(names, before, strict=True) for value in (name, old)],
        )


def _equal(left: str, right: str) -> str:
    """SQL: ``left`` equals ``right``, NULL equal to NULL (as in Python), in one comparison."""
    return f"{left} {'IS NOT DISTINCT FROM' if connection.vendor == 'postgresql' else 'IS'} {right}"


def _same(left: str, right: str, columns: list[tuple[str, str]]) -> str:
    """SQL: every synced value of ``left`` equals the one of ``right``, as Python compares them
    in the rules."""
    return "(" + " AND ".join(_equal(f"{left}.{a}", f"{right}.{b}") for a, b in columns) + ")"


def _query(category: registry.Category, planned: list[Planned]) -> str:
    """The counting query (docs/design.md §12.3).

    Every partner item is taken with its upstream item (``d``, inlined where used, never
    materialised: P1b) and passed over in full only for what concerns every item: refreshing
    a live copy (M2, M3, X1). The other rules concern the few items that are not plain live
    copies (``r``: own items, copies from elsewhere, archived copies, orphans, copies kept as
    edited or to be renamed), picked out by a second pass, and run over those. The channel
    manager's items are only looked up (by id, by name) and counted: an upstream item that no
    rule concerns is created (M1, X4).
    """
    model = category.model
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    values = [q(model._meta.get_field(name).column) for name in category.synced_fields]
    baselines = [
        q(model._meta.get_field(baseline_name(name)).column) for name in category.synced_fields
    ]

    def same(left: str, right: str, right_columns=None) -> str:
        return _same(left, right, list(zip(values, right_columns or values, strict=True)))

    # Every value is an integer, written into the text: the driver would otherwise scan a
    # text this long for its placeholders (docs/design.md §10).
    rows = ", ".join(
        "({}, {}, {}, {}, {}, {})".format(
            *map(
                int,
                (p.partnership_id, p.downstream_id, p.upstream_id, p.match, p.keeps_lock, p.locks),
            )
        )
        for p in planned
    )
    # who locks a copy of upstream item ``t`` (locks.lock_through, item_rules._manager_of)
    manager = (
        "COALESCE(CASE WHEN pp.keeps = 1 THEN {t}.managed_by_id END, "
        "CASE WHEN pp.locks = 1 THEN pp.uid END)"
    )
    origin = "COALESCE({t}.synced_origin_id, {t}.organization_id)"
    # one of the rules' live copies: copied through this partnership, of a live upstream item,
    # not archived (item_rules: live_copies)
    live = (
        "(x.synced_partnership_id IS NOT NULL AND x.synced_partnership_id = pp.pid "
        "AND s.id IS NOT NULL AND x.archived_at IS NULL)"
    )
    # a live copy merge keeps as edited, under its name: diverged, unlocked, its values not
    # the upstream item's (M3; a name that stays, §5.5)
    stays = "(live = 1 AND is_match = 0 AND src_locked = 0 AND diverged = 1 AND same_src = 0)"
    # the channel manager's live item of the partner item's name, by its unique index (§3.3)
    by_key = "up k WHERE k.organization_id = pp.uid AND k.normalised_key = x.normalised_key"
    upstream_by_key = "up t ON t.organization_id = {src}.uid AND t.normalised_key = {src}.nkey"
    # a live copy is updated (M2, M3, §14.3) and overwrites a local edit, if no conflict
    refreshed = (
        "((same_src = 1 AND restamped = 1) "
        "OR (same_src = 0 AND NOT (diverged = 1 AND is_match = 0 AND src_locked = 0)))"
    )
    overwrites = "(same_src = 0 AND diverged = 1 AND (is_match = 1 OR src_locked = 1))"
    # the same for a plain live copy, which does not stay: 0 unchanged, 1 updated, 2 updated
    # overwriting a local edit. Its values are compared with its upstream item's once, and
    # with its baseline only when they differ (the comparisons are most of the query's work)
    plain_refresh = "CASE WHEN same_src = 1 THEN restamped WHEN diverged = 1 THEN 2 ELSE 1 END"
    downstream_ids = sorted({int(p.downstream_id) for p in planned})
    upstream_ids = sorted({int(p.upstream_id) for p in planned})
    listed = lambda ids: ", ".join(map(str, ids))  # noqa: E731
    inlined = "NOT MATERIALIZED " if connection.vendor == "postgresql" else ""
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    sql = f"""
WITH pp (pid, did, uid, is_match, keeps, locks) AS (VALUES {rows}),
up AS {inlined}(
  -- inlined where used on PostgreSQL: its planner then knows the table's statistics
  SELECT * FROM {table}
  WHERE organization_id IN ({listed(upstream_ids)}) AND archived_at IS NULL
),
d AS {inlined}(
  -- every partner item with its upstream item and what the rules ask of the two; read by r
  -- and by the count of plain copies, each computing only what it uses (never materialised)
  SELECT pp.pid, pp.uid, pp.is_match, x.id, x.normalised_key AS nkey,
    x.synced_partnership_id AS sp, x.synced_from_id AS sf, x.archived_at AS at,
    CASE WHEN x.archived_by_sync THEN 1 ELSE 0 END AS abs, x.synced_origin_id AS origin,
    CASE WHEN x.synced_partnership_id = pp.pid THEN 1 ELSE 0 END AS ours,
    CASE WHEN s.id IS NULL THEN 0 ELSE 1 END AS src_live,
    CASE WHEN {live} THEN 1 ELSE 0 END AS live,
    CASE WHEN {_same("x", "x", list(zip(values, baselines, strict=True)))}
      THEN 0 ELSE 1 END AS diverged,
    s.normalised_key AS src_key,
    CASE WHEN s.id IS NOT NULL AND {same("x", "s")} THEN 1 ELSE 0 END AS same_src,
    CASE WHEN {manager.format(t="s")} IS NULL THEN 0 ELSE 1 END AS src_locked,
    CASE WHEN {_equal("x.managed_by_id", manager.format(t="s"))}
      AND x.synced_origin_id = {origin.format(t="s")} THEN 0 ELSE 1 END AS restamped,
    -- the upstream item of the same name: the copy's own when it keeps its name, else
    -- looked up (a few items only)
    CASE WHEN {live} AND x.normalised_key = s.normalised_key THEN s.id
      ELSE (SELECT k.id FROM {by_key}) END AS key_src,
    CASE WHEN NOT {live} AND EXISTS (SELECT 1 FROM {by_key} AND {same("x", "k")})
      THEN 1 ELSE 0 END AS same_by_key
  FROM {table} x JOIN pp ON x.organization_id = pp.did
  LEFT JOIN up s ON s.id = x.synced_from_id AND s.organization_id = pp.uid
  WHERE x.organization_id IN ({listed(downstream_ids)})
),
r AS (
  -- all but the plain live copies (not kept as edited, their name their upstream item's)
  SELECT d.*, CASE WHEN {stays} THEN 1 ELSE 0 END AS stays
  FROM d WHERE live = 0 OR nkey <> src_key OR {stays}
),
hc AS (
  -- the partner's other live items, which keep their names: its own, copies from elsewhere
  -- (M5, M6), in merge the edited copies of deleted items, detached (M4); in match only own
  -- items that an upstream item without a live copy will adopt, decided in h (X3, X5)
  SELECT pid, id, nkey, key_src, same_by_key, ours, is_match,
    CASE WHEN ours = 1 THEN NULL ELSE sp END AS sp,
    CASE WHEN ours = 1 THEN NULL ELSE sf END AS sf
  FROM r
  WHERE at IS NULL AND (
    (ours = 0 AND (is_match = 0 OR (sp IS NULL AND key_src IS NOT NULL)))
    OR (is_match = 0 AND ours = 1 AND src_live = 0 AND diverged = 1))
),
dl AS (
  -- copies received through another path that the partner declined (§14.4)
  SELECT DISTINCT pid, uid, nkey, origin FROM r
  WHERE is_match = 0 AND ours = 0 AND at IS NOT NULL AND sp IS NOT NULL AND abs = 0
),
ac AS (
  SELECT pid, sf, MAX(at) AS latest FROM r
  WHERE ours = 1 AND src_live = 1 AND at IS NOT NULL GROUP BY pid, sf
),
acl AS (
  -- the latest archived copy of an upstream item, archived by the sync or not (M7, X2)
  SELECT ac.pid, ac.sf, MAX(r.abs) AS abs_max, MIN(r.abs) AS abs_min
  FROM ac JOIN r ON r.pid = ac.pid AND r.sf = ac.sf AND r.at = ac.latest AND r.ours = 1
  GROUP BY ac.pid, ac.sf
),
cand AS (
  -- the upstream items some rule concerns, if they have no live copy
  SELECT pid, key_src AS id FROM r WHERE stays = 1 AND key_src IS NOT NULL
  UNION SELECT pid, key_src FROM hc WHERE key_src IS NOT NULL
  UNION SELECT pid, sf FROM acl
  UNION SELECT dl.pid, t.id FROM dl JOIN {upstream_by_key.format(src="dl")}
    AND {origin.format(t="t")} = dl.origin
),
probe AS (SELECT pid, id AS sf FROM cand UNION SELECT pid, sf FROM r WHERE live = 1),
cl AS (
  -- how many live copies those upstream items have, and those of the live copies in r: of
  -- two live copies of one upstream item, one at least has a name not the upstream item's
  -- (names are unique among live items), so is in r. The live copies not in r are plain:
  -- one at most per upstream item, the partner's live item of its name (by the unique
  -- index), counted unless it is in r
  SELECT pid, sf, COUNT(*) AS n FROM (
    SELECT r.pid, r.sf FROM r JOIN probe ON probe.pid = r.pid AND probe.sf = r.sf
    WHERE r.live = 1
    UNION ALL
    SELECT named.pid, named.sf FROM (
      SELECT probe.pid, probe.sf, (
        SELECT y.id FROM {table} y
        WHERE y.organization_id = pp.did AND y.normalised_key = t.normalised_key
          AND y.archived_at IS NULL AND y.synced_partnership_id = pp.pid
          AND y.synced_from_id = t.id
      ) AS id
      FROM probe JOIN pp ON pp.pid = probe.pid
      JOIN up t ON t.id = probe.sf AND t.organization_id = pp.uid
    ) named LEFT JOIN r ON r.id = named.id
    WHERE named.id IS NOT NULL AND r.id IS NULL
  ) live_copies GROUP BY pid, sf
),
h AS (
  -- in match, an own item whose name's upstream item has a live copy is not kept (X5)
  SELECT hc.pid, hc.id, hc.nkey, hc.key_src, hc.same_by_key, hc.sp, hc.sf
  FROM hc LEFT JOIN cl w ON w.pid = hc.pid AND w.sf = hc.key_src
  WHERE hc.is_match = 0 OR w.pid IS NULL
),
st AS (
  -- the names that stay put (§5.5)
  SELECT pid, nkey, sf FROM h
  UNION ALL SELECT pid, nkey, sf FROM r WHERE stays = 1
),
copied AS (
  -- live copies kept as edited, or to be renamed: a conflict when a name that stays holds
  -- the new name (M6); a chain of renames when another upstream item has the old one
  SELECT c.pid, c.same_src, c.diverged, c.restamped, c.is_match, c.src_locked,
    CASE WHEN c.stays = 0 AND c.nkey <> c.src_key
      AND b.pid IS NOT NULL THEN 1 ELSE 0 END AS conflict,
    CASE WHEN c.stays = 0 AND c.nkey <> c.src_key
      AND c.key_src IS NOT NULL THEN 1 ELSE 0 END AS chained
  FROM r c
  LEFT JOIN st b ON b.pid = c.pid AND b.nkey = c.src_key
  WHERE c.live = 1
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
  LEFT JOIN cl c ON c.pid = cand.pid AND c.sf = cand.id
  LEFT JOIN r k ON k.pid = cand.pid AND k.nkey = t.normalised_key AND k.stays = 1
  LEFT JOIN h ON h.pid = cand.pid AND h.nkey = t.normalised_key
  LEFT JOIN acl ON acl.pid = cand.pid AND acl.sf = cand.id
  LEFT JOIN dl ON dl.pid = cand.pid AND dl.nkey = t.normalised_key
    AND dl.origin = {origin.format(t="t")}
  WHERE c.pid IS NULL
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
    CASE WHEN conflict = 0 AND {refreshed} THEN 1 ELSE 0 END,
    0, 0, 0, 0,
    CASE WHEN conflict = 0 AND {overwrites} THEN 1 ELSE 0 END,
    chained
  FROM copied
  UNION ALL
  -- the plain live copies: neither a conflict nor a chain
  SELECT pid, -1, CASE WHEN refresh > 0 THEN 1 ELSE 0 END, 0, 0, 0, 0,
    CASE WHEN refresh = 2 THEN 1 ELSE 0 END, 0
  FROM (
    SELECT pid, {plain_refresh} AS refresh
    FROM d WHERE live = 1 AND nkey = src_key AND NOT {stays}{fence}
  ) plain
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
  -- orphans (M4) and, in match, the other live items not kept (X5); a plain live copy is
  -- neither
  SELECT r.pid, 0, 0, 0, 0,
    CASE WHEN r.ours = 1 AND r.src_live = 0 AND r.at IS NULL
      AND NOT (r.is_match = 0 AND r.diverged = 1) THEN 1
      WHEN r.ours = 0 AND r.at IS NULL AND r.is_match = 1 AND k.id IS NULL THEN 1
      ELSE 0 END,
    CASE WHEN r.ours = 1 AND r.src_live = 0 AND r.at IS NULL AND r.is_match = 0
      AND r.diverged = 1 THEN 1 ELSE 0 END,
    0, 0
  FROM r LEFT JOIN h k ON k.pid = r.pid AND k.id = r.id
  UNION ALL
  -- two live copies of one upstream item: left to the engine
  SELECT pid, 0, 0, 0, 0, 0, 0, 0, 1 FROM cl WHERE n > 1
) counted
GROUP BY pid
"""  # noqa: S608 (our identifiers, and integers)
    return sql
