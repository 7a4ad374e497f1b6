"""The network below an organization: partners, their partners, and so on (docs/design.md
§14.5), read with one recursive query (``WITH RECURSIVE`` works on PostgreSQL and SQLite
alike) rather than one query per level.
"""

from __future__ import annotations

from django.db import connection

from organizations.models import Organization

from .models import Partnership

#: Deeper than any real network; a guard should the graph ever hold a cycle.
MAX_DEPTH = 32


#: Every active partnership below an organization (``%s``: the organization, the depth bound),
#: with its depth; ``{sync}`` keeps only partnerships with sync on.
NETWORK = """
    WITH RECURSIVE network(partnership_id, downstream_id, depth) AS (
        SELECT id, downstream_id, 1 FROM {partnerships} AS above
        WHERE upstream_id = %s AND status = 'active'{sync}
        UNION
        SELECT above.id, above.downstream_id, network.depth + 1
        FROM {partnerships} AS above JOIN network ON above.upstream_id = network.downstream_id
        WHERE above.status = 'active' AND network.depth < %s{sync}
    )
"""


def _network_sql(*, syncing: bool) -> str:
    return NETWORK.format(
        partnerships=connection.ops.quote_name(Partnership._meta.db_table),
        sync=" AND above.data_sync_enabled" if syncing else "",
    )


def _like(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.upper()}%"


#: The partnerships of ``NETWORK`` whose partner's name matches (``%s``: an upper-cased
#: ``LIKE`` pattern), each with its smallest depth.
ROWS = """
    SELECT network.partnership_id, MIN(network.depth) AS depth
    FROM network JOIN {organizations} o ON o.id = network.downstream_id
    WHERE UPPER(o.name) LIKE %s ESCAPE '\\'
    GROUP BY network.partnership_id, o.name
"""


class NetworkRows:
    """The partnerships below an organization, each with its depth (1: a direct partner),
    ordered by depth and partner name; sliced by a paginator, one query per page and one
    for the count."""

    def __init__(self, organization: Organization, *, query: str = "") -> None:
        self.organization = organization
        organizations = connection.ops.quote_name(Organization._meta.db_table)
        self._sql = _network_sql(syncing=False) + ROWS.format(organizations=organizations)
        self._params = [organization.pk, MAX_DEPTH, _like(query)]
        self._order = "ORDER BY depth, o.name, network.partnership_id"
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            with connection.cursor() as cursor:
                counting = "SELECT COUNT(*) FROM (" + self._sql + ") AS rows"  # noqa: S608
                cursor.execute(counting, self._params)
                self._count = cursor.fetchone()[0]
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, window: slice) -> list[Partnership]:
        start, stop = window.start or 0, window.stop
        with connection.cursor() as cursor:
            cursor.execute(
                f"{self._sql} {self._order} LIMIT %s OFFSET %s",
                [*self._params, stop - start, start],
            )
            depths = dict(cursor.fetchall())
        partnerships = Partnership.objects.select_related("upstream", "downstream").in_bulk(depths)
        rows = []
        for pk, depth in depths.items():
            partnership = partnerships[pk]
            partnership.depth = depth
            rows.append(partnership)
        return rows


def organizations_below(organization: Organization) -> int:
    """How many organizations a sync into ``organization`` can reach further down (through
    active partnerships with sync on), each counted once."""
    with connection.cursor() as cursor:
        cursor.execute(
            _network_sql(syncing=True) + "SELECT COUNT(DISTINCT downstream_id) FROM network",  # noqa: S608
            [organization.pk, MAX_DEPTH],
        )
        return cursor.fetchone()[0]
