"""The rules for single values: a singleton's fields are overwritten as a whole (match), and
invite-only data is copied once into a new organization (docs/design.md §5)."""

from __future__ import annotations

from organizations.wording import possessive

from .. import policy
from .plan import ARCHIVED, CREATED, UPDATED, CategoryPlan
from .reads import RunContext, key_of, label_of, values_of


class ValueRules(RunContext):
    """Plans one singleton or invite-only category of one partnership's event."""

    def plan(self, plan: CategoryPlan) -> None:
        if plan.category.is_singleton:
            self._singleton(plan)
        else:
            self._invite_only(plan)

    def _singleton(self, plan: CategoryPlan) -> None:
        model = plan.category.model
        fields = plan.category.synced_fields
        plan.update_fields = (*fields, *model.bookkeeping_fields())
        row = self.reads.singleton(model, self.downstream.pk) if self.downstream_exists else None
        if row is None:
            row = model(organization=self.downstream)  # defaults: what a new organization gets
        if plan.outcome == policy.DETACH:
            if self.is_ours(row) and row.pk:
                row.synced_partnership = None
                plan.to_update.append(row)
            return
        source = self.reads.singleton(model, self.upstream.pk) or model(organization=self.upstream)
        old, new = values_of(row, fields), values_of(source, fields)
        if row.pk and old == new and self.is_ours(row):
            return  # already what the channel manager has, through this partnership (R6)
        for name in fields:
            setattr(row, name, getattr(source, name))
        row.synced_partnership = self.partnership if self.partnership_pk else None
        row.synced_at = self.now
        if row.pk:
            plan.to_update.append(row)
        else:
            plan.to_create.append(row)
        if old != new:
            plan.add(
                UPDATED,
                plan.category.label,
                item=row,
                before=old,
                after=new,
                # An organization created by the invitation holds defaults nobody chose.
                overwrites_local=self.event != policy.INVITE,
            )

    # Invite-only data ---------------------------------------------------------------

    def _invite_only(self, plan: CategoryPlan) -> None:
        if plan.outcome == policy.DETACH:
            return  # copied once; it already belongs to the partner
        if plan.category.copied_as_files:
            self._organization_fields(plan)
        else:
            self._own_copies(plan)

    def _copied_from(self, plan: CategoryPlan) -> dict:
        """The copy's own, but marked with where it came from (docs/design.md §3.1)."""
        field = plan.category.copied_from_field
        return {field: self.upstream} if field else {}

    def _organization_fields(self, plan: CategoryPlan) -> None:
        """Fields of the organization itself (the logo): copied as files of their own."""
        for name in plan.category.synced_fields:
            source = getattr(self.upstream, name)
            current = getattr(self.downstream, name) if self.downstream is not None else None
            if not source:
                continue
            before = current.name if current else None
            plan.add(
                UPDATED if current else CREATED,
                f"{plan.category.label} of {self.upstream}",
                item=self.downstream,
                before={name: before},
                after={name: source.name},
            )
            if self.downstream_exists:
                plan.files.append((self.downstream, name, source, self._copied_from(plan)))

    def _own_copies(self, plan: CategoryPlan) -> None:
        """Items copied once as the partner's own (licenses), marked with the channel manager
        they came from but never synced again."""
        category = plan.category
        model = category.model
        fields = category.synced_fields
        copied_from = self._copied_from(plan)
        plan.update_fields = (*fields, *copied_from, *model.archive_fields())
        existing = {}
        if self.downstream_exists:
            existing = {
                key_of(item, category.natural_key): item
                for item in model.objects.filter(organization=self.downstream)
            }
        for source in model.objects.filter(organization=self.upstream).order_by("pk"):
            item = existing.pop(key_of(source, category.natural_key), None)
            if item is None:
                plan.to_create.append(
                    model(organization=self.downstream, **values_of(source, fields), **copied_from)
                )
                plan.add(
                    CREATED, label_of(source), upstream=source, after=values_of(source, fields)
                )
            elif values_of(item, fields) != values_of(source, fields):
                old = values_of(item, fields)
                for name, value in {**values_of(source, fields), **copied_from}.items():
                    setattr(item, name, value)
                plan.to_update.append(item)
                plan.add(
                    UPDATED, label_of(item), item=item, before=old, after=values_of(item, fields)
                )
        for item in existing.values():
            item.archived_at = self.now
            item.archived_by = self.by
            item.archive_reason = (
                f"Archived by sync: not among {possessive(self.upstream)} settings."
            )
            plan.to_archive.append(item)
            plan.add(ARCHIVED, label_of(item), item=item, before=values_of(item, fields))
