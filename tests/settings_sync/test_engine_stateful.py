"""Random sequences of upstream edits, partner edits, flag changes and ends, through the real
triggers (on commit, immediate task backend); after every step the guarantees of
docs/design.md §4 and §5 hold.

The guarantees are checked by one invariant, in a fixed order, before anything repairs the
state: hypothesis runs invariants in name order, and one that ran the engine first would hide
what the others should see. Names are any text, so the sync's name matching is exercised
with every script; a run with a trigger disconnected shows the invariants can fail."""

from __future__ import annotations

import contextlib
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models.signals import post_delete, post_save
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from organizations.models import Organization
from organizations.natural_keys import normalise_part
from partnerships import services
from partnerships.models import Partnership
from settings_sync import engine
from settings_sync.locks import is_locked
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder
from settings_sync.proposal.models import ProposalExpiration
from tests.hypothesis_profiles import examples

NAMES = ["Trenching", "Tile roof", "Ground mount", "Critter guard"]
MODES = {
    "off": {},
    "non_exclusive": {"data_sync_enabled": True},
    "flexible": {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
    "strict": {"is_exclusive": True, "data_sync_enabled": True},
}
counter = itertools.count()

#: Mostly a few names that meet each other often; sometimes any name a database can store.
names = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(lambda name: f"  {name.upper()}"),
    st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\x00"),
        min_size=1,
        max_size=10,
    ).filter(lambda name: normalise_part(name) != ""),
)
amounts = st.integers(min_value=0, max_value=50).map(Decimal)
picks = st.integers(min_value=0, max_value=10)


def _key(name: str) -> str:
    return normalise_part(name)


def taken(organization, name: str) -> bool:
    return Adder.objects.filter(organization=organization, normalised_key=_key(name)).exists()


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        n = next(counter)
        self.upstream = Organization.objects.create(name=f"Upstream {n}", slug=f"up-{n}")
        self.partner = Organization.objects.create(name=f"Partner {n}", slug=f"down-{n}")
        self.partnership = services.create_partnership(
            self.upstream, self.partner, by=None, **MODES["flexible"]
        )
        self.partner_rows: set[int] = set()
        # The partner's own items as the partner left them (pk → values); match may overwrite
        # or archive them, so a strict partnership starts this afresh.
        self.own: dict[int, tuple] = {}

    # Helpers ---------------------------------------------------------------------------

    def upstream_items(self, archived=False):
        manager = Adder.all_objects if archived else Adder.objects
        items = manager.filter(organization=self.upstream)
        if archived:
            items = items.filter(archived_at__isnull=False)
        return list(items.order_by("pk"))

    @staticmethod
    def values(item) -> tuple:
        return (item.name, item.amount, item.pricing, item.archived_at is not None)

    def pick(self, items, index):
        return items[index % len(items)] if items else None

    @property
    def active(self) -> bool:
        self.partnership.refresh_from_db()
        return self.partnership.is_active

    # Channel manager -------------------------------------------------------------------

    @rule(name=names, amount=amounts)
    def upstream_creates(self, name, amount):
        if not taken(self.upstream, name):
            Adder.objects.create(organization=self.upstream, name=name, amount=amount)

    @rule(index=picks, amount=amounts)
    def upstream_changes_amount(self, index, amount):
        item = self.pick(self.upstream_items(), index)
        if item:
            item.amount = amount
            item.save()

    @rule(index=picks, name=names)
    def upstream_renames(self, index, name):
        item = self.pick(self.upstream_items(), index)
        if item and not taken(self.upstream, name):
            item.name = name
            item.save()

    @rule(index=picks)
    def upstream_archives(self, index):
        item = self.pick(self.upstream_items(), index)
        if item:
            item.archive(reason="test")

    @rule(index=picks)
    def upstream_restores(self, index):
        item = self.pick(self.upstream_items(archived=True), index)
        if item:
            with contextlib.suppress(ValidationError):  # a live item holds its name now
                item.restore()

    @rule(index=picks)
    def upstream_deletes(self, index):
        item = self.pick(self.upstream_items(), index)
        if item:
            item.delete()

    @rule(days=st.integers(min_value=1, max_value=365))
    def upstream_changes_expiration(self, days):
        row = ProposalExpiration.objects.get(organization=self.upstream)
        row.days_valid = days
        row.save()

    # Partner (only while its settings are not locked) -----------------------------------

    def unlocked(self) -> bool:
        return not is_locked(self.partner, "adders")

    @precondition(lambda self: self.unlocked())
    @rule(name=names, amount=amounts)
    def partner_creates(self, name, amount):
        if not taken(self.partner, name):
            item = Adder.objects.create(organization=self.partner, name=name, amount=amount)
            self.own[item.pk] = self.values(item)

    @precondition(lambda self: self.unlocked())
    @rule(index=picks, amount=amounts)
    def partner_edits(self, index, amount):
        item = self.pick(
            list(Adder.objects.filter(organization=self.partner).order_by("pk")), index
        )
        if item:
            item.amount = amount
            item.save()
            if item.synced_partnership_id is None:
                self.own[item.pk] = self.values(item)

    @precondition(lambda self: self.unlocked())
    @rule(index=picks)
    def partner_archives(self, index):
        item = self.pick(
            list(Adder.objects.filter(organization=self.partner).order_by("pk")), index
        )
        if item:
            item.archive(reason="not for us")
            if item.pk in self.own:
                self.own[item.pk] = self.values(item)

    # Flags -----------------------------------------------------------------------------

    @rule(mode=st.sampled_from(list(MODES)))
    def change_mode(self, mode):
        if self.active:
            services.update_flags(self.partnership, by=None, **MODES[mode])
            if mode == "strict":
                self.own.clear()

    @rule()
    def end(self):
        if self.active:
            services.end_partnership(self.partnership, by=None)

    @rule(mode=st.sampled_from(list(MODES)))
    def partner_again(self, mode):
        if not self.active:
            self.partnership = services.create_partnership(
                self.upstream, self.partner, by=None, **MODES[mode]
            )
            if mode == "strict":
                self.own.clear()

    # Guarantees ------------------------------------------------------------------------

    @invariant()
    def guarantees_hold(self):
        # Every check that only reads comes first; the repeated run (which writes) is last.
        self.nothing_is_hard_deleted()
        self.no_run_failed()
        self.strict_means_equal()
        self.merge_means_one_copy_each()
        self.own_items_are_untouched_unless_strict()
        self.off_or_ended_means_detached()
        self.a_repeated_run_changes_nothing()

    def nothing_is_hard_deleted(self):
        rows = set(Adder.all_objects.filter(organization=self.partner).values_list("pk", flat=True))
        assert self.partner_rows <= rows
        self.partner_rows = rows

    def no_run_failed(self):
        failed = SyncRun.objects.filter(partnership__downstream=self.partner, status="failed")
        assert not failed.exists(), [run.error for run in failed]

    def a_repeated_run_changes_nothing(self):
        """A run reaches a fixed point: the same run again writes nothing (the partner's
        edits since the last run may give the first one something to do)."""
        if self.active and self.partnership.data_sync_enabled:
            categories = ["adders", "proposal_expiration"]
            engine.run(self.partnership, "change", categories=categories)
            again = engine.run(self.partnership, "change", categories=categories)
            assert again.status == "succeeded", again.error
            written = again.changes.filter(action__in=engine.WRITING_ACTIONS)
            assert not written.exists(), list(written.values("category", "action", "label"))

    def strict_means_equal(self):
        if not (self.active and self.partnership.mode == "strict"):
            return
        upstream = sorted(
            (_key(i.name), i.amount, i.pricing, i.applied_by_default)
            for i in Adder.objects.filter(organization=self.upstream)
        )
        partner_items = list(Adder.objects.filter(organization=self.partner))
        partner = sorted(
            (_key(i.name), i.amount, i.pricing, i.applied_by_default) for i in partner_items
        )
        assert partner == upstream
        assert all(i.synced_partnership_id == self.partnership.pk for i in partner_items)
        assert all(i.sync_state == "synced" for i in partner_items)
        assert (
            ProposalExpiration.objects.get(organization=self.partner).days_valid
            == ProposalExpiration.objects.get(organization=self.upstream).days_valid
        )

    def merge_means_one_copy_each(self):
        if not (self.active and self.partnership.mode in ("non_exclusive", "flexible")):
            return
        plan = engine.preview(self.partnership, "change", categories=["adders"])
        conflicts = {c.upstream.pk for c in plan.changes if c.action == SyncChange.Action.CONFLICT}
        for source in Adder.objects.filter(organization=self.upstream):
            copies = Adder.all_objects.filter(organization=self.partner, synced_from=source)
            live = [c for c in copies if not c.is_archived]
            declined = [c for c in copies if c.is_archived and not c.archived_by_sync]
            if source.pk in conflicts:
                continue
            assert len(live) == 1 or (not live and declined), (source.name, live, declined)

    def own_items_are_untouched_unless_strict(self):
        """Merge, detach and off never change or archive the partner's own items; merge may
        adopt one (link it, content kept), after which it follows the sync like a copy."""
        for pk, values in list(self.own.items()):
            item = Adder.all_objects.get(pk=pk)
            assert self.values(item) == values, (values, self.values(item))
            if item.synced_partnership_id is not None:
                del self.own[pk]

    def off_or_ended_means_detached(self):
        if self.active and self.partnership.data_sync_enabled:
            return
        linked = Adder.objects.filter(
            organization=self.partner, synced_partnership=self.partnership
        )
        assert not linked.exists()


@pytest.mark.django_db(transaction=True)
def test_sync_guarantees_hold_for_random_sequences():
    machine_settings = settings(
        max_examples=examples(10),  # each a sequence of 20 steps
        stateful_step_count=20,
        deadline=None,
    )
    run_state_machine_as_test(SyncMachine, settings=machine_settings)
    assert Partnership.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_guarantees_fail_when_an_edit_starts_no_sync():
    """With the trigger of the channel manager's adders disconnected, its edits never reach
    the partner: the invariants must say so (before the repeated run repairs anything)."""
    uids = {signal: f"settings_sync.adders.{id(signal)}" for signal in (post_save, post_delete)}
    for signal, uid in uids.items():
        assert signal.disconnect(sender=Adder, dispatch_uid=uid)
    try:
        with pytest.raises(AssertionError):
            run_state_machine_as_test(
                SyncMachine,
                settings=settings(
                    max_examples=100,
                    stateful_step_count=20,
                    deadline=None,
                    phases=[Phase.generate],  # a failure is enough; no need to shrink it
                    database=None,
                ),
            )
    finally:
        from settings_sync import receivers

        for signal, uid in uids.items():
            signal.connect(receivers.on_setting_saved, sender=Adder, dispatch_uid=uid)
