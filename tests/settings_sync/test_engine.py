"""The sync engine end to end: every cell of the policy table (docs/design.md §4.2) through the
services, item by item; the item rules of docs/design.md §5; preview against run; query counts.
The life of a run (skipped, failed, serialised, delivered twice) is in test_runs.py and
test_tasks.py."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import Image

from organizations.models import License, Organization
from partnerships import services
from settings_sync import engine, registry
from settings_sync.models import SyncChange, SyncRun
from settings_sync.project.models import Adder, DefaultCosts, Equipment
from settings_sync.proposal.models import ProposalExpiration
from settings_sync.usage.models import Persona
from tests.factories import LicenseFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

FLAGS = {
    "non_exclusive": {"data_sync_enabled": True},
    "flexible": {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
    "strict": {"is_exclusive": True, "data_sync_enabled": True},
}
MERGE_MODES = ["non_exclusive", "flexible"]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (250, 160, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def adder(organization, name, amount, **extra) -> Adder:
    return Adder.objects.create(organization=organization, name=name, amount=amount, **extra)


@pytest.fixture
def channel_manager(db):
    helios = OrganizationFactory(name="Helios Energy Partners")
    adder(helios, "Trenching", 1250)
    adder(helios, "Tile roof", Decimal("0.35"), pricing="per_watt")
    Equipment.objects.create(
        organization=helios, kind="module", manufacturer="REC", model="Alpha 410", unit_cost=265
    )
    DefaultCosts.objects.filter(organization=helios).update(module_cost_per_watt=Decimal("0.42"))
    ProposalExpiration.objects.filter(organization=helios).update(days_valid=21)
    helios.logo.save("helios.png", ContentFile(png()))
    LicenseFactory(organization=helios, number="1045822", jurisdiction="California")
    return helios


@pytest.fixture
def partner(db):
    sunrise = OrganizationFactory(name="Sunrise Solar")
    adder(sunrise, "Tree removal", 900)
    adder(sunrise, " tile ROOF ", Decimal("0.50"), pricing="per_watt")  # same natural key
    return sunrise


@pytest.fixture
def immediately(django_capture_on_commit_callbacks):
    """Run what would run on commit (domain events, then the sync tasks)."""

    def run(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return run


def live(model, organization):
    return list(model.objects.filter(organization=organization).order_by("pk"))


def by_name(organization) -> dict[str, Adder]:
    return {item.name.strip().casefold(): item for item in live(Adder, organization)}


def last_run(partnership) -> SyncRun:
    return SyncRun.objects.filter(partnership=partnership).order_by("-pk").first()


def link(immediately, channel_manager, partner, mode):
    return immediately(
        services.create_partnership, channel_manager, partner, by=None, **FLAGS[mode]
    )


# invite ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["non_exclusive", "flexible", "strict"])
def test_invite_matches_everything(immediately, channel_manager, mode):
    """invite: collections, singletons and invite-only data all match."""
    invitation = services.invite_organization(
        channel_manager, name="Summit Solar", email="a@example.com", invited_by=None, **FLAGS[mode]
    )
    partnership = immediately(services.accept_invitation, invitation, UserFactory())
    summit = partnership.downstream
    run = last_run(partnership)
    assert (run.event, run.status, run.mode) == ("invite", "succeeded", mode)

    copies = by_name(summit)
    assert set(copies) == {"trenching", "tile roof"}
    for item in copies.values():
        assert item.synced_partnership == partnership
        assert item.sync_state == "synced"
        assert item.synced_from.organization == channel_manager
    assert copies["tile roof"].amount == Decimal("0.35")
    assert live(Equipment, summit)[0].model == "Alpha 410"
    assert DefaultCosts.objects.get(organization=summit).module_cost_per_watt == Decimal("0.42")
    assert ProposalExpiration.objects.get(organization=summit).days_valid == 21
    summit.refresh_from_db()
    assert summit.logo
    assert summit.logo.name != channel_manager.logo.name  # a file of its own
    assert summit.logo.read() == png()
    license_ = License.objects.get(organization=summit)
    assert (license_.number, license_.jurisdiction) == ("1045822", "California")
    assert not hasattr(license_, "synced_partnership")  # copied as its own, never synced
    # ... but marked with where it came from, like the logo.
    assert license_.copied_from_organization == channel_manager
    assert summit.logo_copied_from == channel_manager


def test_invite_without_sync_copies_nothing(immediately, channel_manager):
    invitation = services.invite_organization(
        channel_manager, name="Summit Solar", email="a@example.com", invited_by=None
    )
    partnership = immediately(services.accept_invitation, invitation, UserFactory())
    assert not Adder.objects.filter(organization=partnership.downstream).exists()
    assert not SyncRun.objects.exists()


# link / resync ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MERGE_MODES)
def test_link_merges_collections_and_leaves_singletons(immediately, channel_manager, partner, mode):
    partnership = link(immediately, channel_manager, partner, mode)
    items = by_name(partner)
    # Created: Trenching. Adopted, own content kept: Tile roof. Untouched: Tree removal.
    assert items["trenching"].sync_state == "synced"
    assert items["tile roof"].synced_partnership == partnership
    assert items["tile roof"].amount == Decimal("0.50")
    assert items["tile roof"].sync_state == "diverged"
    assert items["tree removal"].synced_partnership is None
    assert items["tree removal"].amount == 900
    assert DefaultCosts.objects.get(organization=partner).module_cost_per_watt == Decimal("0.45")
    assert ProposalExpiration.objects.get(organization=partner).days_valid == 30
    partner.refresh_from_db()
    assert not partner.logo
    assert not License.objects.filter(organization=partner).exists()
    assert last_run(partnership).counts["adders"] == {"created": 1, "adopted": 1}


def test_link_strict_matches_collections_and_singletons(immediately, channel_manager, partner):
    partnership = link(immediately, channel_manager, partner, "strict")
    items = by_name(partner)
    assert set(items) == {"trenching", "tile roof"}
    assert items["tile roof"].amount == Decimal("0.35")  # adopted and overwritten
    assert all(item.sync_state == "synced" for item in items.values())
    archived = Adder.all_objects.get(organization=partner, name="Tree removal")
    assert archived.is_archived
    assert archived.archived_by_sync
    assert "not among Helios Energy Partners" in archived.archive_reason
    assert DefaultCosts.objects.get(organization=partner).module_cost_per_watt == Decimal("0.42")
    assert ProposalExpiration.objects.get(organization=partner).days_valid == 21
    partner.refresh_from_db()
    assert not partner.logo  # invite-only: none on link
    changes = SyncChange.objects.filter(run=last_run(partnership), category="adders")
    adopted = changes.get(action="adopted")
    assert Decimal(adopted.before["amount"]) == Decimal("0.50")
    assert Decimal(adopted.after["amount"]) == Decimal("0.35")


def test_request_accepted_links(immediately, channel_manager, partner):
    request = services.request_partnership(channel_manager, partner, by=None, **FLAGS["strict"])
    assert not Adder.objects.filter(organization=partner, synced_partnership__isnull=False)
    partnership = immediately(services.accept_request, request, by=None)
    assert last_run(partnership).event == "link"
    assert set(by_name(partner)) == {"trenching", "tile roof"}


@pytest.mark.parametrize("mode", ["non_exclusive", "flexible", "strict"])
def test_resync_is_link_again_and_repeats_nothing(immediately, channel_manager, partner, mode):
    partnership = link(immediately, channel_manager, partner, mode)
    before = {
        item.pk: item.synced_values() for item in Adder.all_objects.filter(organization=partner)
    }
    again = engine.run(partnership, "resync")
    assert again.status == "succeeded"
    written = {
        action: count
        for counts in again.counts.values()
        for action, count in counts.items()
        if action in engine.WRITING_ACTIONS
    }
    assert written == {}
    after = {
        item.pk: item.synced_values() for item in Adder.all_objects.filter(organization=partner)
    }
    assert after == before


def test_resync_repairs_drift(immediately, channel_manager, partner):
    partnership = link(immediately, channel_manager, partner, "strict")
    # A change that bypassed every signal: queryset update on the partner's copy.
    Adder.objects.filter(organization=partner, name="Trenching").update(amount=1)
    assert Adder.objects.get(organization=partner, name="Trenching").sync_state == "diverged"
    run = engine.run(partnership, "resync")
    assert run.counts["adders"] == {"updated": 1}
    assert by_name(partner)["trenching"].amount == 1250


def test_mode_change_links_under_the_new_mode(immediately, channel_manager, partner):
    partnership = link(immediately, channel_manager, partner, "flexible")
    assert by_name(partner)["tree removal"].synced_partnership is None
    immediately(services.update_flags, partnership, by=None, **FLAGS["strict"])
    run = last_run(partnership)
    assert (run.event, run.mode) == ("link", "strict")
    assert "tree removal" not in by_name(partner)
    assert by_name(partner)["tile roof"].amount == Decimal("0.35")


def test_saving_same_mode_raises_no_event(immediately, channel_manager, partner):
    partnership = link(immediately, channel_manager, partner, "strict")
    runs = SyncRun.objects.count()
    immediately(services.update_flags, partnership, by=None, **FLAGS["strict"])
    assert SyncRun.objects.count() == runs


# change ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MERGE_MODES)
def test_change_merge(immediately, channel_manager, partner, mode):
    partnership = link(immediately, channel_manager, partner, mode)
    trenching = Adder.objects.get(organization=channel_manager, name="Trenching")
    trenching.amount = 1500
    immediately(trenching.save)
    assert by_name(partner)["trenching"].amount == 1500  # synced copy updated
    assert last_run(partnership).event == "change"

    tile = Adder.objects.get(organization=channel_manager, name="Tile roof")
    tile.amount = Decimal("0.40")
    immediately(tile.save)
    assert by_name(partner)["tile roof"].amount == Decimal("0.50")  # diverged: kept
    assert last_run(partnership).counts["adders"] == {"kept_local": 1}

    immediately(adder, channel_manager, "Ground mount", Decimal("0.45"), pricing="per_watt")
    assert "ground mount" in by_name(partner)

    costs = DefaultCosts.objects.get(organization=channel_manager)
    costs.module_cost_per_watt = Decimal("0.99")
    immediately(costs.save)
    assert DefaultCosts.objects.get(organization=partner).module_cost_per_watt == Decimal("0.45")


def test_change_strict_overwrites(immediately, channel_manager, partner):
    link(immediately, channel_manager, partner, "strict")
    Adder.objects.filter(organization=partner, name__iexact="tile roof").update(amount=9)
    tile = Adder.objects.get(organization=channel_manager, name="Tile roof")
    tile.amount = Decimal("0.40")
    immediately(tile.save)
    assert by_name(partner)["tile roof"].amount == Decimal("0.40")
    costs = DefaultCosts.objects.get(organization=channel_manager)
    costs.module_cost_per_watt = Decimal("0.99")
    immediately(costs.save)
    assert DefaultCosts.objects.get(organization=partner).module_cost_per_watt == Decimal("0.99")


def test_change_of_invite_only_data_does_nothing(immediately, channel_manager, partner):
    link(immediately, channel_manager, partner, "strict")
    runs = SyncRun.objects.count()
    immediately(LicenseFactory, organization=channel_manager)
    assert SyncRun.objects.count() == runs
    assert not License.objects.filter(organization=partner).exists()


@pytest.mark.parametrize("how", ["archive", "delete"])
@pytest.mark.parametrize("mode", ["non_exclusive", "strict"])
def test_upstream_removal_archives_synced_and_detaches_diverged(
    immediately, channel_manager, partner, mode, how
):
    partnership = link(immediately, channel_manager, partner, mode)
    for name in ("Trenching", "Tile roof"):
        item = Adder.objects.get(organization=channel_manager, name=name)
        immediately(item.archive if how == "archive" else item.delete)
    partner_items = Adder.all_objects.filter(organization=partner)
    trenching = partner_items.get(name="Trenching")
    assert trenching.is_archived
    assert trenching.archived_by_sync
    tile = partner_items.get(name__icontains="tile roof")
    if mode == "strict":
        assert tile.is_archived  # match archives whatever the channel manager no longer has
    else:
        assert not tile.is_archived  # diverged: kept as the partner's own
        assert tile.synced_partnership is None
    assert last_run(partnership).status == "succeeded"


def test_upstream_restore_restores_the_copy_the_sync_archived(
    immediately, channel_manager, partner
):
    link(immediately, channel_manager, partner, "non_exclusive")
    trenching = Adder.objects.get(organization=channel_manager, name="Trenching")
    immediately(trenching.archive)
    assert "trenching" not in by_name(partner)
    immediately(Adder.all_objects.get(pk=trenching.pk).restore)
    copy = by_name(partner)["trenching"]
    assert copy.synced_from_id == trenching.pk
    assert Adder.all_objects.filter(organization=partner, name="Trenching").count() == 1


def test_copy_declined_by_the_partner_stays_declined_in_merge(
    immediately, channel_manager, partner
):
    partnership = link(immediately, channel_manager, partner, "flexible")
    by_name(partner)["trenching"].archive(reason="We don't trench")
    run = engine.run(partnership, "resync")
    assert run.counts["adders"] == {"kept_local": 2}  # the declined copy and the diverged one
    assert "trenching" not in by_name(partner)
    immediately(services.update_flags, partnership, by=None, **FLAGS["strict"])
    assert "trenching" in by_name(partner)  # match restores it


def test_clash_between_two_channel_managers_is_a_conflict(immediately, channel_manager, partner):
    evergreen = OrganizationFactory(name="Evergreen Distribution")
    adder(evergreen, "Trenching", 999)
    link(immediately, evergreen, partner, "non_exclusive")
    partnership = link(immediately, channel_manager, partner, "non_exclusive")
    conflict = SyncChange.objects.get(run=last_run(partnership), action="conflict")
    assert conflict.label == "Trenching"
    assert "already synced from Evergreen Distribution" in conflict.note
    trenching = by_name(partner)["trenching"]
    assert trenching.amount == 999
    assert trenching.synced_partnership.upstream == evergreen


def test_rename_onto_a_name_the_partner_uses_is_a_conflict(immediately, channel_manager, partner):
    partnership = link(immediately, channel_manager, partner, "non_exclusive")
    trenching = Adder.objects.get(organization=channel_manager, name="Trenching")
    trenching.name = "Tree removal"
    immediately(trenching.save)
    assert SyncChange.objects.get(run=last_run(partnership), action="conflict")
    assert by_name(partner)["tree removal"].amount == 900
    assert by_name(partner)["trenching"].synced_from_id == trenching.pk


def test_rename_onto_a_name_an_edited_copy_keeps_is_a_conflict(
    immediately, channel_manager, partner
):
    """A copy edited locally keeps its values in merge, its name included: another copy
    renamed onto that name is reported and left alone (the run used to fail on the unique
    name)."""
    partnership = link(immediately, channel_manager, partner, "non_exclusive")
    upstream = by_name(channel_manager)
    edited = by_name(partner)["tile roof"]
    edited.amount = Decimal("0.75")
    edited.save()
    upstream["tile roof"].name = "Tile roof (concrete)"
    immediately(upstream["tile roof"].save)  # the edited copy keeps "Tile roof"
    upstream["trenching"].name = "Tile roof"
    immediately(upstream["trenching"].save)
    run = last_run(partnership)
    assert run.status == "succeeded", run.error
    conflict = run.changes.get(action="conflict")
    assert conflict.label == "Tile roof"
    assert "already has another item" in conflict.note
    copies = by_name(partner)
    assert copies["tile roof"].synced_from_id == upstream["tile roof"].pk  # edited, untouched
    assert copies["tile roof"].amount == Decimal("0.75")
    assert copies["trenching"].synced_from_id == upstream["trenching"].pk  # not renamed


def test_a_copy_left_unrenamed_keeps_its_name_from_new_items(immediately, channel_manager, partner):
    """A copy that could not be renamed still holds its old name: a new upstream item of
    that name is reported, not copied onto it."""
    partnership = link(immediately, channel_manager, partner, "non_exclusive")
    trenching = by_name(channel_manager)["trenching"]
    trenching.name = "Tree removal"  # the partner's own item has this name
    immediately(trenching.save)
    immediately(adder, channel_manager, "Trenching", 1100)
    run = last_run(partnership)
    assert run.status == "succeeded", run.error
    # The rename was reported by its own run, and is not again while neither side changes.
    assert not run.changes.filter(action="conflict", label="Tree removal").exists()
    renames = SyncChange.objects.filter(run__partnership=partnership, label="Tree removal")
    assert renames.filter(action="conflict").count() == 1
    conflict = run.changes.get(action="conflict", label="Trenching")  # the new item
    assert conflict.note.endswith("nothing was added.")
    copies = by_name(partner)
    assert copies["trenching"].synced_from_id == trenching.pk
    assert copies["trenching"].amount == 1250
    assert copies["tree removal"].synced_partnership is None


def test_names_swapped_upstream_are_swapped_in_one_run(immediately, channel_manager, partner):
    """Two copies trade names in one run (one statement, whatever order its rows take)."""
    partnership = link(immediately, channel_manager, partner, "strict")
    upstream = by_name(channel_manager)

    def swap():
        with transaction.atomic():  # one commit: one change run
            upstream["trenching"].name = "Swapping"
            upstream["trenching"].save()
            upstream["tile roof"].name = "Trenching"
            upstream["tile roof"].save()
            upstream["trenching"].name = "Tile roof"
            upstream["trenching"].save()

    immediately(swap)
    run = last_run(partnership)
    assert run.status == "succeeded", run.error
    assert run.counts["adders"] == {"updated": 2}
    names = {item.synced_from_id: item.name for item in live(Adder, partner)}
    assert names[upstream["trenching"].pk] == "Tile roof"
    assert names[upstream["tile roof"].pk] == "Trenching"
    assert not Adder.all_objects.filter(name__startswith=engine.PLACEHOLDER).exists()


# unlink ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sync_off", "end"])
def test_unlink_detaches_and_deletes_nothing(immediately, channel_manager, partner, how):
    partnership = link(immediately, channel_manager, partner, "strict")
    rows = Adder.all_objects.filter(organization=partner).count()
    if how == "end":
        immediately(services.end_partnership, partnership, by=None)
    else:
        immediately(services.update_flags, partnership, by=None)
    run = last_run(partnership)
    assert (run.event, run.mode, run.status) == ("unlink", "strict", "succeeded")
    assert Adder.all_objects.filter(organization=partner).count() == rows
    assert not Adder.all_objects.filter(organization=partner, synced_partnership__isnull=False)
    assert set(by_name(partner)) == {"trenching", "tile roof"}
    assert run.counts["adders"] == {"detached": 2}
    # Singletons keep their values; the lock is lifted.
    assert DefaultCosts.objects.get(organization=partner).module_cost_per_watt == Decimal("0.42")
    from settings_sync.locks import is_locked

    assert not is_locked(partner, "adders")


# preview and run agree ------------------------------------------------------------------


@pytest.mark.parametrize("event", ["link", "resync", "change", "unlink"])
@pytest.mark.parametrize("mode", ["non_exclusive", "flexible", "strict"])
def test_preview_predicts_run(immediately, channel_manager, partner, event, mode):
    from partnerships.models import Partnership

    if event == "link":
        partnership = services.create_partnership(  # no on_commit: nothing ran yet
            channel_manager, partner, by=None, **FLAGS[mode]
        )
    else:
        partnership = link(immediately, channel_manager, partner, mode)
        # Give the run something to do.
        Adder.objects.filter(organization=channel_manager, name="Trenching").update(amount=1)
        adder(channel_manager, "Ground mount", 2)
        Adder.objects.filter(organization=channel_manager, name="Tile roof").delete()
        if event == "unlink":
            Partnership.objects.filter(pk=partnership.pk).update(
                data_sync_enabled=False, allow_downstream_edit=False
            )
            partnership.refresh_from_db()
    plan = engine.preview(partnership, event, mode_before=mode)
    before = {item.pk: item.synced_values() for item in Adder.all_objects.all()}
    assert {item.pk: item.synced_values() for item in Adder.all_objects.all()} == before
    run = engine.run(partnership, event, mode_before=mode)
    assert run.status == "succeeded"
    assert {key: counts for key, counts in plan.summary().items() if counts} == run.counts


def test_preview_of_an_unsaved_partnership_and_a_new_organization(channel_manager, partner):
    from partnerships.models import Partnership

    unsaved = Partnership(upstream=channel_manager, downstream=partner, **FLAGS["strict"])
    summary = engine.preview(unsaved, "link").summary()
    assert summary["adders"] == {"adopted": 1, "created": 1, "archived": 1}
    invited = Partnership(
        upstream=channel_manager, downstream=Organization(name="New"), **FLAGS["flexible"]
    )
    summary = engine.preview(invited, "invite").summary()
    assert summary["adders"] == {"created": 2}
    assert summary["licenses"] == {"created": 1}
    assert summary["logo"] == {"created": 1}
    assert not SyncRun.objects.exists()


# performance and robustness ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["non_exclusive", "strict"])
def test_queries_do_not_grow_with_items(channel_manager, mode):
    def queries_for(count: int) -> int:
        upstream = OrganizationFactory()
        for category_key, factory in [
            ("adders", lambda n: Adder(organization=upstream, name=f"Adder {n}", amount=n)),
            (
                "personas",
                lambda n: Persona(organization=upstream, name=f"Household {n}", annual_kwh=n + 1),
            ),
        ]:
            registry.get(category_key).model.objects.bulk_create(factory(n) for n in range(count))
        downstream = OrganizationFactory()
        partnership = services.create_partnership(upstream, downstream, by=None, **FLAGS[mode])
        with CaptureQueriesContext(connection) as first:
            engine.run(partnership, "link")
        assert Adder.objects.filter(organization=downstream).count() == count
        Adder.objects.filter(organization=upstream).update(amount=7)  # every copy to update
        with CaptureQueriesContext(connection) as second:
            engine.run(partnership, "resync")
        assert set(
            Adder.objects.filter(organization=downstream).values_list("amount", flat=True)
        ) == {7}
        return len(first.captured_queries), len(second.captured_queries)

    assert queries_for(10) == queries_for(1000)


def test_a_fan_out_costs_the_same_queries_for_3_and_40_partners(immediately):
    """One upstream change into many partners is applied in batches that read and write
    each category once for all their partners; each partner still gets its own run."""

    def fan_out(partners: int) -> int:
        upstream = OrganizationFactory()
        source = adder(upstream, "Trenching", 1250)
        adder(upstream, "Tile roof", Decimal("0.35"))
        partnerships = [
            immediately(
                services.create_partnership,
                upstream,
                OrganizationFactory(),
                by=None,
                **FLAGS["non_exclusive"],
            )
            for _ in range(partners)
        ]
        edited = Adder.objects.get(synced_partnership=partnerships[0], synced_from=source)
        edited.amount = 1  # this partner keeps its own amount (merge)
        edited.save()
        source.amount = 1400
        with CaptureQueriesContext(connection) as queries:
            immediately(source.save)
        runs = SyncRun.objects.filter(partnership__in=partnerships, event="change")
        assert runs.count() == partners
        assert set(runs.values_list("status", flat=True)) == {"succeeded"}
        assert runs.get(partnership=partnerships[0]).counts == {"adders": {"kept_local": 1}}
        for partnership in partnerships[1:]:
            assert runs.get(partnership=partnership).counts == {"adders": {"updated": 1}}
            copy = Adder.objects.get(synced_partnership=partnership, synced_from=source)
            assert (copy.amount, copy.sync_state) == (1400, "synced")
        assert Adder.objects.get(pk=edited.pk).amount == 1
        return len(queries.captured_queries)

    assert fan_out(3) == fan_out(40)


def partner_of(immediately, upstream, mode):
    return immediately(
        services.create_partnership, upstream, OrganizationFactory(), by=None, **FLAGS[mode]
    )


@pytest.mark.parametrize("strict_first", [True, False])
def test_a_fan_out_into_strict_and_merge_partners_applies_each_outcome(immediately, strict_first):
    """One batch holds partners with different outcomes for a category (a singleton change:
    match for strict, none for merge); each partner gets its own, whatever the order."""
    upstream = OrganizationFactory()
    modes = ["strict", "flexible"] if strict_first else ["flexible", "strict"]
    partners = {mode: partner_of(immediately, upstream, mode) for mode in modes}
    costs = DefaultCosts.objects.get(organization=upstream)
    costs.module_cost_per_watt = Decimal("0.99")
    immediately(costs.save)
    strict = DefaultCosts.objects.get(organization=partners["strict"].downstream)
    assert strict.module_cost_per_watt == Decimal("0.99")
    assert last_run(partners["strict"]).counts == {"default_costs": {"updated": 1}}
    flexible = DefaultCosts.objects.get(organization=partners["flexible"].downstream)
    assert flexible.module_cost_per_watt != Decimal("0.99")


def test_renames_and_restores_fanned_out_leave_no_placeholder(immediately):
    """Items moved aside for a moment (several renamed or restored in one statement) get
    their names back, also when the name itself did not change."""
    upstream = OrganizationFactory()
    module = Equipment.objects.create(
        organization=upstream, kind="module", manufacturer="REC", model="Alpha 410", unit_cost=265
    )
    trenching, tile_roof = adder(upstream, "Trenching", 1250), adder(upstream, "Tile roof", 1)
    partnerships = [partner_of(immediately, upstream, "non_exclusive") for _ in range(2)]
    module.kind = "battery"  # only part of the key changes
    immediately(module.save)

    def both(method, **kwargs):
        with transaction.atomic():
            for item in Adder.all_objects.filter(pk__in=[trenching.pk, tile_roof.pk]):
                getattr(item, method)(**kwargs)

    immediately(both, "archive", reason="test")
    immediately(both, "restore")
    for partnership in partnerships:
        copy = Equipment.objects.get(organization=partnership.downstream)
        assert (copy.kind, copy.model) == ("battery", "Alpha 410")
        names = Adder.objects.filter(organization=partnership.downstream)
        assert sorted(names.values_list("name", flat=True)) == ["Tile roof", "Trenching"]
    assert not Adder.all_objects.filter(name__startswith=engine.PLACEHOLDER).exists()
    assert not Equipment.all_objects.filter(model__startswith=engine.PLACEHOLDER).exists()
