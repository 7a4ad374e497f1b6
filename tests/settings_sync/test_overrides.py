"""Per-category overrides (docs/design.md §12): the effective mode, its prerequisites, the runs
an override raises, and every combination of flags, override and event against the policy table."""

from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partnerships import services
from settings_sync import engine, overrides, policy, registry, status
from settings_sync.locks import is_locked, lock_for
from settings_sync.models import CategoryOverride, SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, MembershipFactory, OrganizationFactory, make_partnership
from tests.settings_sync import catalogue_data as data
from tests.settings_sync.test_policy import POLICY_TABLE

pytestmark = pytest.mark.django_db

FLAGS = {
    "off": {"is_exclusive": True, "data_sync_enabled": False, "allow_downstream_edit": False},
    "non_exclusive": {
        "is_exclusive": False,
        "data_sync_enabled": True,
        "allow_downstream_edit": False,
    },
    "flexible": {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True},
    "strict": {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": False},
}
OVERRIDES = ("follow", "off", "flexible", "strict")
# (partnership's mode, override) → effective mode, written out from docs/design.md §12.1.
EFFECTIVE = {
    ("off", "follow"): "off",
    ("off", "off"): "off",
    ("off", "flexible"): "off",
    ("off", "strict"): "off",
    ("non_exclusive", "follow"): "non_exclusive",
    ("non_exclusive", "off"): "off",
    ("non_exclusive", "flexible"): "non_exclusive",  # kept, no effect
    ("non_exclusive", "strict"): "non_exclusive",  # kept, no effect
    ("flexible", "follow"): "flexible",
    ("flexible", "off"): "off",
    ("flexible", "flexible"): "flexible",
    ("flexible", "strict"): "strict",
    ("strict", "follow"): "strict",
    ("strict", "off"): "off",
    ("strict", "flexible"): "flexible",
    ("strict", "strict"): "strict",
}
SYNCING = ("non_exclusive", "flexible", "strict")
INVITE_ONLY = [c.key for c in registry.all() if c.kind == "invite_only"]


def expected_outcome(effective: str, event: str, kind: str) -> str:
    if effective == "off":
        return "none"
    return POLICY_TABLE[(kind, event)][SYNCING.index(effective)]


def partnership_with(mode: str, value: str, *, upstream=None):
    """A partnership whose every category has ``value`` (set while the flags allowed it), then
    brought to ``mode``'s flags. Invite-only categories refuse flexible and strict."""
    partnership = make_partnership(upstream, OrganizationFactory(), **FLAGS["strict"])
    for category in registry.all():
        if category.key in INVITE_ONLY and value in ("flexible", "strict"):
            with pytest.raises(ValidationError):
                overrides.set_override(partnership, category.key, value)
            continue
        overrides.set_override(partnership, category.key, value)
    return services.update_flags(partnership, by=None, **FLAGS[mode])


@pytest.mark.parametrize(
    ("mode", "value", "event"), list(itertools.product(FLAGS, OVERRIDES, policy.EVENTS))
)
def test_every_flags_override_and_event_gives_the_policy_outcome(mode, value, event):
    partnership = partnership_with(mode, value)
    if event == "unlink":
        # Sync being turned off: the preview of those flags, from the mode sync had.
        turned_off = type(partnership).objects.get(pk=partnership.pk)
        turned_off.data_sync_enabled = turned_off.allow_downstream_edit = False
        plan = engine.preview(turned_off, event, mode_before=mode)
    else:
        plan = engine.preview(partnership, event)
    outcomes = plan.outcomes()
    for category in registry.all():
        applied = (
            "follow" if category.key in INVITE_ONLY and value not in ("follow", "off") else value
        )
        effective = EFFECTIVE[(mode, applied)]
        assert overrides.effective_mode(partnership, category.key) == effective, category.key
        assert is_locked(partnership.downstream, category.key) is (
            effective == "strict" and category.kind != "invite_only"
        ), category.key
        if mode == "off" and event != "unlink":
            assert plan.skipped  # nothing runs while Data Sync is off
            continue
        assert outcomes[category.key] == expected_outcome(effective, event, category.kind), (
            category.key
        )


def test_the_table_covers_every_combination():
    assert set(EFFECTIVE) == set(itertools.product(FLAGS, OVERRIDES))
    for (mode, value), effective in EFFECTIVE.items():
        assert overrides.resolve(mode, value) == effective


# Prerequisites and bad input --------------------------------------------------------------


@pytest.fixture
def non_exclusive(channel_manager, partner):
    return make_partnership(channel_manager, partner, **FLAGS["non_exclusive"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("adders", "strict", "Adders: Flexible and Strict can only be chosen"),
        ("adders", "flexible", "Adders: Flexible and Strict can only be chosen"),
        ("adders", "locked", "Adders: choose Follow the partnership, Off, Flexible or Strict."),
        ("financing_products", "off", "is not a synced category"),
        ("payroll", "off", "is not a synced category"),
    ],
)
def test_forged_overrides_are_refused_and_change_nothing(non_exclusive, key, value, message):
    version = non_exclusive.version
    with pytest.raises(ValidationError, match=message):
        overrides.set_override(non_exclusive, key, value)
    assert not CategoryOverride.objects.exists()
    assert SyncRun.objects.count() == 0
    non_exclusive.refresh_from_db()
    assert non_exclusive.version == version


@pytest.mark.parametrize("key", INVITE_ONLY)
@pytest.mark.parametrize("value", ["flexible", "strict"])
def test_invite_only_categories_only_follow_or_are_off(channel_manager, partner, key, value):
    strict = make_partnership(channel_manager, partner, **FLAGS["strict"])
    with pytest.raises(ValidationError, match="can only follow the partnership or be off"):
        overrides.set_override(strict, key, value)
    assert not CategoryOverride.objects.exists()
    overrides.set_override(strict, key, "off")
    assert overrides.effective_mode(strict, key) == "off"


def test_the_database_refuses_what_no_flags_allow(non_exclusive):
    from django.db import IntegrityError, transaction

    for values in [
        {"category": "logo", "value": "strict"},
        {"category": "payroll", "value": "off"},
        {"category": "adders", "value": "locked"},
    ]:
        with pytest.raises(IntegrityError), transaction.atomic():
            CategoryOverride.objects.create(partnership=non_exclusive, **values)
    CategoryOverride.objects.create(partnership=non_exclusive, category="adders", value="off")
    with pytest.raises(IntegrityError), transaction.atomic():
        CategoryOverride.objects.create(partnership=non_exclusive, category="adders", value="off")


def test_an_ended_partnership_keeps_its_overrides(non_exclusive):
    overrides.set_override(non_exclusive, "adders", "off")
    services.end_partnership(non_exclusive, by=None)
    with pytest.raises(ValidationError, match="has ended"):
        overrides.set_override(non_exclusive, "adders", "follow")
    assert CategoryOverride.objects.get().value == "off"


def test_overrides_are_kept_while_data_sync_is_off(channel_manager, partner):
    strict = make_partnership(channel_manager, partner, **FLAGS["flexible"])
    overrides.set_override(strict, "equipment", "strict")
    strict = services.update_flags(strict, by=None, **FLAGS["off"])
    assert overrides.effective_mode(strict, "equipment") == "off"
    assert not is_locked(partner, "equipment")
    with pytest.raises(ValidationError, match="Flexible and Strict can only be chosen"):
        overrides.set_override(strict, "adders", "strict")  # a new one needs sync on
    strict = services.update_flags(strict, by=None, **FLAGS["flexible"])
    assert overrides.effective_mode(strict, "equipment") == "strict"
    assert is_locked(partner, "equipment")
    assert not is_locked(partner, "adders")


def test_a_strict_override_on_a_partnership_made_non_exclusive_is_kept_without_effect(
    channel_manager, partner
):
    partnership = make_partnership(channel_manager, partner, **FLAGS["flexible"])
    overrides.set_override(partnership, "adders", "strict")
    partnership = services.update_flags(partnership, by=None, **FLAGS["non_exclusive"])
    assert overrides.effective_mode(partnership, "adders") == "non_exclusive"
    assert not is_locked(partner, "adders")
    assert CategoryOverride.objects.get().value == "strict"
    overrides.set_override(partnership, "adders", "strict")  # unchanged: still allowed
    with pytest.raises(ValidationError):
        overrides.set_override(partnership, "adders", "flexible")  # a change is not
    partnership = services.update_flags(partnership, by=None, **FLAGS["strict"])
    assert overrides.effective_mode(partnership, "adders") == "strict"


# Locks per category ---------------------------------------------------------------------


def test_one_strict_category_is_locked_the_others_edit_freely(client, channel_manager, partner):
    partnership = make_partnership(channel_manager, partner, **FLAGS["flexible"])
    overrides.set_override(partnership, "equipment", "strict")
    overrides.set_override(partnership, "default_costs", "strict")
    client.force_login(MembershipFactory(organization=partner, role="admin").user)
    assert lock_for(partner, registry.get("equipment")) == partnership
    assert lock_for(partner, registry.get("adders")) is None
    equipment, adders = data.page("equipment"), data.page("adders")
    assert (
        client.post(
            data.url("add", partner, equipment), data.LIST_CASES["equipment"].valid
        ).status_code
        == 403
    )
    assert (
        client.post(data.url("add", partner, adders), data.LIST_CASES["adders"].valid).status_code
        == 302
    )
    page = client.get(data.url("page", partner, equipment)).content.decode()
    assert f"Managed by {channel_manager.name}" in page
    page = client.get(data.url("page", partner, adders)).content.decode()
    assert "Managed by" not in page


def test_a_strict_partnership_can_free_one_category(channel_manager, partner):
    partnership = make_partnership(channel_manager, partner, **FLAGS["strict"])
    overrides.set_override(partnership, "adders", "flexible")
    assert not is_locked(partner, "adders")
    assert is_locked(partner, "equipment")


# Runs raised by an override ---------------------------------------------------------------


@pytest.fixture
def syncing_adders(channel_manager, partner, django_capture_on_commit_callbacks):
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    AdderFactory(organization=partner, name="Tree removal", amount=900)
    with django_capture_on_commit_callbacks(execute=True):
        partnership = make_partnership(channel_manager, partner, **FLAGS["flexible"])
    assert Adder.objects.filter(organization=partner, synced_partnership=partnership).count() == 1
    return partnership


def test_turning_a_category_off_detaches_it_alone(
    syncing_adders, partner, django_capture_on_commit_callbacks
):
    before = SyncRun.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        (queued,) = overrides.set_override(syncing_adders, "adders", "off")
    run = SyncRun.objects.get(pk=queued.pk)
    assert (run.event, run.categories, run.status) == ("unlink", ["adders"], "succeeded")
    assert run.counts == {"adders": {"detached": 1}}
    assert SyncRun.objects.count() == before + 1
    copy = Adder.objects.get(organization=partner, name="Trenching")
    assert copy.synced_partnership_id is None
    assert copy.sync_state == "own"
    # Back on: the category links again under the partnership's mode (the copy is adopted).
    with django_capture_on_commit_callbacks(execute=True):
        (queued,) = overrides.set_override(syncing_adders, "adders", "follow")
    run = SyncRun.objects.get(pk=queued.pk)
    assert (run.event, run.categories, run.mode) == ("link", ["adders"], "flexible")
    assert run.counts == {"adders": {"adopted": 1}}


def test_making_one_category_strict_matches_it(
    syncing_adders, partner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        (queued,) = overrides.set_override(syncing_adders, "adders", "strict")
    run = SyncRun.objects.get(pk=queued.pk)
    assert (run.event, run.mode, run.categories) == ("link", "strict", ["adders"])
    # match: the partner's own is archived; the copy becomes locked, a write (§14.3)
    assert run.counts == {"adders": {"archived": 1, "updated": 1}}
    assert Adder.objects.get(organization=partner, name="Trenching").managed_by_id is not None
    assert not Adder.objects.filter(organization=partner, name="Tree removal").exists()
    assert Adder.all_objects.filter(organization=partner, name="Tree removal").exists()


def test_no_run_when_the_effective_mode_does_not_change(syncing_adders):
    assert overrides.set_override(syncing_adders, "adders", "flexible") == []
    assert overrides.set_override(syncing_adders, "adders", "flexible") == []


def test_a_stale_override_unlink_detaches_nothing(syncing_adders, partner):
    """Queued while off, run after the category was turned on again: skipped."""
    (queued,) = overrides.set_override(syncing_adders, "adders", "off")
    overrides.set_override(syncing_adders, "adders", "follow")
    done = engine.execute(queued)
    assert done.status == "skipped"
    copy = Adder.objects.get(organization=partner, name="Trenching")
    assert copy.synced_partnership_id == syncing_adders.pk


def test_turning_sync_off_detaches_what_the_override_had_already(
    syncing_adders, partner, django_capture_on_commit_callbacks
):
    """An override unlink queued, then sync turned off before it ran: still detached."""
    (queued,) = overrides.set_override(syncing_adders, "adders", "off")
    services.update_flags(syncing_adders, by=None, **FLAGS["off"])
    assert engine.execute(queued).status == "succeeded"
    copy = Adder.objects.get(organization=partner, name="Trenching")
    assert copy.synced_partnership_id is None


# Drift and batches ------------------------------------------------------------------------


def test_a_category_that_is_off_misses_nothing(syncing_adders, channel_manager):
    AdderFactory(organization=channel_manager, name="Tile roof", amount=35)
    assert status.statuses([syncing_adders])[syncing_adders.pk].missing == 1
    CategoryOverride.objects.create(partnership=syncing_adders, category="adders", value="off")
    assert status.statuses([syncing_adders])[syncing_adders.pk].missing == 0


def test_previewing_many_partners_reads_their_overrides_once(channel_manager):
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)

    def queries(count: int) -> int:
        partnerships = []
        for n in range(count):
            partnership = make_partnership(
                channel_manager, OrganizationFactory(), **FLAGS["strict"]
            )
            overrides.set_override(partnership, "adders", ["off", "flexible"][n % 2])
            partnerships.append(
                type(partnership)
                .objects.select_related("upstream", "downstream")
                .get(pk=partnership.pk)
            )
        with CaptureQueriesContext(connection) as captured:
            plans = engine.preview_many(partnerships, "resync")
        for n, plan in enumerate(plans):
            assert plan.outcomes()["adders"] == ["none", "merge"][n % 2]
            assert plan.outcomes()["equipment"] == "match"
        return len(captured.captured_queries)

    assert queries(3) == queries(12)


def test_a_change_reaches_no_partner_whose_category_is_off(
    syncing_adders, channel_manager, django_capture_on_commit_callbacks
):
    overrides.set_override(syncing_adders, "equipment", "off")  # another category: no effect
    with django_capture_on_commit_callbacks(execute=True):
        AdderFactory(organization=channel_manager, name="Tile roof", amount=35)
    assert SyncRun.objects.filter(event="change").count() == 1
    overrides.set_override(syncing_adders, "adders", "off")
    with django_capture_on_commit_callbacks(execute=True):
        AdderFactory(organization=channel_manager, name="Skylight", amount=35)
    assert SyncRun.objects.filter(event="change").count() == 1
