"""Sync profiles (docs/design.md §12.3): saved, archived, previewed over many partners without
writing, and applied in one batch of runs."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from partnerships.models import Partnership
from settings_sync import overrides, previews, profiles
from settings_sync.models import CategoryOverride, ProfileAssignment, SyncBatch, SyncRun
from settings_sync.project.models import Adder
from tests.factories import AdderFactory, OrganizationFactory, make_partnership

pytestmark = pytest.mark.django_db

STRICT = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": False}
NON_EXCLUSIVE = {"is_exclusive": False, "data_sync_enabled": True, "allow_downstream_edit": False}


@pytest.fixture
def strict_profile(channel_manager):
    return profiles.save_profile(
        channel_manager,
        name="Approved equipment only",
        flags=STRICT,
        values={"adders": "flexible", "proposal_email": "off"},
    )


def partners(channel_manager, count: int, *, own_adders: bool = True, **flags):
    made = []
    for n in range(count):
        downstream = OrganizationFactory()
        if own_adders:
            AdderFactory(organization=downstream, name="Trenching", amount=n)
            AdderFactory(organization=downstream, name=f"Own {n}", amount=n)
        made.append(make_partnership(channel_manager, downstream, **(flags or NON_EXCLUSIVE)))
    return made


class TestSaving:
    def test_a_profile_keeps_only_what_is_not_follow(self, strict_profile):
        assert strict_profile.overrides == {"adders": "flexible", "proposal_email": "off"}
        assert strict_profile.mode == "strict"

    @pytest.mark.parametrize(
        ("flags", "values", "message"),
        [
            (NON_EXCLUSIVE, {"adders": "strict"}, "Flexible and Strict can only be chosen"),
            (STRICT, {"logo": "strict"}, "Logo is copied once"),
            (STRICT, {"payroll": "off"}, "is not a synced category"),
            (
                {"is_exclusive": False, "data_sync_enabled": False, "allow_downstream_edit": True},
                {},
                "Allow Downstream to Edit",
            ),
        ],
    )
    def test_bad_profiles_are_refused(self, channel_manager, flags, values, message):
        with pytest.raises(ValidationError, match=message):
            profiles.save_profile(channel_manager, name="Bad", flags=flags, values=values)
        assert not channel_manager.sync_profiles.exists()

    def test_names_are_unique_among_live_profiles(self, channel_manager, strict_profile):
        with pytest.raises(ValidationError, match="already have a sync profile with this name"):
            profiles.save_profile(
                channel_manager, name="approved equipment ONLY", flags=STRICT, values={}
            )
        profiles.archive_profile(strict_profile)
        profiles.save_profile(
            channel_manager, name="Approved equipment only", flags=STRICT, values={}
        )


class TestFleetPreview:
    def test_it_adds_up_what_would_happen_and_writes_nothing(self, channel_manager, strict_profile):
        AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
        AdderFactory(organization=channel_manager, name="Tile roof", amount=35)
        targets = partners(channel_manager, 3)
        already = make_partnership(channel_manager, OrganizationFactory(), **STRICT)
        overrides.set_override(already, "adders", "flexible")
        overrides.set_override(already, "proposal_email", "off")
        before = (Adder.all_objects.count(), SyncRun.objects.count())
        found = Partnership.objects.filter(pk__in=[p.pk for p in [*targets, already]])
        fleet = previews.fleet_preview(
            strict_profile, list(found.select_related("upstream", "downstream"))
        )
        assert (Adder.all_objects.count(), SyncRun.objects.count()) == before
        assert not CategoryOverride.objects.exclude(partnership=already).exists()
        assert fleet.partners == 4
        assert fleet.changing_mode == 3  # the fourth is already in the profile's state
        # non_exclusive → strict with adders flexible: adders merge (own Trenching adopted,
        # Tile roof created), everything else match.
        assert fleet.totals["adopted"] == 3
        assert fleet.totals["created"] == 3
        assert fleet.totals["archived"] == 0
        assert [e.partnership.pk for e in fleet.most_affected] == sorted(
            [p.pk for p in targets], key=lambda pk: Partnership.objects.get(pk=pk).downstream.name
        )

    def test_queries_are_constant_per_batch(self, channel_manager, strict_profile, settings):
        AdderFactory(organization=channel_manager, name="Trenching", amount=1250)

        def queries(count):
            made = partners(channel_manager, count)
            listed = list(
                Partnership.objects.filter(pk__in=[p.pk for p in made]).select_related(
                    "upstream", "downstream"
                )
            )
            with CaptureQueriesContext(connection) as captured:
                fleet = previews.fleet_preview(strict_profile, listed)
            assert fleet.totals["adopted"] == count
            return len(captured.captured_queries)

        assert queries(3) == queries(15)


class TestApplying:
    def test_one_batch_of_runs_and_the_partners_follow_the_profile(
        self, channel_manager, strict_profile, django_capture_on_commit_callbacks
    ):
        AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
        targets = partners(channel_manager, 4)
        with django_capture_on_commit_callbacks(execute=True):
            batch, refused = profiles.apply_profile(
                strict_profile, [p.pk for p in targets], by=None
            )
        assert refused == []
        runs = SyncRun.objects.filter(batch=batch)
        # Each partner: a link into strict, and proposal email detached (its override is off).
        assert sorted((r.event, str(r.categories)) for r in runs) == [
            *[("link", "None")] * 4,
            *[("unlink", "['proposal_email']")] * 4,
        ]
        assert set(runs.values_list("status", flat=True)) == {"succeeded"}
        for partnership in Partnership.objects.filter(pk__in=[p.pk for p in targets]):
            assert partnership.mode == "strict"
            assert overrides.effective_mode(partnership, "adders") == "flexible"
            assert overrides.effective_mode(partnership, "proposal_email") == "off"
            assert profiles.profile_of(partnership) == strict_profile
        assert Adder.objects.filter(synced_partnership__in=targets).count() == 4

    def test_a_partner_that_cannot_take_it_is_named_and_left_alone(
        self, channel_manager, strict_profile
    ):
        (target,) = partners(channel_manager, 1)
        make_partnership(OrganizationFactory(), target.downstream, data_sync_enabled=True)
        _, refused = profiles.apply_profile(strict_profile, [target.pk])
        assert [(p.pk, "exclusive" in reason) for p, reason in refused] == [(target.pk, True)]
        target.refresh_from_db()
        assert target.mode == "non_exclusive"
        assert not ProfileAssignment.objects.exists()

    def test_another_channel_managers_partner_is_refused_whole(
        self, channel_manager, strict_profile
    ):
        (mine,) = partners(channel_manager, 1)
        (theirs,) = partners(OrganizationFactory(), 1)
        with pytest.raises(ValidationError, match="not your active partners"):
            profiles.apply_profile(strict_profile, [mine.pk, theirs.pk])
        assert not SyncBatch.objects.exists()
        mine.refresh_from_db()
        assert mine.mode == "non_exclusive"

    def test_a_partnership_ended_since_the_preview_is_refused_whole(
        self, channel_manager, strict_profile
    ):
        from partnerships import services

        first, ended = partners(channel_manager, 2)
        services.end_partnership(ended, by=None)
        with pytest.raises(ValidationError, match="not your active partners"):
            profiles.apply_profile(strict_profile, [first.pk, ended.pk])
        assert not SyncBatch.objects.exists()
        first.refresh_from_db()
        assert first.mode == "non_exclusive"

    def test_two_overlapping_applies_both_succeed_in_order(
        self, channel_manager, strict_profile, django_capture_on_commit_callbacks
    ):
        loose = profiles.save_profile(
            channel_manager, name="Loose", flags=NON_EXCLUSIVE, values={"equipment": "off"}
        )
        targets = partners(channel_manager, 3, own_adders=False)
        with django_capture_on_commit_callbacks(execute=True):
            first, _ = profiles.apply_profile(strict_profile, [p.pk for p in targets[:2]])
            second, _ = profiles.apply_profile(loose, [p.pk for p in targets[1:]])
        assert first.runs.count() == 4  # a link and proposal email's unlink each
        assert second.runs.count() == 3  # mode changes, and equipment detached
        states = {
            p.pk: (p.mode, overrides.effective_mode(p, "equipment"))
            for p in Partnership.objects.filter(pk__in=[t.pk for t in targets])
        }
        assert states == {
            targets[0].pk: ("strict", "strict"),
            targets[1].pk: ("non_exclusive", "off"),
            targets[2].pk: ("non_exclusive", "off"),
        }
        assert profiles.profile_of(targets[1]) == loose
        history = SyncRun.objects.filter(partnership=targets[1]).order_by("pk")
        assert {run.batch_id for run in history} >= {first.pk, second.pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_applying_profiles_to_overlapping_partners_at_once():
    """Both applies succeed, one after the other on each partner they share: every partner
    ends wholly in one profile's state, follows that profile, and its history holds both."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tests.settings_sync.concurrency import TIMEOUT, in_thread

    channel_manager = OrganizationFactory()
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    targets = partners(
        channel_manager, 6, own_adders=False, **{**STRICT, "allow_downstream_edit": True}
    )
    tight = profiles.save_profile(
        channel_manager, name="Tight", flags=STRICT, values={"equipment": "off"}
    )
    loose = profiles.save_profile(channel_manager, name="Loose", flags=NON_EXCLUSIVE, values={})
    start = threading.Barrier(2, timeout=TIMEOUT)

    def apply(profile, chosen):
        start.wait()
        return profiles.apply_profile(profile, [p.pk for p in chosen])

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = in_thread(pool, apply, tight, targets[:4])
        second = in_thread(pool, apply, loose, targets[2:])
        (tight_batch, tight_refused), (loose_batch, loose_refused) = (
            first.result(TIMEOUT),
            second.result(TIMEOUT),
        )
    assert tight_refused == loose_refused == []
    states = {"Tight": ("strict", "off"), "Loose": ("non_exclusive", "non_exclusive")}
    for partnership in Partnership.objects.filter(pk__in=[p.pk for p in targets]):
        followed = profiles.profile_of(partnership)
        state = (partnership.mode, overrides.effective_mode(partnership, "equipment"))
        assert state == states[followed.name], partnership
        batches = set(
            SyncRun.objects.filter(partnership=partnership).values_list("batch", flat=True)
        )
        if partnership.pk in {p.pk for p in targets[2:4]}:
            assert {tight_batch.pk, loose_batch.pk} <= batches
    assert {profiles.profile_of(p).name for p in targets[:2]} == {"Tight"}
    assert {profiles.profile_of(p).name for p in targets[4:]} == {"Loose"}
    # None failed; a run made stale by the other apply (a detach of a category on again) is
    # skipped, as queued runs are (docs/design.md §12.2, rule O5).
    assert set(SyncRun.objects.values_list("status", flat=True)) <= {"succeeded", "skipped"}


def test_a_partnership_created_directly_reads_no_profile_offer(django_capture_on_commit_callbacks):
    """Only an invitation or a request can name a profile: a partnership a member of staff
    creates starts without asking for an offer (one transaction fewer when linking)."""
    from partnerships import services as partnership_services
    from settings_sync.models import ProfileOffer

    upstream, downstream = OrganizationFactory(), OrganizationFactory()
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        partnership_services.create_partnership(upstream, downstream, by=None)
    table = f'"{ProfileOffer._meta.db_table}"'
    assert not [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    assert not ProfileAssignment.objects.exists()
