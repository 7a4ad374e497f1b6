"""The item rules of a collection category: what merge, match and detach do to each of the
partner's items (docs/design.md §5, rules M1 to M7 and X1 to X7).

Everything is decided in memory from the rows :class:`~.reads.Reads` loaded; the plan lists
what to create, update and archive, and :mod:`.writes` writes it in bulk.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from organizations.wording import possessive

from .. import locks, policy
from ..items import FRESH_COPY, Fresh, baseline_name
from .plan import (
    ADOPTED,
    ARCHIVED,
    CONFLICT,
    CREATED,
    DETACHED,
    KEPT_LOCAL,
    RESTORED,
    UPDATED,
    CategoryPlan,
)
from .reads import RunContext, key_of, label_of, values_of


def as_stored(values: dict):
    """``values`` as a JSON column of the history gives them back."""
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def origin_of(source) -> int:
    """The organization at the top of a copy's chain: where its source came from, or the
    source's own organization (docs/design.md §14.2)."""
    return source.synced_origin_id or source.organization_id


class CollectionRules(RunContext):
    """Plans one collection category of one partnership's event."""

    def _downstream_items(self, model, *, planned: bool) -> list:
        if not self.downstream_exists:
            return []
        return self.reads.downstream_items(model, self.downstream.pk, planned=planned)

    def _upstream_name(self, partnership_id: int) -> str:
        return self.reads.upstream_name(self.downstream.pk, partnership_id)

    def plan(self, plan: CategoryPlan) -> None:
        category = plan.category
        model = category.model
        fields = category.synced_fields
        plan.update_fields = (*fields, *model.bookkeeping_fields())
        self._keeps_lock, self._locks = locks.lock_through(self.partnership, category.key)
        planned = plan.outcome != policy.DETACH
        downstream = self._downstream_items(model, planned=planned)
        # Pairs of an upstream item and its plain copy are left out: the rules would plan
        # nothing for them (``Reads``, docs/design.md §10).
        plain = self.reads.plain_sources(model, self.partnership) if planned else set()
        if planned and not downstream and not plain:
            plan.bulk_copies = self.reads.upstream_count(model, self.upstream.pk)
            return
        if plan.outcome == policy.DETACH:
            for item in downstream:
                if self.is_ours(item):
                    if not item.is_archived:
                        plan.add(
                            DETACHED,
                            label_of(item),
                            item=item,
                            note=f"Now {possessive(self.downstream)} own item.",
                        )
                    self._detach(item)
                    plan.to_update.append(item)
            return

        upstream_items = self.reads.upstream_items(model, self.upstream.pk)
        if plain:
            upstream_items = [source for source in upstream_items if source.pk not in plain]
        upstream_by_pk = {item.pk: item for item in upstream_items}
        natural_key = category.natural_key
        match = plan.outcome == policy.MATCH

        live_copies: dict[int, Any] = {}  # upstream pk → the partner's live copy
        archived_copies: dict[int, Any] = {}  # upstream pk → the latest archived copy
        orphans = []  # live copies whose upstream item is gone (deleted or archived)
        others = []  # the partner's other live items (its own, or synced from elsewhere)
        declined_elsewhere: dict[tuple[str, int], Any] = {}  # (key, origin) → declined copy
        for item in downstream:
            if self.is_ours(item) and item.synced_from_id in upstream_by_pk:
                if item.is_archived:
                    latest = archived_copies.get(item.synced_from_id)
                    if latest is None or latest.archived_at < item.archived_at:
                        archived_copies[item.synced_from_id] = item
                elif item.synced_from_id in live_copies:
                    orphans.append(item)  # a second live copy: only one may stay
                else:
                    live_copies[item.synced_from_id] = item
            elif self.is_ours(item):
                if not item.is_archived:
                    orphans.append(item)
            elif not item.is_archived:
                others.append(item)
            elif item.synced_partnership_id is not None and not item.archived_by_sync:
                # A copy received through another path that the partner declined: the same
                # item arriving by this path stays declined (docs/design.md §14.4).
                declined_elsewhere[key_of(item, category.natural_key), item.synced_origin_id] = item

        # Copies of deleted items: archived if untouched, detached if edited (merge).
        for orphan in orphans:
            if orphan.sync_state == "diverged" and not match:
                self._detach(orphan)
                plan.to_update.append(orphan)
                plan.add(
                    DETACHED,
                    label_of(orphan),
                    item=orphan,
                    note=f"{self.upstream} deleted it; the edited copy is now "
                    f"{possessive(self.downstream)} own.",
                )
                others.append(orphan)
            else:
                self._archive(plan, orphan, f"Archived by sync: {self.upstream} deleted it.")

        # Match: every live item that will not mirror an upstream item is archived.
        if match:
            wanted = {
                key_of(source, natural_key)
                for source in upstream_items
                if source.pk not in live_copies
            }
            kept = []
            for item in others:
                if item.synced_partnership_id is None and key_of(item, natural_key) in wanted:
                    kept.append(item)
                else:
                    self._archive(
                        plan,
                        item,
                        f"Archived by sync: not among {possessive(self.upstream)} settings.",
                    )
            others = kept
        others_by_key = {key_of(item, natural_key): item for item in others}
        blocked = self._names_taken(plan, upstream_by_pk, live_copies, others, match=match)

        for source in upstream_items:
            key = key_of(source, natural_key)
            holder = others_by_key.get(key)
            copy = live_copies.get(source.pk)
            blocker = blocked.get(source.pk)
            if blocker is not None and (copy is not None or holder is None):
                self._conflict(
                    plan,
                    source,
                    blocker,
                    note=f"{self.downstream} already has another item “{blocker}” with this "
                    "name; "
                    + ("the copy was not renamed." if copy is not None else "nothing was added."),
                )
                continue
            if copy is not None:
                self._refresh_copy(plan, source, copy, match=match)
            elif holder is not None:
                if holder.synced_partnership_id is None:
                    self._adopt(plan, source, holder, match=match)
                else:
                    self._conflict(
                        plan,
                        source,
                        holder,
                        note=f"“{holder}” is already synced from "
                        f"{self._upstream_name(holder.synced_partnership_id)}; left as it is.",
                    )
            elif source.pk in archived_copies:
                self._restore_or_keep(plan, source, archived_copies[source.pk], match=match)
            elif not match and (key, origin_of(source)) in declined_elsewhere:
                plan.add(
                    KEPT_LOCAL,
                    label_of(source),
                    item=declined_elsewhere[key, origin_of(source)],
                    upstream=source,
                    note=f"{self.downstream} deleted its copy received through another "
                    "partnership; merge does not bring it back.",
                )
            else:
                created = self._fresh_copy(model, source, fields)
                plan.to_create.append(created)
                plan.add(
                    CREATED,
                    label_of(source),
                    item=created,
                    upstream=source,
                    after=values_of(source, category.synced_fields),
                )

    def _conflict(self, plan: CategoryPlan, source, holder, *, note: str) -> None:
        """``source`` cannot be copied because ``holder`` keeps its name: reported once, and
        again only when one side has changed since (docs/design.md §14.4)."""
        fields = plan.category.synced_fields
        before, after = values_of(holder, fields), values_of(source, fields)
        reported = None
        if self.partnership_pk is not None:
            reported = self.reads.reported_conflict(
                plan.category.key, self.partnership_pk, source.pk
            )
        plan.add(
            CONFLICT,
            label_of(source),
            item=holder,
            upstream=source,
            before=before,
            after=after,
            note=note,
            repeated=reported is not None and reported == (as_stored(before), as_stored(after)),
        )

    def _fresh_copy(self, model, source, fields):
        """A new copy of ``source``: its values, their baselines, and what every bookkeeping
        column of a fresh copy holds."""
        known = {
            Fresh.PARTNERSHIP: self.partnership if self.partnership_pk else None,
            Fresh.SOURCE: source,
            Fresh.KEY: key_of(source, model.NATURAL_KEY),
            Fresh.NOW: self.now,
            Fresh.MANAGER: self._manager_of(source),
            Fresh.ORIGIN: origin_of(source),
        }
        bookkeeping = {}
        for name, value in FRESH_COPY.items():
            if value in (Fresh.MANAGER, Fresh.ORIGIN):  # known by id: written to the id column
                bookkeeping[model._meta.get_field(name).attname] = known[value]
            else:
                bookkeeping[name] = known[value] if isinstance(value, Fresh) else value
        return model(
            organization=self.downstream,
            **bookkeeping,
            **values_of(source, fields),
            **{baseline_name(name): getattr(source, name) for name in fields},
        )

    def _names_taken(
        self, plan: CategoryPlan, upstream_by_pk: dict, live_copies: dict, others: list, *, match
    ) -> dict:
        """Upstream items whose name the partner cannot give them: upstream pk → the live item
        that keeps that name.

        The partner's own items keep their names, and so do copies edited locally (merge keeps
        their values). A copy that cannot be renamed keeps its old name in turn, which may stop
        another copy, or a new one, from taking it: followed until nothing more changes.
        """
        natural_key = plan.category.natural_key
        fields = plan.category.synced_fields
        staying = {key_of(item, natural_key): item for item in others}
        moving = {}
        for pk, copy in live_copies.items():
            source = upstream_by_pk[pk]
            edited_here = copy.sync_state == "diverged" and not (match or self._locked(source))
            if edited_here and values_of(copy, fields) != values_of(source, fields):
                staying[key_of(copy, natural_key)] = copy
            elif key_of(copy, natural_key) != key_of(source, natural_key):
                moving[pk] = copy
        blocked = {}
        changed = True
        while changed:
            changed = False
            for pk, copy in list(moving.items()):
                holder = staying.get(key_of(upstream_by_pk[pk], natural_key))
                if holder is not None:
                    blocked[pk] = holder
                    staying[key_of(copy, natural_key)] = copy
                    del moving[pk]
                    changed = True
        for pk, source in upstream_by_pk.items():
            holder = staying.get(key_of(source, natural_key))
            if pk not in live_copies and holder is not None and holder.synced_from_id != pk:
                blocked[pk] = holder  # a new copy, or a restored one, would clash
        return blocked

    def _link(self, item, source, fields) -> None:
        for name in fields:
            setattr(item, name, getattr(source, name))
        self._set_baseline(item, source, fields)

    def _set_baseline(self, item, source, fields) -> None:
        for name in fields:
            setattr(item, baseline_name(name), getattr(source, name))
        item.synced_partnership = self.partnership
        item.synced_from = source
        item.synced_at = self.now
        item.managed_by_id = self._manager_of(source)
        item.synced_origin_id = origin_of(source)

    def _manager_of(self, source) -> int | None:
        """Who locks the copy of ``source`` (docs/design.md §14.3): the organization that
        locked ``source``, through an exclusive partnership; else a strict partnership's own
        channel manager; else nobody."""
        inherited = source.managed_by_id if self._keeps_lock else None
        return inherited or (self.upstream.pk if self._locks else None)

    def _stamp_note(self, managed_before: int | None, copy) -> str:
        if managed_before == copy.managed_by_id:
            return "Its origin changed."
        if copy.managed_by_id is None:
            return f"Now editable in {self.downstream}."
        return f"Now read-only in {self.downstream}."

    def _locked(self, source) -> bool:
        """A locked copy holds its source's values: merge treats it as match does."""
        return self._manager_of(source) is not None

    def _unarchive(self, item) -> None:
        item.archived_at = None
        item.archived_by = None
        item.archive_reason = ""
        item.archived_by_sync = False

    def _restore_or_keep(self, plan: CategoryPlan, source, copy, *, match: bool) -> None:
        """A copy the partner deleted stays deleted in merge; one the sync archived (its
        upstream item was archived) comes back when the upstream item does (docs/design.md,
        rule M7)."""
        fields = plan.category.synced_fields
        if not (copy.archived_by_sync or match):
            plan.add(
                KEPT_LOCAL,
                label_of(copy),
                item=copy,
                upstream=source,
                note=f"{self.downstream} deleted its copy; merge does not bring it back.",
            )
            return
        old = values_of(copy, fields)
        self._unarchive(copy)
        self._link(copy, source, fields)
        plan.to_update.append(copy)
        plan.add(
            RESTORED,
            label_of(source),
            item=copy,
            upstream=source,
            before=old,
            after=values_of(copy, fields),
        )

    def _refresh_copy(self, plan: CategoryPlan, source, copy, *, match: bool) -> None:
        fields = plan.category.synced_fields
        new = values_of(source, fields)
        old = values_of(copy, fields)
        stamp = (copy.managed_by_id, copy.synced_origin_id)
        restamped = stamp != (self._manager_of(source), origin_of(source))
        if old == new:
            baseline = {name: getattr(copy, baseline_name(name)) for name in fields}
            if baseline != new or restamped:  # e.g. edited to what the channel manager has
                self._set_baseline(copy, source, fields)
                plan.to_update.append(copy)
            if restamped:  # a change of lock or origin is a write: it travels on (§14.3)
                plan.add(
                    UPDATED,
                    label_of(source),
                    item=copy,
                    upstream=source,
                    before=old,
                    after=new,
                    note=self._stamp_note(stamp[0], copy),
                )
            return
        if copy.sync_state == "diverged" and not (match or self._locked(source)):
            plan.add(
                KEPT_LOCAL,
                label_of(copy),
                item=copy,
                upstream=source,
                before=old,
                after=new,
                note=(
                    f"Edited in {self.downstream}; "
                    f"{possessive(self.upstream)} change is not applied."
                ),
            )
            return
        diverged = copy.sync_state == "diverged"
        self._link(copy, source, fields)
        plan.to_update.append(copy)
        plan.add(
            UPDATED,
            label_of(source),
            item=copy,
            upstream=source,
            before=old,
            after=new,
            overwrites_local=diverged,
        )

    def _adopt(self, plan: CategoryPlan, source, item, *, match: bool) -> None:
        fields = plan.category.synced_fields
        old = values_of(item, fields)
        new = values_of(source, fields)
        match = match or self._locked(source)
        if match:
            self._link(item, source, fields)
        else:
            self._set_baseline(item, source, fields)  # content kept: it may now be "diverged"
        plan.to_update.append(item)
        plan.add(
            ADOPTED,
            label_of(item),
            item=item,
            upstream=source,
            before=old,
            after=values_of(item, fields),
            note="Linked to the channel manager's item of the same name"
            + ("; its values were overwritten." if match and old != new else "."),
            affects_own=True,
            overwrites_local=match and old != new,
        )

    def _archive(self, plan: CategoryPlan, item, reason: str) -> None:
        item.archived_at = self.now
        item.archived_by = self.by
        item.archive_reason = reason[:200]
        item.archived_by_sync = True
        plan.to_archive.append(item)
        plan.add(
            ARCHIVED,
            label_of(item),
            item=item,
            before=values_of(item, plan.category.synced_fields),
            note=reason,
            affects_own=item.synced_partnership_id is None,
        )

    def _detach(self, item) -> None:
        item.synced_partnership = None
        item.synced_from = None
        item.synced_at = None
        item.managed_by_id = None
        item.synced_origin_id = None
        for name in item.SYNCED_FIELDS:
            setattr(item, baseline_name(name), None)
