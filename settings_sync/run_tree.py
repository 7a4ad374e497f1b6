"""A run's place in a cascade (docs/design.md §14.1): the runs above it that started it, and
the runs it started below, a few levels deep, for the run page."""

from __future__ import annotations

from dataclasses import dataclass, field

from organizations.models import Organization

from .models import SyncRun

#: Levels of the tree shown below a run (a cascade deeper than that says how many more).
LEVELS_BELOW = 3
#: Runs above a run the page names (more levels than any network has).
LEVELS_ABOVE = 8


@dataclass
class Node:
    run: SyncRun
    visible: bool
    started: list[Node] = field(default_factory=list)


@dataclass
class Cascade:
    causes: list[Node]  # the run that started this one first, then the one above it, …
    started: list[Node]
    more_below: int = 0  # runs further down than the tree shows

    def __bool__(self) -> bool:
        return bool(self.causes or self.started)


def _visible(sync_run: SyncRun, organization: Organization) -> bool:
    """Whether ``organization`` may open the run's page (it is one side of the partnership)."""
    partnership = sync_run.partnership
    return organization.pk in (partnership.upstream_id, partnership.downstream_id)


def cascade_of(sync_run: SyncRun, organization: Organization) -> Cascade:
    """The cascade around ``sync_run`` as ``organization`` sees it: one query per level."""
    causes = []
    cause_id = sync_run.caused_by_id
    while cause_id is not None and len(causes) < LEVELS_ABOVE:
        cause = SyncRun.objects.for_list().filter(pk=cause_id).first()
        if cause is None:
            break
        causes.append(Node(cause, _visible(cause, organization)))
        cause_id = cause.caused_by_id
    top: list[Node] = []
    level = {sync_run.pk: top}
    for _ in range(LEVELS_BELOW):
        runs = list(SyncRun.objects.for_list().filter(caused_by__in=level).order_by("pk"))
        following = {}
        for below in runs:
            node = Node(below, _visible(below, organization))
            level[below.caused_by_id].append(node)
            following[below.pk] = node.started
        level = following
        if not level:
            break
    more = SyncRun.objects.filter(caused_by__in=level).count() if level else 0
    return Cascade(causes, top, more)
