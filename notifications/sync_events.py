"""What finished sync runs tell people: the partner's admins that their settings changed or
that updates wait for them, the channel manager's admins that a run failed or met conflicts.

Read in bulk for a batch of runs: the runs with their partnerships (one query), the kept local
edits that now wait for an answer (one query, then one per category concerned).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.urls import reverse

from organizations.addresses import address
from organizations.wording import possessive
from settings_sync import conflicts, registry
from settings_sync.engine import carries_partnership
from settings_sync.models import DECISION, SyncChange, SyncRun
from settings_sync.templatetags.settings_tags import action_label

from .events import Entry, Event

WRITING = ("created", "updated", "adopted", "restored", "archived", "detached")


def _run_url(organization, sync_run) -> str:
    """The run's page, reversed once per process: a fan-out's batch tells 50 partners at a
    time (docs/design.md §10)."""
    return address("settings_sync:run", organization.slug, int(sync_run.pk))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _what_changed(counts: dict) -> str:
    parts = []
    for key, actions in counts.items():
        category = registry.find(key)
        label = category.label if category else key
        done = [f"{actions[a]} {action_label(a)}" for a in WRITING if actions.get(a)]
        if done:
            parts.append(f"{label}: {', '.join(done)}")
    return "; ".join(parts)


def _totals(counts: dict) -> Counter:
    totals: Counter = Counter()
    for actions in counts.values():
        totals.update(actions)
    return totals


def entries_for_runs(runs) -> list[Entry]:
    # Only a failed run, or one that counted something, has anything to tell: a run into a
    # partner already in sync reads nothing more here.
    told = [
        sync_run
        for sync_run in runs
        if sync_run.status == SyncRun.Status.FAILED
        or (sync_run.status == SyncRun.Status.SUCCEEDED and sync_run.counts)
    ]
    if not told:
        return []
    # A run applied by this worker holds what it was applied to (its partnership and both
    # organizations, read under the partner's lock): a fan-out's batch of 50 reads nothing
    # again. Any other run is read.
    carried = [r for r in told if carries_partnership(r) and r.event != DECISION]
    unread = [r.pk for r in told if not carries_partnership(r)]
    runs = carried + (_read_runs(unread) if unread else [])
    runs.sort(key=lambda sync_run: sync_run.pk)
    entries = []
    for sync_run in runs:
        upstream = sync_run.partnership.upstream
        downstream = sync_run.partnership.downstream
        totals = _totals(sync_run.counts or {})
        if sync_run.status == SyncRun.Status.FAILED:
            entries.append(
                Entry(
                    upstream.pk,
                    Event.RUN_FAILED,
                    f"The sync into {downstream} ({sync_run.get_event_display().lower()}) "
                    "failed; nothing was changed there. Open it to see why and retry.",
                    _run_url(upstream, sync_run),
                )
            )
            continue
        if sync_run.status != SyncRun.Status.SUCCEEDED:
            continue
        if totals["conflict"]:
            entries.append(
                Entry(
                    upstream.pk,
                    Event.CONFLICTS,
                    f"The sync into {downstream} met {_plural(totals['conflict'], 'conflict')}: "
                    f"items that clash with {possessive(downstream)} other settings were left "
                    "as they are.",
                    _run_url(upstream, sync_run),
                )
            )
        if any(totals[action] for action in WRITING):
            message = f"{upstream} changed your settings ({_what_changed(sync_run.counts)})."
            if totals["archived"]:
                message += (
                    f" {_plural(totals['archived'], 'item')} archived: nothing is deleted, "
                    "the run's page can restore them."
                )
            if sync_run.overwritten:
                message += (
                    f" {_plural(sync_run.overwritten, 'setting')} you had changed "
                    f"{'was' if sync_run.overwritten == 1 else 'were'} overwritten with "
                    f"{possessive(upstream)} values; yours are in the run's history."
                )
            entries.append(
                Entry(
                    downstream.pk,
                    Event.SETTINGS_CHANGED,
                    message,
                    _run_url(downstream, sync_run),
                )
            )
    entries += _updates_available([r for r in runs if _totals(r.counts or {})["kept_local"]])
    return entries


def _read_runs(pks: list[int]) -> list[SyncRun]:
    return list(
        SyncRun.objects.filter(pk__in=pks)
        .exclude(event=DECISION)
        .select_related("partnership__upstream", "partnership__downstream")
        # What the sentences need.
        .only(
            "status",
            "event",
            "mode",
            "counts",
            "overwritten",
            "partnership__downstream_id",
            "partnership__upstream__name",
            "partnership__upstream__slug",
            "partnership__downstream__name",
            "partnership__downstream__slug",
        )
    )


def _updates_available(runs: list[SyncRun]) -> list[Entry]:
    """A partner's edited copies whose channel manager's item changed: an update waits."""
    if not runs:
        return []
    by_pk = {sync_run.pk: sync_run for sync_run in runs}
    item_ids: dict[str, set[int]] = defaultdict(set)
    for key, item_id in SyncChange.objects.filter(
        run_id__in=by_pk, action=SyncChange.Action.KEPT_LOCAL, before__isnull=False
    ).values_list("category", "item_id"):
        item_ids[key].add(item_id)
    waiting: dict[int, Counter] = defaultdict(Counter)  # partner → category → count
    for key, ids in item_ids.items():
        category = registry.find(key)
        if category is None or not category.is_collection:
            continue
        for organization_id in conflicts.waiting(
            category.model.objects.filter(pk__in=ids)
        ).values_list("organization_id", flat=True):
            waiting[organization_id][key] += 1
    entries = []
    for sync_run in runs:
        partnership = sync_run.partnership
        counts = waiting.pop(partnership.downstream_id, None)
        if not counts:
            continue
        category = registry.get(next(iter(counts)))
        labels = ", ".join(registry.get(key).label for key in counts)
        entries.append(
            Entry(
                partnership.downstream_id,
                Event.UPDATE_AVAILABLE,
                f"Update available from {partnership.upstream}: "
                f"{_plural(sum(counts.values()), 'item')} you edited locally changed at "
                f"{partnership.upstream} ({labels}). Compare, then take theirs or keep yours.",
                reverse(
                    "settings_sync:page",
                    args=[partnership.downstream.slug, category.group, category.key],
                ),
            )
        )
    return entries
