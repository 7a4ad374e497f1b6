"""Notifications (docs/design.md §13.4 and §13.5): each event reaches the admins it concerns, in the
inbox and by email (locmem), one email per person per run however large the fan-out, built
in a constant number of queries; preferences, digests, a failing mail server, the signed
one-click unsubscribe link, and the pages."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from notifications import emails, tasks
from notifications.models import DigestSent, EmailPreference, Notification
from partnerships import services
from settings_sync import conflicts, overrides
from settings_sync.models import SyncRun
from settings_sync.project.models import Adder
from tests.factories import (
    AdderFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    make_partnership,
)

pytestmark = pytest.mark.django_db

Event = Notification.Event
FLEXIBLE = {"is_exclusive": True, "data_sync_enabled": True, "allow_downstream_edit": True}
SYNC = {"data_sync_enabled": True}


def notes(user, event=None):
    found = Notification.objects.filter(user=user)
    return list(found.filter(event=event) if event else found)


def sent_to(user) -> list:
    return [message for message in mail.outbox if message.to == [user.email]]


def emailed(user, text: str) -> bool:
    """Whether ``user`` got an email saying ``text`` (in both its parts)."""
    return any(
        text in message.body and text in message.alternatives[0].content
        for message in sent_to(user)
    )


def edit(item, **values) -> None:
    for name, value in values.items():
        setattr(item, name, value)
    item.save()


@pytest.fixture
def linked(channel_manager, partner, channel_manager_admin, partner_admin, sync_now):
    AdderFactory(organization=channel_manager, name="Trenching", amount=1250)
    with sync_now():
        partnership = make_partnership(channel_manager, partner, **FLEXIBLE)
    mail.outbox.clear()
    Notification.objects.all().delete()  # of the link itself: each test starts with none
    return partnership


@pytest.fixture
def sync_now(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


class TestPartnerAdmins:
    def test_the_run_s_link_is_the_reversed_one_under_any_script_prefix(
        self, linked, channel_manager, partner_admin, sync_now
    ):
        """The link to a run is reversed once per process and script prefix; it is the
        address ``reverse`` gives, for each partner and run."""
        for prefix in ["/", "/portal/", "/"]:
            set_script_prefix(prefix)
            try:
                with sync_now():
                    edit(Adder.objects.get(organization=channel_manager), amount=len(prefix))
                note = Notification.objects.filter(user=partner_admin).latest("pk")
                run = SyncRun.objects.filter(partnership=linked).latest("pk")
                expected = reverse("settings_sync:run", args=[linked.downstream.slug, run.pk])
            finally:
                set_script_prefix("/")
            assert note.url == expected
            assert note.url.startswith(prefix)

    def test_told_when_a_sync_changes_their_settings(
        self, linked, channel_manager, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        (note,) = notes(partner_admin, Event.SETTINGS_CHANGED)
        run = SyncRun.objects.filter(partnership=linked).latest("pk")
        assert note.url == reverse("settings_sync:run", args=[linked.downstream.slug, run.pk])
        assert "Helios Energy Partners changed your settings (Adders: 1 updated)" in note.message
        (email,) = sent_to(partner_admin)
        assert "Adders: 1 updated" in email.body
        assert f"http://testserver{note.url}" in email.body or note.url in email.body
        html, mime = email.alternatives[0]
        assert mime == "text/html"
        assert note.url in html
        assert not notes(channel_manager_admin, Event.SETTINGS_CHANGED)

    def test_only_admins_are_told(self, linked, channel_manager, partner, partner_admin, sync_now):
        """The admins of the organization concerned are told; its other members are not."""
        member = MembershipFactory(organization=partner, role="member").user
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        assert notes(partner_admin, Event.SETTINGS_CHANGED)
        assert not notes(member)
        assert not sent_to(member)

    def test_archives_are_called_out(self, linked, channel_manager, partner_admin, sync_now):
        with sync_now():
            Adder.objects.get(organization=channel_manager).archive(by=None, reason="Old")
        (note,) = notes(partner_admin, Event.SETTINGS_CHANGED)
        assert "1 item archived: nothing is deleted" in note.message

    def test_told_which_of_their_changes_a_strict_category_overwrote(
        self, client, linked, channel_manager_admin, partner, partner_admin, sync_now
    ):
        # Flexible partnership, adders made strict by an override: the partner's edit goes.
        edit(Adder.objects.get(organization=partner), amount=1300)
        with sync_now():
            overrides.set_override(linked, "adders", "strict", by=channel_manager_admin)
        (note,) = notes(partner_admin, Event.SETTINGS_CHANGED)
        assert note.message == (
            "Helios Energy Partners changed your settings (Adders: 1 updated). 1 setting you had "
            "changed was overwritten with Helios Energy Partners' values; yours are in the "
            "run's history."
        )
        client.force_login(partner_admin)
        page = client.get(note.url)
        assert (
            "1 setting Sunrise Solar had changed was overwritten with Helios Energy Partners' "
            "values; the changes below show the values it had."
        ) in re.sub(r"\s+", " ", html.unescape(page.content.decode()))

    def test_an_update_of_a_copy_nobody_changed_is_not_called_an_overwrite(
        self, linked, channel_manager, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            services.update_flags(
                linked, by=channel_manager_admin, **{**FLEXIBLE, "allow_downstream_edit": False}
            )
        Notification.objects.all().delete()
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        (note,) = notes(partner_admin, Event.SETTINGS_CHANGED)
        assert note.message == "Helios Energy Partners changed your settings (Adders: 1 updated)."
        assert SyncRun.objects.filter(partnership=linked).latest("pk").overwritten == 0

    def test_told_once_when_an_update_is_available(
        self, linked, channel_manager, partner, partner_admin, sync_now
    ):
        edit(Adder.objects.get(organization=partner), amount=1300)
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        (note,) = notes(partner_admin, Event.UPDATE_AVAILABLE)
        assert note.message.startswith("Update available from Helios Energy Partners: 1 item")
        assert note.url == reverse("settings_sync:page", args=[partner.slug, "project", "adders"])
        assert len(sent_to(partner_admin)) == 1
        # Unread, a second change adds no second notice.
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1500)
        assert len(notes(partner_admin, Event.UPDATE_AVAILABLE)) == 1

    def test_after_keep_mine_nothing_until_the_item_changes_again(
        self, linked, channel_manager, partner, partner_admin, sync_now
    ):
        edit(Adder.objects.get(organization=partner), amount=1300)
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        Notification.objects.update(read_at=timezone.now())
        conflicts.keep_local(Adder.objects.get(organization=partner), by=partner_admin)
        with sync_now():
            AdderFactory(organization=channel_manager, name="Tile roof")  # another item: a run
        assert Notification.objects.filter(event=Event.UPDATE_AVAILABLE).count() == 1
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager, name="Trenching"), amount=1600)
        assert Notification.objects.filter(event=Event.UPDATE_AVAILABLE).count() == 2

    def test_told_when_the_flags_change_but_not_the_one_who_changed_them(
        self, linked, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            services.update_flags(
                linked, by=channel_manager_admin, **{**FLEXIBLE, "allow_downstream_edit": False}
            )
        (note,) = notes(partner_admin, Event.FLAGS_CHANGED)
        assert note.message == (
            "Helios Energy Partners changed your partnership from Flexible to Strict mode."
        )
        assert emailed(partner_admin, note.message)
        assert not notes(channel_manager_admin, Event.FLAGS_CHANGED)

    def test_told_when_a_category_override_changes(
        self, linked, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            overrides.set_override(linked, "adders", "strict", by=channel_manager_admin)
        (note,) = notes(partner_admin, Event.FLAGS_CHANGED)
        assert note.message == (
            "Helios Energy Partners changed how some settings sync with your partnership "
            "(Adders: Follow the partnership → Strict)."
        )
        assert note.url == reverse("partnerships:detail", args=[linked.downstream.slug, linked.pk])
        assert emailed(partner_admin, note.message)
        assert not notes(channel_manager_admin, Event.FLAGS_CHANGED)

    def test_one_notice_when_one_save_changes_the_flags_and_a_category(
        self, linked, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now(), transaction.atomic():
            saved = services.update_flags(
                linked, by=channel_manager_admin, **{**FLEXIBLE, "allow_downstream_edit": False}
            )
            overrides.set_overrides(
                saved, {"adders": "flexible", "personas": "off"}, by=channel_manager_admin
            )
        (note,) = notes(partner_admin, Event.FLAGS_CHANGED)
        assert note.message == (
            "Helios Energy Partners changed your partnership from Flexible to Strict mode. It "
            "also changed how some settings sync (Adders: Follow the partnership → Flexible; "
            "Usage personas: Follow the partnership → Off)."
        )
        assert len([e for e in sent_to(partner_admin) if "Strict mode" in e.body]) == 1

    def test_a_category_changed_after_the_flags_were_saved_is_told_on_its_own(
        self, linked, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            saved = services.update_flags(
                linked, by=channel_manager_admin, **{**FLEXIBLE, "allow_downstream_edit": False}
            )
        with sync_now():
            overrides.set_override(saved, "adders", "flexible", by=channel_manager_admin)
        assert sorted(note.message for note in notes(partner_admin, Event.FLAGS_CHANGED)) == [
            "Helios Energy Partners changed how some settings sync with your partnership "
            "(Adders: Follow the partnership → Flexible).",
            "Helios Energy Partners changed your partnership from Flexible to Strict mode.",
        ]

    def test_not_told_when_an_override_is_saved_unchanged(
        self, linked, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            overrides.set_override(linked, "adders", "follow", by=channel_manager_admin)
        assert not notes(partner_admin, Event.FLAGS_CHANGED)


class TestChannelManagerAdmins:
    def test_told_when_a_run_fails(
        self, linked, channel_manager, channel_manager_admin, partner_admin, sync_now
    ):
        def fail(execute, sql, params, many, context):
            if "settings_sync_syncchange" in sql and sql.lstrip().upper().startswith("INSERT"):
                raise OperationalError("connection lost")
            return execute(sql, params, many, context)

        with connection.execute_wrapper(fail), sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        run = SyncRun.objects.filter(partnership=linked).latest("pk")
        assert run.status == "failed"
        (note,) = notes(channel_manager_admin, Event.RUN_FAILED)
        assert note.message.startswith("The sync into Sunrise Solar")
        assert note.url == reverse("settings_sync:run", args=[channel_manager.slug, run.pk])
        assert len(sent_to(channel_manager_admin)) == 1
        assert not notes(partner_admin)

    def test_told_when_conflicts_appear(self, partner, channel_manager_admin, sync_now):
        first = OrganizationFactory(name="First")
        second = channel_manager_admin.memberships.get().organization
        AdderFactory(organization=first, name="Trenching")
        AdderFactory(organization=second, name="Trenching", amount=5)
        with sync_now():
            make_partnership(first, partner, **SYNC)
            make_partnership(second, partner, **SYNC)
        (note,) = notes(channel_manager_admin, Event.CONFLICTS)
        assert "met 1 conflict" in note.message
        assert emailed(channel_manager_admin, "met 1 conflict")

    def test_told_when_a_partner_accepts_declines_or_ends(
        self, channel_manager, partner, channel_manager_admin, partner_admin, sync_now
    ):
        with sync_now():
            declined = services.request_partnership(
                channel_manager, partner, by=channel_manager_admin, **SYNC
            )
            services.decline_request(declined, by=partner_admin)
        (note,) = notes(channel_manager_admin, Event.PARTNER_DECLINED)
        assert note.message == "Sunrise Solar declined your partnership request."
        assert emailed(channel_manager_admin, note.message)
        with sync_now():
            accepted = services.request_partnership(
                channel_manager, partner, by=channel_manager_admin, **SYNC
            )
            partnership = services.accept_request(accepted, by=partner_admin)
        (note,) = notes(channel_manager_admin, Event.PARTNER_JOINED)
        assert note.message == "Sunrise Solar is now your partner (Non-exclusive mode)."
        assert emailed(channel_manager_admin, note.message)
        with sync_now():
            services.end_partnership(partnership, by=partner_admin)
        (note,) = notes(channel_manager_admin, Event.PARTNERSHIP_ENDED)
        assert "has ended" in note.message
        assert emailed(channel_manager_admin, "has ended")
        assert not notes(partner_admin, Event.PARTNERSHIP_ENDED)  # they ended it

    def test_told_when_an_invitation_is_accepted(
        self, channel_manager, channel_manager_admin, sync_now
    ):
        from tests.factories import UserFactory

        with sync_now():
            invitation = services.invite_organization(
                channel_manager,
                name="Summit Solar",
                email="owner@summit.example",
                invited_by=channel_manager_admin,
                **SYNC,
            )
            services.accept_invitation(invitation, UserFactory())
        (note,) = notes(channel_manager_admin, Event.PARTNER_JOINED)
        assert note.message.startswith("Summit Solar accepted your invitation")
        assert emailed(channel_manager_admin, note.message)


class TestFanOut:
    def build(self, count: int, sync_now):
        upstream = OrganizationFactory()
        AdderFactory(organization=upstream, name="Trenching", amount=1)
        partners = [OrganizationFactory() for _ in range(count)]
        admins = [MembershipFactory(organization=p, role="admin").user for p in partners]
        with sync_now():
            for partner in partners:
                make_partnership(upstream, partner, **SYNC)
        mail.outbox.clear()
        return upstream, partners, admins

    def test_one_email_per_person_per_run(self, sync_now):
        upstream, partners, admins = self.build(60, sync_now)  # two tasks of runs
        # One person is admin of three partners, in both batches: still one email per task.
        many_hats = admins[0]
        for partner in (partners[1], partners[59]):
            MembershipFactory(organization=partner, user=many_hats, role="admin")
        Notification.objects.all().delete()
        mail.outbox.clear()
        with sync_now():
            edit(Adder.objects.get(organization=upstream), amount=2)
        assert SyncRun.objects.filter(status="succeeded", event="change").count() == 60
        for admin in admins[1:]:
            assert len(sent_to(admin)) == 1
        assert len(sent_to(many_hats)) == 2  # one for each of the fan-out's two tasks
        assert Notification.objects.filter(user=many_hats).count() == 3
        assert len(mail.outbox) == 61

    def test_a_batch_tells_its_partners_without_reading_its_runs_again(self, sync_now):
        """The runs a batch applied carry their partnership and both organizations as they
        read them: what they tell each partner is the same, and no run is read again."""
        upstream, partners, admins = self.build(3, sync_now)
        Notification.objects.all().delete()
        with CaptureQueriesContext(connection) as captured, sync_now():
            edit(Adder.objects.get(organization=upstream), amount=2)
        for partner, admin in zip(partners, admins, strict=True):
            (note,) = notes(admin, Event.SETTINGS_CHANGED)
            run = SyncRun.objects.get(partnership__downstream=partner, event="change")
            assert note.url == reverse("settings_sync:run", args=[partner.slug, run.pk])
            assert note.message == f"{upstream} changed your settings (Adders: 1 updated)."
        runs_read_with_partnerships = [
            query["sql"]
            for query in captured.captured_queries
            if query["sql"].startswith("SELECT")
            and 'FROM "settings_sync_syncrun" INNER JOIN "partnerships_partnership"' in query["sql"]
        ]
        assert runs_read_with_partnerships == []

    def test_building_notifications_is_batched(self, sync_now):
        from notifications.events import notify
        from notifications.sync_events import entries_for_runs

        def queries_for(count: int) -> int:
            upstream, _partners, admins = self.build(count, sync_now)
            runs = list(SyncRun.objects.filter(partnership__upstream=upstream))
            Notification.objects.all().delete()
            with CaptureQueriesContext(connection) as captured:
                notify(entries_for_runs(runs))
            assert Notification.objects.filter(user__in=admins).count() == count
            return len(captured.captured_queries)

        assert queries_for(3) == queries_for(30)


class TestPreferences:
    def test_none_and_digest_send_nothing_at_once(
        self, linked, channel_manager, partner_admin, sync_now
    ):
        EmailPreference.objects.create(
            user=partner_admin, organization=linked.downstream, frequency="none"
        )
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        assert not sent_to(partner_admin)
        assert len(notes(partner_admin)) == 1  # still in the inbox
        EmailPreference.objects.filter(user=partner_admin).update(frequency="digest")
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1500)
        assert not sent_to(partner_admin)

    def test_daily_digest_once_a_day(self, linked, channel_manager, partner_admin, sync_now):
        EmailPreference.objects.create(
            user=partner_admin, organization=linked.downstream, frequency="digest"
        )
        for amount in (1400, 1500):
            with sync_now():
                edit(Adder.objects.get(organization=channel_manager), amount=amount)
        call_command("send_digests", stdout=open("/dev/null", "w"))  # noqa: SIM115
        (digest,) = sent_to(partner_admin)
        assert digest.subject == "Your daily digest: 2 notifications"
        assert digest.body.count("Helios Energy Partners changed your settings") == 2
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1600)
        assert tasks.send_digests() == {"sent": 0, "failed": 0}  # once a day
        assert len(sent_to(partner_admin)) == 1
        tomorrow = timezone.now() + timedelta(days=1)
        assert tasks.send_digests(now=tomorrow) == {"sent": 1, "failed": 0}
        assert len(sent_to(partner_admin)) == 2
        assert DigestSent.objects.filter(user=partner_admin).count() == 2

    def test_the_preferences_page(self, client, linked, partner_admin):
        client.force_login(partner_admin)
        url = reverse("notifications:preferences")
        response = client.get(url)
        assert "An email for each event" in response.content.decode()
        field = f"organization_{linked.downstream.pk}"
        assert client.post(url, {field: "digest"}).status_code == 302
        assert EmailPreference.objects.get(user=partner_admin).frequency == "digest"
        response = client.post(url, {field: "weekly"})
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()
        assert EmailPreference.objects.get(user=partner_admin).frequency == "digest"


class TestFailingMailServer:
    @pytest.fixture
    def refusing(self, settings):
        from tests.mail import FlakyServer

        settings.MAILERS = {"default": {"BACKEND": "tests.mail.FlakyServer"}}
        yield lambda n: setattr(FlakyServer, "refusals", n)
        FlakyServer.refusals = 0

    def test_retried_and_the_sync_stands(
        self, linked, channel_manager, partner_admin, sync_now, refusing
    ):
        refusing(1)
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        assert SyncRun.objects.filter(partnership=linked).latest("pk").status == "succeeded"
        (note,) = notes(partner_admin)
        assert note.emailed_at is not None
        assert note.email_attempts == 2
        assert len(sent_to(partner_admin)) == 1

    def test_down_for_good_leaves_the_inbox(
        self, linked, channel_manager, partner_admin, sync_now, refusing
    ):
        refusing(99)
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        assert SyncRun.objects.filter(partnership=linked).latest("pk").status == "succeeded"
        (note,) = notes(partner_admin)
        assert note.emailed_at is None
        assert note.email_attempts == tasks.MAX_ATTEMPTS
        assert Adder.objects.get(organization=linked.downstream).amount == 1400


class TestUnsubscribe:
    def test_one_click_signed_out(self, client, linked, partner_admin, sync_now, channel_manager):
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        (email,) = sent_to(partner_admin)
        (link,) = re.findall(r"https?://\S+/notifications/unsubscribe/\S+/", email.body)
        assert email.extra_headers["List-Unsubscribe"] == f"<{link}>"
        assert emails.read_unsubscribe_token(link.rstrip("/").rsplit("/", 1)[1]) == (
            partner_admin.pk,
            linked.downstream.pk,
        )
        response = client.get(urlparse(link).path)
        assert response.status_code == 200
        assert "no more emails about Sunrise Solar" in response.content.decode()
        assert EmailPreference.objects.get(user=partner_admin).frequency == "none"

    def test_a_forged_link_changes_nothing(self, client, linked, partner_admin):
        token = emails.unsubscribe_token(partner_admin.pk, linked.downstream.pk)
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        response = client.get(reverse("notifications:unsubscribe", args=[forged]))
        assert response.status_code == 400
        other = emails.unsubscribe_token(partner_admin.pk, OrganizationFactory().pk)
        assert client.post(reverse("notifications:unsubscribe", args=[other])).status_code == 400
        assert not EmailPreference.objects.exists()


class TestInbox:
    def test_count_list_open_and_mark_read(
        self, client, linked, channel_manager, partner_admin, sync_now
    ):
        for amount in (1400, 1500):
            with sync_now():
                edit(Adder.objects.get(organization=channel_manager), amount=amount)
        # Someone else's unread notice is not counted.
        mine = Notification.objects.filter(user=partner_admin).first()
        Notification.objects.create(
            user=UserFactory(), organization=mine.organization, event=mine.event, message="x"
        )
        client.force_login(partner_admin)
        content = client.get(reverse("notifications:inbox")).content.decode()
        assert 'data-testid="unread-count">2<' in content
        assert content.count('data-testid="notification"') == 2
        first, second = notes(partner_admin)
        response = client.get(reverse("notifications:open", args=[first.pk]))
        assert response.url == first.url
        client.post(reverse("notifications:read", args=[second.pk]))
        content = client.get(reverse("notifications:inbox")).content.decode()
        assert 'data-testid="unread-count"' not in content

    def test_mark_all_read(self, client, linked, channel_manager, partner_admin, sync_now):
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        client.force_login(partner_admin)
        client.post(reverse("notifications:read-all"))
        assert not Notification.objects.filter(read_at__isnull=True).exists()

    def test_someone_elses_notification_is_not_found(
        self, client, linked, channel_manager, partner_admin, sync_now
    ):
        with sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        (note,) = notes(partner_admin)
        stranger = MembershipFactory(organization=OrganizationFactory(), role="admin").user
        client.force_login(stranger)
        assert client.get(reverse("notifications:open", args=[note.pk])).status_code == 404
        assert client.post(reverse("notifications:read", args=[note.pk])).status_code == 404
        assert Notification.objects.get(pk=note.pk).read_at is None

    def test_signed_out_is_sent_to_sign_in(self, client):
        response = client.get(reverse("notifications:inbox"))
        assert response.status_code == 302
        assert "/accounts/login/" in response.url


class TestFaults:
    @staticmethod
    def refuse_notifications(execute, sql, params, many, context):
        if "notifications_notification" in sql and sql.lstrip().upper().startswith("INSERT"):
            raise OperationalError("the notifications table is unreachable")
        return execute(sql, params, many, context)

    def test_a_failure_to_notify_never_fails_the_sync(
        self, linked, channel_manager, partner, sync_now
    ):
        with connection.execute_wrapper(self.refuse_notifications), sync_now():
            edit(Adder.objects.get(organization=channel_manager), amount=1400)
        assert SyncRun.objects.filter(partnership=linked).latest("pk").status == "succeeded"
        assert Adder.objects.get(organization=partner).amount == 1400
        assert not Notification.objects.exists()

    def test_nor_a_request(self, client, linked, channel_manager_admin, partner_admin, sync_now):
        client.force_login(channel_manager_admin)
        url = reverse("partnerships:edit", args=[linked.upstream.slug, linked.pk])
        flags = {"version": linked.version, "is_exclusive": "on", "data_sync_enabled": "on"}
        # The callbacks the commit runs (the flags' event among them) raise nothing.
        with connection.execute_wrapper(self.refuse_notifications), sync_now():
            response = client.post(url, flags)
        assert response.status_code in (200, 302)
        linked.refresh_from_db()
        assert linked.mode == "strict"
        assert not notes(partner_admin)
