"""Predict, watch and repair, through the pages: previews, the predictor, history, run pages,
restore and retry, drift figures, resync and resync-all with their progress."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from organizations.models import Organization
from partnerships import services
from partnerships.models import Partnership
from settings_sync import drift_counts, engine, policy, registry, sync_views
from settings_sync.models import SyncBatch, SyncRun
from settings_sync.project.models import Adder
from settings_sync.proposal.models import ProposalExpiration
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

STRICT = {"is_exclusive": True, "data_sync_enabled": True}
FLEXIBLE = {**STRICT, "allow_downstream_edit": True}


@pytest.fixture
def helios(db):
    organization = OrganizationFactory(name="Helios Energy Partners")
    Adder.objects.create(organization=organization, name="Trenching", amount=1250)
    Adder.objects.create(organization=organization, name="Tile roof", amount=Decimal("0.35"))
    return organization


@pytest.fixture
def sunrise(db):
    organization = OrganizationFactory(name="Sunrise Solar")
    Adder.objects.create(organization=organization, name="Tree removal", amount=900)
    return organization


@pytest.fixture
def helios_admin(client, helios):
    user = MembershipFactory(organization=helios, role="admin").user
    client.force_login(user)
    return user


def linked(helios, sunrise, **flags) -> Partnership:
    partnership = services.create_partnership(helios, sunrise, by=None, **flags)
    engine.run(partnership, "link")
    return partnership


class TestPreviews:
    def test_flag_form_preview_follows_the_flags(self, client, helios_admin, helios, sunrise):
        partnership = linked(helios, sunrise, **FLEXIBLE)
        edit = reverse("partnerships:edit", args=[helios.slug, partnership.pk])
        unchanged = client.get(edit).content.decode()
        assert "Saving these flags starts no sync" in unchanged
        strict = client.post(
            edit,
            {"_refresh": "1", "version": partnership.version, **dict.fromkeys(STRICT, "on")},
            HTTP_HX_REQUEST="true",
        ).content.decode()
        # flexible → strict is a link under strict: the partner's own adder is archived.
        assert "1 of Sunrise Solar&#x27;s own adders will be archived." in strict
        assert 'data-action="archived">1 archived' in strict
        off = client.post(
            edit, {"_refresh": "1", "version": partnership.version}, HTTP_HX_REQUEST="true"
        ).content.decode()
        assert 'data-action="detached">2 detached' in off
        assert Adder.objects.filter(organization=sunrise).count() == 3  # nothing written

    def test_saved_result_matches_the_preview(
        self, client, helios_admin, helios, sunrise, django_capture_on_commit_callbacks
    ):
        partnership = linked(helios, sunrise, **FLEXIBLE)
        plan = engine.preview(
            Partnership(pk=partnership.pk, upstream=helios, downstream=sunrise, **STRICT), "link"
        )
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("partnerships:edit", args=[helios.slug, partnership.pk]),
                {"version": partnership.version, **dict.fromkeys(STRICT, "on")},
            )
        saved = SyncRun.objects.filter(partnership=partnership).latest("pk")
        assert (saved.event, saved.mode, saved.status) == ("link", "strict", "succeeded")
        assert saved.counts == {k: v for k, v in plan.summary().items() if v}

    def test_invitation_preview_lists_what_the_partner_receives(self, client, helios_admin, helios):
        page = client.post(
            reverse("partnerships:invite", args=[helios.slug]),
            {"_refresh": "1", "organization_name": "Summit Solar", "data_sync_enabled": "on"},
            HTTP_HX_REQUEST="true",
        ).content.decode()
        assert "Preview in Summit Solar" in page
        assert 'data-category="adders"' in page
        assert 'data-action="created">2 created' in page

    @pytest.mark.parametrize(
        "flags", [{"data_sync_enabled": True}, STRICT], ids=["merge", "strict"]
    )
    def test_an_invited_organization_has_nothing_to_overwrite(
        self, client, helios_admin, helios, flags
    ):
        """A new organization has no settings of its own yet: the invitation's preview warns
        of nothing, however different the channel manager's values are from the defaults."""
        ProposalExpiration.objects.filter(organization=helios).update(days_valid=45)
        page = client.post(
            reverse("partnerships:invite", args=[helios.slug]),
            {"_refresh": "1", "organization_name": "Summit Solar", **dict.fromkeys(flags, "on")},
            HTTP_HX_REQUEST="true",
        ).content.decode()
        preview = re.search(r'<section[^>]* id="sync-preview".*?</section>', page, re.S).group(0)
        assert 'data-category="proposal_expiration"' in preview
        assert "will be overwritten" not in preview
        assert "will be archived" not in preview
        assert "alert-warning" not in preview

    def test_request_preview_reads_nothing_of_the_organization_asked(
        self, client, helios_admin, helios, sunrise
    ):
        """Any admin may name any organization in the request form: its preview counts what
        the channel manager sends, the same whichever organization is named, so it tells
        nothing of what that organization holds (its own items, its values)."""
        ProposalExpiration.objects.filter(organization=helios).update(days_valid=45)
        ProposalExpiration.objects.filter(organization=sunrise).update(days_valid=45)
        coastal = OrganizationFactory(name="Coastal Roofing")  # other adders, default values
        for n in range(7):
            Adder.objects.create(organization=coastal, name=f"Coastal adder {n}", amount=n + 1)
        url = reverse("partnerships:request", args=[helios.slug])

        def preview_for(organization: str) -> str:
            page = client.post(
                url,
                {"_refresh": "1", "organization": organization, **dict.fromkeys(STRICT, "on")},
                HTTP_HX_REQUEST="true",
            ).content.decode()
            return re.search(r'<section[^>]* id="sync-preview".*?</section>', page, re.S).group(0)

        previews = {name: preview_for(name) for name in ("Sunrise Solar", "Coastal Roofing", "")}
        assert previews["Sunrise Solar"] == previews["Coastal Roofing"] == previews[""]
        preview = previews["Sunrise Solar"]
        # The page says so: choosing an organization does not change it.
        assert "they stay the same whichever organization you choose" in preview
        assert 'data-category="adders"' in preview
        assert 'data-action="created">2 created' in preview  # the channel manager's two adders
        assert 'data-action="archived"' not in preview  # (the legend explains Match: "archived")
        assert "Sunrise" not in preview
        assert "Coastal" not in preview

    def test_the_partner_sees_what_accepting_would_change(
        self, client, helios, sunrise, django_capture_on_commit_callbacks
    ):
        """The request's full preview is for the admins of the organization asked, on the page
        where they accept or decline; accepting does what it showed."""
        asked = services.request_partnership(helios, sunrise, by=None, **STRICT)
        client.force_login(MembershipFactory(organization=sunrise, role="admin").user)
        listing = client.get(reverse("partnerships:list", args=[sunrise.slug])).content.decode()
        page_url = reverse("partnerships:request-detail", args=[sunrise.slug, asked.pk])
        assert page_url in listing
        page = client.get(page_url).content.decode()
        assert "Helios Energy Partners asks to become your channel manager" in page
        assert "1 of Sunrise Solar&#x27;s own adders will be archived." in page
        assert 'data-action="archived">1 archived' in page
        assert 'data-action="created">2 created' in page
        assert Adder.objects.filter(organization=sunrise).count() == 1  # nothing written yet
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("partnerships:request-accept", args=[sunrise.slug, asked.pk]))
        run = SyncRun.objects.get(partnership__downstream=sunrise)
        assert run.counts["adders"] == {"archived": 1, "created": 2}


class TestPredictor:
    @pytest.mark.parametrize(
        ("exclusive", "sync", "allow", "event"),
        list(itertools.product([False, True], [False, True], [False, True], policy.EVENTS)),
    )
    def test_every_combination_shows_policy_outcome(
        self, client, helios_admin, exclusive, sync, allow, event
    ):
        params = {"event": event}
        for name, value in (
            ("is_exclusive", exclusive),
            ("data_sync_enabled", sync),
            ("allow_downstream_edit", allow),
        ):
            if value:
                params[name] = "on"
        page = client.get(reverse("help-sync"), params).content.decode()
        allowed = allow and exclusive and sync  # the form clears Allow while it is hidden
        mode = (
            "off"
            if not sync
            else "non_exclusive"
            if not exclusive
            else "flexible"
            if allowed
            else "strict"
        )
        assert 'data-testid="predictor-mode"' in page
        for category in registry.all():
            expected = policy.outcome(mode, event, category.kind)
            assert (
                f'<tr data-category="{category.key}"><td>{category.label}</td><td>'
                f'<span class="badge outcome-{expected}" data-testid="outcome" '
                f'data-outcome="{expected}">{policy.OUTCOME_LABELS[expected]}</span>'
            ) in page, (category.key, mode, event)

    def test_policy_table_is_rendered_from_the_policy(self, client, helios_admin):
        page = client.get(reverse("help-sync")).content.decode()
        table = page.split('data-testid="policy-table"')[1].split("</table>")[0]
        body = table.split("<tbody>")[1]
        assert body.count("<tr>") == len(policy.EVENTS) * len(policy.KINDS)
        assert table.count("outcome-match") == sum(
            policy.outcome(m, e, k) == "match"
            for m in policy.SYNCING_MODES
            for e in policy.EVENTS
            for k in policy.KINDS
        )

    def test_invite_only_data_is_said_to_be_marked_where_it_came_from(self, client, helios_admin):
        page = client.get(reverse("help-sync")).content.decode()
        line = re.search(r'data-testid="invite-only">(.*?)</li>', page).group(1)
        assert "the copies become its own, marked “Copied from” the channel manager" in line
        assert "never synced again" in line
        assert "Logo, Licenses" in line


class TestHistoryAndRuns:
    def test_history_lists_runs_of_both_sides(self, client, helios_admin, helios, sunrise):
        partnership = linked(helios, sunrise, **STRICT)
        page = client.get(reverse("settings_sync:history", args=[helios.slug])).content.decode()
        assert f"#{SyncRun.objects.get(partnership=partnership).pk}" in page
        partner_admin = MembershipFactory(organization=sunrise, role="admin").user
        client.force_login(partner_admin)
        page = client.get(reverse("settings_sync:history", args=[sunrise.slug])).content.decode()
        assert "Helios Energy Partners → Sunrise Solar" in page

    def test_run_page_shows_before_and_after_and_restores(self, client, helios, sunrise):
        Adder.objects.create(organization=sunrise, name="Tile roof", amount=Decimal("0.60"))
        partnership = linked(helios, sunrise, data_sync_enabled=True)  # adopts, keeps 0.60
        services.update_flags(partnership, by=None, **STRICT)
        strict = engine.run(partnership, "link")  # match: overwrites it, archives Tree removal
        partner_admin = MembershipFactory(organization=sunrise, role="admin").user
        client.force_login(partner_admin)
        url = reverse("settings_sync:run", args=[sunrise.slug, strict.pk])
        page = client.get(url).content.decode()
        assert "Tree removal" in page
        # Values by their field's label, as the list shows them.
        assert 'Amount:</dt> <dd class="d-inline">0.6</dd>' in page  # before
        assert 'Amount:</dt> <dd class="d-inline">0.35</dd>' in page  # after
        # Strict: the partner's settings are locked, so nothing can be restored here…
        assert "Restore Tree removal" not in page
        # …until the partnership is flexible again.
        services.update_flags(partnership, by=None, **FLEXIBLE)
        assert b"Restore Tree removal" in client.get(url).content
        archived = strict.changes.get(action="archived")
        client.post(reverse("settings_sync:restore", args=[sunrise.slug, strict.pk, archived.pk]))
        assert Adder.objects.filter(organization=sunrise, name="Tree removal").exists()
        assert b"Restore Tree removal" not in client.get(url).content

    def test_a_long_run_shows_its_changes_a_page_at_a_time(
        self, client, helios_admin, helios, sunrise
    ):
        partnership = linked(helios, sunrise, data_sync_enabled=True)

        def run_adding(count: int, prefix: str) -> SyncRun:
            Adder.objects.bulk_create(
                Adder(organization=helios, name=f"{prefix} {n:03}", amount=n) for n in range(count)
            )
            return engine.run(partnership, "resync")

        per_page = sync_views.CHANGES_PER_PAGE
        short = run_adding(3, "Short")
        long = run_adding(per_page + 5, "Long")
        url = reverse("settings_sync:run", args=[helios.slug, long.pk])
        client.get(url)
        with CaptureQueriesContext(connection) as few:
            client.get(reverse("settings_sync:run", args=[helios.slug, short.pk]))
        with CaptureQueriesContext(connection) as many:
            first = client.get(url).content.decode()
        assert len(many.captured_queries) == len(few.captured_queries)
        assert first.count('data-testid="change-row"') == per_page
        assert f"1\u2013{per_page} of {per_page + 5} changes" in first  # an en dash
        assert "Page 1 of 2" in first
        assert "Long 000" in first
        assert f"Long {per_page:03}" not in first
        second = client.get(url, {"page": 2}).content.decode()
        assert second.count('data-testid="change-row"') == 5
        assert f"Long {per_page + 4:03}" in second
        assert "Page 2 of 2" in second

    def test_restore_refused_when_the_name_is_taken(self, client, helios, sunrise):
        partnership = linked(helios, sunrise, **STRICT)
        services.update_flags(partnership, by=None, **FLEXIBLE)
        Adder.objects.create(organization=sunrise, name="Tree removal", amount=1)
        run = SyncRun.objects.get(partnership=partnership)
        archived = run.changes.get(action="archived")
        client.force_login(MembershipFactory(organization=sunrise, role="admin").user)
        response = client.post(
            reverse("settings_sync:restore", args=[sunrise.slug, run.pk, archived.pk]),
            follow=True,
        )
        assert "was not restored" in response.content.decode()
        assert Adder.objects.filter(organization=sunrise, name="Tree removal").count() == 1

    def test_failed_run_shows_error_and_retry(
        self, client, helios_admin, helios, sunrise, django_capture_on_commit_callbacks
    ):
        partnership = services.create_partnership(helios, sunrise, by=None, **STRICT)

        def fail(execute, sql, params, many, context):
            if "settings_sync_syncchange" in sql and sql.lstrip().upper().startswith("INSERT"):
                raise OperationalError("disk full")
            return execute(sql, params, many, context)

        with connection.execute_wrapper(fail):
            failed = engine.run(partnership, "link")
        page = client.get(reverse("settings_sync:run", args=[helios.slug, failed.pk]))
        content = page.content.decode()
        assert "This sync failed; nothing was changed." in content
        assert "disk full" in content
        assert ">Retry</button>" in content
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(reverse("settings_sync:retry", args=[helios.slug, failed.pk]))
        assert len(callbacks) == 1  # enqueued once the request committed, not run inside it
        retried = SyncRun.objects.get(retry_of=failed)
        assert response["Location"].endswith(f"/sync/runs/{retried.pk}/")
        assert retried.status == "succeeded"
        runs = SyncRun.objects.count()
        again = client.post(reverse("settings_sync:retry", args=[helios.slug, retried.pk]))
        assert again.status_code == 404  # only a failed run can be retried
        assert SyncRun.objects.count() == runs

    def test_other_organizations_runs_are_not_found(self, client, helios, sunrise):
        partnership = linked(helios, sunrise, **STRICT)
        run = SyncRun.objects.get(partnership=partnership)
        outsider = MembershipFactory(role="admin")
        client.force_login(outsider.user)
        org = outsider.organization.slug
        assert client.get(reverse("settings_sync:run", args=[org, run.pk])).status_code == 404
        assert client.post(reverse("settings_sync:retry", args=[org, run.pk])).status_code == 404
        assert (
            client.post(reverse("settings_sync:resync", args=[org, partnership.pk])).status_code
            == 404
        )


class TestDrift:
    def test_figures_are_correct(self, client, helios_admin, helios, sunrise):
        partnership = linked(helios, sunrise, data_sync_enabled=True)
        other = OrganizationFactory(name="Coastal Roofing")
        in_sync = linked(helios, other, data_sync_enabled=True)
        Adder.objects.filter(organization=sunrise, name="Trenching").update(amount=1)  # diverged
        Adder.objects.create(organization=helios, name="Ground mount", amount=2)  # missing in both
        Adder.objects.filter(organization=helios, name="Tile roof").update(
            archived_at="2026-01-01T00:00Z"
        )
        page = client.get(reverse("partnerships:list", args=[helios.slug])).content.decode()
        rows = page.split("<tr>")
        sunrise_row = next(row for row in rows if "Sunrise Solar" in row)
        coastal_row = next(row for row in rows if "Coastal Roofing" in row)
        # Tile roof was archived without a run (a queryset update): both copies are out of date.
        assert "1 diverged · 1 missing · 1 out of date" in sunrise_row
        assert "0 diverged · 1 missing · 1 out of date" in coastal_row
        detail = client.get(reverse("partnerships:detail", args=[helios.slug, partnership.pk]))
        content = detail.content.decode()
        assert (
            "1 synced item edited locally, 1 missing, 1 out of date: a change Helios Energy "
            "Partners made has not reached it yet." in content
        )
        assert '<td class="table-warning">1.0000</td><td>1250.0000</td>' in content
        assert in_sync.pk

    def test_list_queries_stay_constant(self, client, helios_admin, helios):
        def add_partners(count):
            start = Organization.objects.count()
            for n in range(count):
                partner = Organization.objects.create(
                    name=f"Partner {start + n}", slug=f"p-{start + n}"
                )
                linked(helios, partner, data_sync_enabled=True)

        add_partners(2)
        url = reverse("partnerships:list", args=[helios.slug])
        client.get(url)
        with CaptureQueriesContext(connection) as few:
            client.get(url)
        add_partners(8)
        edited = Adder.objects.filter(organization__name__startswith="Partner")
        edited.update(amount=3)
        # A queryset update sends no signal: it marks the drift counts itself (§10).
        drift_counts.mark((pk, "adders") for pk in edited.values_list("organization", flat=True))
        with CaptureQueriesContext(connection) as recounted:
            client.get(url)
        # The counts marked stale and those never kept: recounted in one query, stored in one.
        assert len(recounted.captured_queries) == len(few.captured_queries) + 2
        with CaptureQueriesContext(connection) as many:
            response = client.get(url)
        assert len(many.captured_queries) == len(few.captured_queries)
        assert response.content.decode().count("2 diverged · 0 missing") == 10  # both adders


class TestResync:
    def test_resync_shows_preview_then_queues_a_run(self, client, helios_admin, helios, sunrise):
        partnership = linked(helios, sunrise, **STRICT)
        Adder.objects.filter(organization=sunrise, name="Trenching").update(amount=1)
        url = reverse("settings_sync:resync", args=[helios.slug, partnership.pk])
        page = client.get(url).content.decode()
        assert "Resync Sunrise Solar?" in page
        assert "1 of Sunrise Solar&#x27;s adders edited locally will be overwritten." in page
        response = client.post(url)
        run = SyncRun.objects.get(event="resync")
        assert response["Location"].endswith(f"/sync/runs/{run.pk}/")
        assert run.started_by == helios_admin

    def test_only_upstream_admins_resync(self, client, helios, sunrise):
        partnership = linked(helios, sunrise, **STRICT)
        client.force_login(MembershipFactory(organization=sunrise, role="admin").user)
        url = reverse("settings_sync:resync", args=[sunrise.slug, partnership.pk])
        assert client.post(url).status_code == 403
        client.force_login(MembershipFactory(organization=helios, role="member").user)
        url = reverse("settings_sync:resync", args=[helios.slug, partnership.pk])
        assert client.post(url).status_code == 403
        assert not SyncRun.objects.filter(event="resync").exists()

    def test_resync_all_progress_and_summary(self, client, helios_admin, helios):
        partners = [OrganizationFactory(name=f"Partner {n}") for n in range(3)]
        for partner in partners:
            services.create_partnership(helios, partner, by=None, data_sync_enabled=True)
        services.create_partnership(helios, OrganizationFactory(), by=None)  # sync off: skipped
        client.post(reverse("settings_sync:resync-all", args=[helios.slug]))
        batch = SyncBatch.objects.get()
        url = reverse("settings_sync:batch", args=[helios.slug, batch.pk])
        progress = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "0 of 3 partners done" in progress
        assert 'hx-trigger="every 1s"' in progress
        runs = list(batch.runs.order_by("pk"))
        engine.execute(runs[0])
        assert "1 of 3 partners done" in client.get(url, HTTP_HX_REQUEST="true").content.decode()
        for run in runs[1:]:
            engine.execute(run)
        done = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "3 of 3 partners done" in done
        assert 'hx-trigger="every 1s"' not in done
        assert "3 succeeded, 0 failed, 0 skipped." in done
        assert 'data-action="created">6 created' in done
        # Each partner, with a link to its run.
        listed = re.search(r'data-testid="batch-runs">(.*?)</ul>', done, re.S).group(1)
        for run in runs:
            run_url = reverse("settings_sync:run", args=[helios.slug, run.pk])
            partner = run.partnership.downstream
            assert f'<a href="{run_url}">{partner.name_with_slug}</a>' in listed
        assert listed.count("Succeeded") == 3

    def test_resync_all_is_offered_while_a_partner_syncs(self, client, helios_admin, helios):
        listing = reverse("partnerships:list", args=[helios.slug])
        resync_all = reverse("settings_sync:resync-all", args=[helios.slug])
        partnership = services.create_partnership(helios, OrganizationFactory(), by=None)
        assert resync_all not in client.get(listing).content.decode()  # Data Sync off
        services.update_flags(partnership, by=None, data_sync_enabled=True)
        assert resync_all in client.get(listing).content.decode()

    def test_resync_all_previews_what_it_will_do(self, client, helios_admin, helios, sunrise):
        linked(helios, sunrise, **STRICT)  # in sync already
        for n in range(2):
            services.create_partnership(
                helios, OrganizationFactory(name=f"Partner {n}"), by=None, data_sync_enabled=True
            )
        page = client.get(reverse("settings_sync:resync-all", args=[helios.slug])).content.decode()
        preview = re.search(r'data-testid="resync-all-preview">(.*?)</section>', page, re.S)
        preview = " ".join(preview.group(1).split())
        assert "In your partners, the resync would change the settings of 2 partners, in all:" in (
            preview
        )
        assert 'data-action="created">4 created' in preview  # two adders into each
        assert "not previewed" not in preview
        assert not SyncRun.objects.filter(event="resync").exists()  # nothing started

    def test_resync_all_previews_a_bounded_number_of_partners(
        self, client, helios_admin, helios, django_assert_max_num_queries
    ):
        def partners(count: int) -> None:
            start = Organization.objects.count()
            organizations = Organization.objects.bulk_create(
                Organization(name=f"Installer {n:03}", slug=f"installer-{n:03}")
                for n in range(start, start + count)
            )
            Partnership.objects.bulk_create(
                Partnership(upstream=helios, downstream=o, data_sync_enabled=True)
                for o in organizations
            )

        url = reverse("settings_sync:resync-all", args=[helios.slug])
        partners(sync_views.RESYNC_ALL_PREVIEW_LIMIT + 1)
        with CaptureQueriesContext(connection) as few:
            page = client.get(url).content.decode()
        limit = sync_views.RESYNC_ALL_PREVIEW_LIMIT
        assert f"In the first {limit} of your partners (by name)" in page
        assert f"the settings of {limit} partners, in all:" in page
        assert f'data-action="created">{2 * limit} created' in page
        assert "The other 1 partner is not previewed here" in page
        partners(200)
        with django_assert_max_num_queries(len(few.captured_queries)):
            page = client.get(url).content.decode()
        assert "The other 201 partners are not previewed here" in page
        assert "Resync 221 partners" in page
