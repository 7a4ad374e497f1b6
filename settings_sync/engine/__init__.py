"""The sync engine: plan what a partnership's event does to its partner, then apply it.

``preview(partnership, event)`` builds a :class:`Plan` without writing anything
(``preview_many`` for several partners at once);
``run(partnership, event)`` builds the same plan under a lock on the partner organization
and applies it in one transaction, recording a :class:`~settings_sync.models.SyncRun` and its
:class:`~settings_sync.models.SyncChange` rows. What happens to each category comes from
:func:`settings_sync.policy.outcome`; how each item is treated follows docs/design.md §5.

The package is named after the steps of a run (docs/design.md §8):

* :mod:`.plan` — what a run will do (``Plan``, ``CategoryPlan``, ``Change``);
* :mod:`.planning` — building a plan for an event; :mod:`.reads` — the rows it plans against;
* :mod:`.item_rules` and :mod:`.value_rules` — the rules per kind of category;
* :mod:`.writes` — applying plans in bulk; :mod:`.runs` — the life of a recorded run.

Every category with work is read with three queries (the channel manager's items, the
partner's plain copies, the partner's other items) and written in bulk, so a run costs a
constant number of queries per category whatever the number of items. A run of one
partnership first finds, with one statement, the categories already in sync (not read at all)
and those empty in the partner (copied without being read): ``reads.in_sync``,
docs/design.md §10.
"""

from __future__ import annotations

from partnerships.models import Partnership

from .plan import WRITING_ACTIONS, Change, Plan
from .planning import build
from .reads import Reads
from .runs import (
    carries_partnership,
    execute,
    execute_held,
    execute_id,
    execute_many,
    new_record,
    record_retry,
    retry,
    run,
    schedule_record,
)
from .writes import PLACEHOLDER


def preview(
    partnership: Partnership,
    event: str,
    *,
    mode_before: str | None = None,
    categories: list[str] | None = None,
    reads: Reads | None = None,
    collections: bool = True,
) -> Plan:
    """What ``event`` would do to the partner now, category by category. Writes nothing.

    ``partnership`` may be unsaved or carry flags being edited; its ``downstream`` may be an
    organization that does not exist yet (an invitation: everything would be created).
    For ``unlink``, ``mode_before`` is the mode sync had (default: the stored one).
    ``reads`` (``reads_for`` the partnerships of a batch) shares the rows read between the
    previews of many partners (a fleet preview). Without ``collections``, collection
    categories get their outcome but are not planned item by item (the fleet preview counts
    them in SQL).
    """
    return build(
        partnership,
        event,
        mode_before=mode_before,
        categories=categories,
        reads=reads,
        collections=collections,
    )


def reads_for(partnerships: list[Partnership]) -> Reads:
    """What the previews of these partnerships read, read once for all of them."""
    return Reads(partnerships)


def preview_many(partnerships: list[Partnership], event: str) -> list[Plan]:
    """``preview`` of one event for several partnerships (into different partners), read
    together: each category once for all of them, as a fan-out's runs read (rule R8)."""
    reads = Reads(partnerships)
    return [
        build(partnership, event, mode_before=None, categories=None, reads=reads)
        for partnership in partnerships
    ]


__all__ = [
    "PLACEHOLDER",
    "WRITING_ACTIONS",
    "Change",
    "Plan",
    "carries_partnership",
    "execute",
    "execute_held",
    "execute_id",
    "execute_many",
    "new_record",
    "preview",
    "preview_many",
    "reads_for",
    "record_retry",
    "retry",
    "run",
    "schedule_record",
]
