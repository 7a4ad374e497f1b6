"""Travelling down a network: the runs a run starts below its partner (docs/design.md §14).

A run that wrote into B records, in its own transaction, a queued ``change`` run for each of
B's active partnerships with sync on, for the categories it changed, caused by it
(``SyncRun.caused_by``). Because they are recorded with the run that caused them, a worker
dying between the two loses nothing (``sync_requeue`` finds them queued), a run that fails
records none (its transaction is rolled back), and a run that writes nothing starts nothing,
so a cascade ends: partnerships have no cycles.

This is an explicit step of a run, never a side effect of model signals (sync writes fire
none). The runs of one transaction are coalesced: one run per partnership below, however
many categories changed, and a batch of runs starts its cascade in one insert.
"""

from __future__ import annotations

from organizations.prepared import Prepared
from partnerships.models import Partnership

from .. import locks, overrides, policy, registry
from ..models import SyncRun
from .plan import ARCHIVED, DETACHED, WRITING_ACTIONS, Plan

#: What frees a name in the partner for another path into it.
FREEING_ACTIONS = {ARCHIVED, DETACHED}

#: Kinds of data that travel on: invite-only data is copied once, into a new organization.
TRAVELLING_KINDS = (policy.COLLECTION, policy.SINGLETON)


def written_categories(plan: Plan) -> list[str]:
    """The categories (that travel on) in which ``plan`` writes anything into its partner."""
    return [
        category_plan.category.key
        for category_plan in plan.categories
        if category_plan.category.kind in TRAVELLING_KINDS
        and any(
            count and action in WRITING_ACTIONS for action, count in category_plan.counts().items()
        )
    ]


def freed_categories(plan: Plan) -> list[str]:
    """The collections in which ``plan`` archives or detaches copies: names another path into
    the partner may now take."""
    return [
        category_plan.category.key
        for category_plan in plan.categories
        if category_plan.category.kind == policy.COLLECTION
        and any(change.action in FREEING_ACTIONS for change in category_plan.changes)
    ]


class Cascade:
    """The runs that applied ``runs`` (into different partners) start: a ``change`` run for
    each partnership below a partner they wrote into, and one for each other path into a
    partner where they freed names (two paths to one organization, docs/design.md §14.4). At
    most three queries, whatever the number of runs, partners or items; the first, ``read``,
    may travel in the round trip of the runs' writes."""

    def __init__(self, runs: list[tuple[Plan, SyncRun]]) -> None:
        self.written: dict[int, tuple[SyncRun, Plan, list[str]]] = {}
        self.freed: dict[int, tuple[SyncRun, Plan, list[str]]] = {}
        for plan, sync_run in runs:
            if plan.skipped:
                continue
            if keys := written_categories(plan):
                self.written[plan.partnership.downstream_id] = (sync_run, plan, keys)
            if keys := freed_categories(plan):
                self.freed[plan.partnership.downstream_id] = (sync_run, plan, keys)

    def read(self) -> list[tuple[str, list | None]]:
        """The statement that reads the partnerships below (none when nothing is written)."""
        return [_BELOW.statement(list(self.written))] if self.written else []

    def record(self, rows: list[tuple] | None = None) -> list[SyncRun]:
        """Record the runs started, and enqueue them once the transaction commits. ``rows``:
        what ``read`` gave, when the caller sent it."""
        started = []
        if self.written:
            below = (
                _BELOW.objects(list(self.written))
                if rows is None
                else _BELOW.instances(rows, list(self.written))
            )
            started += _runs_into(
                below,
                lambda partnership: self.written[partnership.upstream_id],
                lambda partnership, plan: (
                    f"{partnership.upstream} received changes from {plan.partnership.upstream}"
                ),
            )
        if self.freed:
            beside = _BESIDE.objects(
                list(self.freed), [plan.partnership.pk for _, plan, _ in self.freed.values()]
            )
            started += _runs_into(
                beside,
                lambda partnership: self.freed[partnership.downstream_id],
                lambda partnership, plan: (
                    f"{plan.partnership.upstream}'s sync freed names in {partnership.downstream}"
                ),
            )
        if not started:
            return []
        started = SyncRun.objects.bulk_create(started)
        # tasks imports the engine: the queue is reached when a cascade has something to send.
        from ..tasks import enqueue_on_commit

        enqueue_on_commit(started)
        return started


#: The partnerships below the partners a batch wrote into (their partners' runs to record),
#: and the other paths into the partners where it freed names: compiled once per number of
#: partners, as every run that writes reads them (docs/design.md §10).
_BELOW = Prepared(
    lambda partners: (
        Partnership.objects.active()
        .filter(upstream_id__in=partners, data_sync_enabled=True)
        .select_related("upstream")
        .order_by("upstream_id", "pk")  # a batch of the queue shares its channel manager
    )
)
_BESIDE = Prepared(
    lambda partners, written_through: (
        Partnership.objects.active()
        .filter(downstream_id__in=partners, data_sync_enabled=True)
        .exclude(pk__in=written_through)
        .select_related("upstream", "downstream")
        .order_by("downstream_id", "pk")
    )
)


def _runs_into(partnerships: list[Partnership], cause_of, trigger) -> list[SyncRun]:
    """The runs started in ``partnerships``: each one's cause, plan and categories are
    ``cause_of(partnership)``; ``trigger(partnership, plan)`` says what started it."""
    overrides.prefetch(partnerships)  # their effective modes: one query for all
    started = []
    for partnership in partnerships:
        cause, plan, keys = cause_of(partnership)
        started += _started(partnership, cause, keys, trigger(partnership, plan))
    return started


def _started(partnership: Partnership, cause: SyncRun, keys: list[str], trigger: str) -> list:
    """The run ``cause`` starts in ``partnership`` (none if no category does anything there)."""
    keys = [key for key in keys if _travels(partnership, key)]
    if not keys:
        return []
    return [
        SyncRun(
            partnership=partnership,
            event=policy.CHANGE,
            # one category: its own mode, until the run records the mode it applied
            mode=locks.category_mode(partnership, keys[0]) if len(keys) == 1 else partnership.mode,
            categories=keys,
            caused_by=cause,
            trigger=trigger[:200],
        )
    ]


def _travels(partnership: Partnership, key: str) -> bool:
    """Whether a change of ``key`` in the partnership's channel manager does anything below."""
    mode = locks.category_mode(partnership, key)
    return policy.outcome(mode, policy.CHANGE, registry.get(key).kind) != policy.NONE
