"""docs/design.md §1.5 and §2.1 through the services: every rule, every flow, and the events
they announce."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from organizations.models import Membership, Organization
from partnerships import services, tasks
from partnerships.models import Invitation, Partnership, PartnershipRequest
from tests.factories import OrganizationFactory, UserFactory, make_partnership

pytestmark = pytest.mark.django_db

STRICT = {"is_exclusive": True, "data_sync_enabled": True}
FLEXIBLE = {**STRICT, "allow_downstream_edit": True}


class TestModes:
    @pytest.mark.parametrize(
        ("flags", "mode"),
        [
            ({}, "off"),
            ({"is_exclusive": True}, "off"),
            ({"data_sync_enabled": True}, "non_exclusive"),
            (FLEXIBLE, "flexible"),
            (STRICT, "strict"),
        ],
    )
    def test_mode_is_derived_from_flags(self, flags, mode):
        assert make_partnership(**flags).mode == mode

    def test_mode_annotation_matches_property(self):
        for flags in ({}, {"data_sync_enabled": True}, FLEXIBLE, STRICT, {"is_exclusive": True}):
            make_partnership(**flags)
        for partnership in Partnership.objects.with_mode():
            assert partnership.mode_value == partnership.mode


class TestCreate:
    def test_allow_edit_needs_exclusive_and_sync(self, channel_manager, partner):
        for flags in (
            {"allow_downstream_edit": True},
            {"allow_downstream_edit": True, "is_exclusive": True},
            {"allow_downstream_edit": True, "data_sync_enabled": True},
        ):
            with pytest.raises(ValidationError, match="can only be on when"):
                services.create_partnership(channel_manager, partner, by=None, **flags)
        assert not Partnership.objects.exists()

    def test_not_with_itself(self, channel_manager):
        with pytest.raises(ValidationError, match="cannot partner with itself"):
            services.create_partnership(channel_manager, channel_manager, by=None)

    def test_one_active_partnership_per_pair(self, channel_manager, partner):
        make_partnership(channel_manager, partner)
        with pytest.raises(ValidationError, match="already have an active partnership"):
            services.create_partnership(channel_manager, partner, by=None)
        assert Partnership.objects.count() == 1

    def test_pair_can_partner_again_after_ending(self, channel_manager, partner):
        services.end_partnership(make_partnership(channel_manager, partner), by=None)
        again = services.create_partnership(channel_manager, partner, by=None)
        assert again.is_active
        assert Partnership.objects.count() == 2

    def test_exclusive_partner_has_no_other_upstream(self, channel_manager, partner):
        make_partnership(channel_manager, partner, **STRICT)
        other = OrganizationFactory(name="Evergreen Distribution")
        with pytest.raises(
            ValidationError, match="exclusive partnership with another channel manager"
        ):
            services.create_partnership(other, partner, by=None, data_sync_enabled=True)
        assert partner.upstream_partnerships.count() == 1

    def test_exclusive_only_when_alone(self, channel_manager, partner):
        make_partnership(channel_manager, partner, data_sync_enabled=True)
        other = OrganizationFactory(name="Evergreen Distribution")
        with pytest.raises(ValidationError, match="already works with another channel manager"):
            services.create_partnership(other, partner, by=None, **STRICT)

    def test_non_exclusive_partners_can_have_several_upstreams(self, channel_manager, partner):
        make_partnership(channel_manager, partner, data_sync_enabled=True)
        make_partnership(OrganizationFactory(), partner, data_sync_enabled=True)
        assert partner.upstream_partnerships.active().count() == 2

    def test_no_direct_cycle(self, channel_manager, partner):
        make_partnership(channel_manager, partner)
        with pytest.raises(ValidationError, match="would make a cycle"):
            services.create_partnership(partner, channel_manager, by=None)

    def test_no_longer_cycle(self):
        a, b, c, d = (OrganizationFactory() for _ in range(4))
        make_partnership(a, b)
        make_partnership(b, c)
        make_partnership(c, d)
        with pytest.raises(ValidationError, match="would make a cycle"):
            services.create_partnership(d, a, by=None)
        # An ended link breaks the chain.
        services.end_partnership(Partnership.objects.get(upstream=b, downstream=c), by=None)
        assert services.create_partnership(d, a, by=None).is_active

    def test_unknown_flag_is_a_programming_error(self, channel_manager, partner):
        with pytest.raises(TypeError):
            services.create_partnership(channel_manager, partner, by=None, exclusive=True)

    def test_records_creator_and_announces(
        self,
        channel_manager,
        partner,
        channel_manager_admin,
        events,
        django_capture_on_commit_callbacks,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            partnership = services.create_partnership(
                channel_manager, partner, by=channel_manager_admin, data_sync_enabled=True
            )
        assert partnership.created_by == channel_manager_admin
        assert events == [
            (
                "partnership_created",
                {
                    "partnership": partnership,
                    "by": channel_manager_admin,
                    "partnership_request": None,
                    # Read with the organizations' locks: whoever tells them asks no more.
                    "admins": {channel_manager.pk: [channel_manager_admin.pk], partner.pk: []},
                },
            )
        ]

    def test_nothing_announced_when_rolled_back(
        self, channel_manager, partner, events, django_capture_on_commit_callbacks
    ):
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(ValidationError),
        ):
            services.create_partnership(channel_manager, channel_manager, by=None)
        assert callbacks == []
        assert events == []


class TestUpdateFlags:
    def test_changes_flags_and_announces_modes(
        self,
        channel_manager,
        partner,
        channel_manager_admin,
        events,
        django_capture_on_commit_callbacks,
    ):
        partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
        with django_capture_on_commit_callbacks(execute=True):
            updated = services.update_flags(partnership, by=channel_manager_admin, **FLEXIBLE)
        assert updated.mode == "flexible"
        assert updated.version == partnership.version + 1
        assert updated.updated_by == channel_manager_admin
        assert events == [
            (
                "flags_changed",
                {
                    "partnership": updated,
                    "old_mode": "non_exclusive",
                    "new_mode": "flexible",
                    "by": channel_manager_admin,
                    "category_changes": {},  # the same save changed no category
                },
            )
        ]

    def test_saving_same_flags_changes_nothing(
        self, channel_manager, partner, events, django_capture_on_commit_callbacks
    ):
        partnership = make_partnership(channel_manager, partner, **STRICT)
        with django_capture_on_commit_callbacks(execute=True):
            same = services.update_flags(partnership, by=None, **STRICT)
        assert same.version == partnership.version
        assert events == []

    def test_impossible_combination_refused(self, channel_manager, partner):
        partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
        with pytest.raises(ValidationError, match="can only be on when"):
            services.update_flags(
                partnership, by=None, data_sync_enabled=True, allow_downstream_edit=True
            )
        partnership.refresh_from_db()
        assert partnership.mode == "non_exclusive"

    def test_becoming_exclusive_needs_to_be_the_only_upstream(self, channel_manager, partner):
        partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
        make_partnership(OrganizationFactory(name="Evergreen"), partner)
        with pytest.raises(ValidationError, match="already works with another channel manager"):
            services.update_flags(partnership, by=None, **STRICT)
        partnership.refresh_from_db()
        assert not partnership.is_exclusive

    def test_stale_edit_refused(self, channel_manager, partner, channel_manager_admin):
        partnership = make_partnership(channel_manager, partner, data_sync_enabled=True)
        opened_at_version = partnership.version
        services.update_flags(partnership, by=channel_manager_admin, **STRICT)
        with pytest.raises(ValidationError, match="changed meanwhile"):
            services.update_flags(
                partnership,
                by=channel_manager_admin,
                expected_version=opened_at_version,
                **FLEXIBLE,
            )
        partnership.refresh_from_db()
        assert partnership.mode == "strict"

    def test_ended_partnership_cannot_change(self, channel_manager, partner):
        partnership = services.end_partnership(make_partnership(channel_manager, partner), by=None)
        with pytest.raises(ValidationError, match="has ended"):
            services.update_flags(partnership, by=None, data_sync_enabled=True)


class TestEnd:
    def test_end_keeps_the_row_and_announces(
        self,
        channel_manager,
        partner,
        channel_manager_admin,
        events,
        django_capture_on_commit_callbacks,
    ):
        partnership = make_partnership(channel_manager, partner, **STRICT)
        with django_capture_on_commit_callbacks(execute=True):
            ended = services.end_partnership(partnership, by=channel_manager_admin)
        assert ended.status == "ended"
        assert ended.ended_by == channel_manager_admin
        assert Partnership.objects.filter(pk=partnership.pk).exists()
        assert events == [
            (
                "partnership_ended",
                {"partnership": ended, "old_mode": "strict", "by": channel_manager_admin},
            )
        ]

    def test_end_twice_refused(self, channel_manager, partner):
        partnership = make_partnership(channel_manager, partner)
        services.end_partnership(partnership, by=None)
        with pytest.raises(ValidationError, match="already ended"):
            services.end_partnership(partnership, by=None)


def emailed_token() -> str:
    """The token of the link in the latest email."""
    return re.search(r"/invitations/([^/\s]+)/", mail.outbox[-1].body).group(1)


def a_different_token(token: str) -> str:
    """``token`` with its first character changed: always another token, whatever it was."""
    return ("y" if token[0] == "x" else "x") + token[1:]


class TestInvitations:
    def invite(self, channel_manager, channel_manager_admin, **flags):
        return services.invite_organization(
            channel_manager,
            name="Summit Solar Co.",
            email="owner@summitsolar.example",
            invited_by=channel_manager_admin,
            **flags,
        )

    def test_invite_emails_a_single_use_link(
        self, channel_manager, channel_manager_admin, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            invitation = self.invite(channel_manager, channel_manager_admin, **STRICT)
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["owner@summitsolar.example"]
        assert "Helios Energy Partners invites Summit Solar Co." in message.subject
        token = emailed_token()
        # Only a hash of the token is stored.
        stored = Invitation.objects.get(pk=invitation.pk)
        assert token not in stored.token_hash
        assert services.find_invitation(token) == stored
        assert (stored.email_status, stored.email_attempts) == ("sent", 1)

    def test_mail_server_down_saves_the_invitation_and_says_so(
        self,
        channel_manager,
        channel_manager_admin,
        mail_server,
        django_capture_on_commit_callbacks,
    ):
        mail_server(refusals=99)
        with django_capture_on_commit_callbacks(execute=True):
            invitation = self.invite(channel_manager, channel_manager_admin)
        invitation.refresh_from_db()
        assert (invitation.status, invitation.email_status) == ("pending", "failed")
        assert invitation.email_attempts == tasks.MAX_ATTEMPTS
        assert "SMTPServerDisconnected" in invitation.email_error
        assert mail.outbox == []

        mail_server(refusals=0)  # back up: the channel manager sends it again
        with django_capture_on_commit_callbacks(execute=True):
            services.resend_invitation(invitation, by=channel_manager_admin)
        invitation.refresh_from_db()
        assert (invitation.email_status, invitation.email_attempts) == ("sent", 1)
        assert invitation.email_error == ""
        assert services.find_invitation(emailed_token()) == invitation

    def test_a_refused_email_is_tried_again(
        self,
        channel_manager,
        channel_manager_admin,
        mail_server,
        django_capture_on_commit_callbacks,
    ):
        mail_server(refusals=tasks.MAX_ATTEMPTS - 1)
        with django_capture_on_commit_callbacks(execute=True):
            invitation = self.invite(channel_manager, channel_manager_admin)
        invitation.refresh_from_db()
        assert (invitation.email_status, invitation.email_attempts) == ("sent", tasks.MAX_ATTEMPTS)
        assert len(mail.outbox) == 1
        assert services.find_invitation(emailed_token()) == invitation

    def test_in_the_database_queue_the_next_attempt_waits(
        self,
        channel_manager,
        channel_manager_admin,
        mail_server,
        database_task_queue,
        django_capture_on_commit_callbacks,
    ):
        """Production's queue: a refused attempt queues the next one for a minute later
        (a worker would otherwise hammer a server that is down)."""
        mail_server(refusals=99)
        with django_capture_on_commit_callbacks(execute=True):
            invitation = self.invite(channel_manager, channel_manager_admin)
        first = DBTaskResult.objects.get()
        assert first.task_path == "partnerships.tasks.send_invitation_email"
        assert first.args_kwargs == {"args": [invitation.pk], "kwargs": {}}
        tasks.send_invitation_email.call(invitation.pk)  # as a worker runs it
        second = DBTaskResult.objects.exclude(pk=first.pk).get()
        assert second.args_kwargs == {"args": [invitation.pk, 2], "kwargs": {}}
        wait = second.run_after - timezone.now()
        assert tasks.FIRST_RETRY_DELAY - timedelta(seconds=30) < wait <= tasks.FIRST_RETRY_DELAY
        invitation.refresh_from_db()
        assert (invitation.email_status, invitation.email_attempts) == ("sending", 1)

    def test_resending_replaces_the_link(
        self, channel_manager, channel_manager_admin, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            invitation = self.invite(channel_manager, channel_manager_admin)
        first = emailed_token()
        with django_capture_on_commit_callbacks(execute=True):
            services.resend_invitation(invitation, by=channel_manager_admin)
        second = emailed_token()
        assert len(mail.outbox) == 2
        assert services.find_invitation(second) == invitation
        with pytest.raises(ValidationError) as error:
            services.find_invitation(first)
        assert error.value.code == "unknown"

    @pytest.mark.parametrize("case", ["sending", "accepted", "revoked", "expired"])
    def test_resend_refused(
        self, channel_manager, channel_manager_admin, case, django_capture_on_commit_callbacks
    ):
        invitation = self.invite(channel_manager, channel_manager_admin)  # its email not sent yet
        if case == "accepted":
            services.accept_invitation(invitation, UserFactory())
        elif case == "revoked":
            services.revoke_invitation(invitation, by=channel_manager_admin)
        elif case == "expired":
            Invitation.objects.filter(pk=invitation.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        if case != "sending":
            Invitation.objects.filter(pk=invitation.pk).update(email_status="failed")
        before = Invitation.objects.values().get(pk=invitation.pk)
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
            services.resend_invitation(invitation, by=channel_manager_admin)
        assert Invitation.objects.values().get(pk=invitation.pk) == before
        assert mail.outbox == []

    def test_no_email_for_an_invitation_withdrawn_before_it_went(
        self, channel_manager, channel_manager_admin
    ):
        invitation = self.invite(channel_manager, channel_manager_admin)  # its email not sent yet
        services.revoke_invitation(invitation, by=channel_manager_admin)
        tasks.send_invitation_email.enqueue(invitation.pk)  # the queued email, run late
        assert mail.outbox == []

    def test_invite_validates_input(self, channel_manager, channel_manager_admin):
        with pytest.raises(ValidationError) as error:
            services.invite_organization(
                channel_manager, name=" ", email="not-an-email", invited_by=channel_manager_admin
            )
        assert set(error.value.message_dict) == {"organization_name", "email"}
        with pytest.raises(ValidationError, match="can only be on when"):
            self.invite(channel_manager, channel_manager_admin, allow_downstream_edit=True)
        assert not Invitation.objects.exists()
        assert mail.outbox == []

    @pytest.mark.parametrize("name", ["Summit\nSolar", "Summit\u200bSolar", "\u202eSummit"])
    def test_invite_refuses_hidden_characters_in_the_name(
        self, channel_manager, channel_manager_admin, name
    ):
        with pytest.raises(ValidationError) as error:
            services.invite_organization(
                channel_manager, name=name, email="a@example.com", invited_by=channel_manager_admin
            )
        assert "cannot contain line breaks" in error.value.message_dict["organization_name"][0]
        assert not Invitation.objects.exists()
        assert mail.outbox == []

    def test_invite_refuses_the_name_of_an_organization_on_the_platform(
        self, channel_manager, channel_manager_admin
    ):
        OrganizationFactory(name="Summit Solar Co.")
        with pytest.raises(ValidationError) as error:
            services.invite_organization(
                channel_manager,
                name="SUMMIT solar co.",
                email="a@example.com",
                invited_by=channel_manager_admin,
            )
        assert (
            "Request a partnership with it instead"
            in (error.value.message_dict["organization_name"][0])
        )
        assert not Invitation.objects.exists()

    @pytest.mark.parametrize(
        ("name", "email", "field"),
        [
            ("Summit Solar Company", "OWNER@summitsolar.example", "email"),
            ("  summit  SOLAR co. ", "someone.else@summitsolar.example", "organization_name"),
        ],
    )
    def test_a_second_pending_invitation_of_one_organization_is_refused(
        self, channel_manager, channel_manager_admin, name, email, field
    ):
        first = self.invite(channel_manager, channel_manager_admin)
        with pytest.raises(services.InvitedAlready) as error:
            services.invite_organization(
                channel_manager, name=name, email=email, invited_by=channel_manager_admin
            )
        assert error.value.invitation == first
        (message,) = error.value.message_dict[field]
        assert "You invited Summit Solar Co. (owner@summitsolar.example) on" in message
        assert "still waiting to be accepted" in message
        assert list(Invitation.objects.all()) == [first]

    @pytest.mark.parametrize("ended", ["withdrawn", "expired"])
    def test_an_invitation_withdrawn_or_expired_does_not_stand_in_the_way(
        self, channel_manager, channel_manager_admin, ended
    ):
        first = self.invite(channel_manager, channel_manager_admin)
        if ended == "withdrawn":
            services.revoke_invitation(first, by=channel_manager_admin)
        else:
            Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now())
        second = self.invite(channel_manager, channel_manager_admin)
        assert second.pk != first.pk

    def test_another_channel_manager_may_invite_the_same_organization(
        self, channel_manager, channel_manager_admin
    ):
        self.invite(channel_manager, channel_manager_admin)
        other = OrganizationFactory(name="Zenith Channel")
        self.invite(other, None)
        assert Invitation.objects.filter(status="pending").count() == 2

    def test_an_email_that_accepted_an_invitation_is_not_invited_again(
        self, channel_manager, channel_manager_admin
    ):
        services.accept_invitation(
            self.invite(channel_manager, channel_manager_admin), UserFactory()
        )
        with pytest.raises(services.InvitedAlready) as error:
            services.invite_organization(
                channel_manager,
                name="Summit Solar West",
                email="owner@summitsolar.example",
                invited_by=channel_manager_admin,
            )
        (message,) = error.value.message_dict["email"]
        assert "their organization is Summit Solar Co. (summit-solar-co)" in message
        assert "Request a partnership with it instead" in message
        assert Invitation.objects.count() == 1

    def test_an_email_that_accepted_an_invitation_accepts_no_other(
        self, channel_manager, channel_manager_admin
    ):
        """Two channel managers invited one company; the second link creates no second
        organization."""
        first = self.invite(channel_manager, channel_manager_admin)
        other = OrganizationFactory(name="Zenith Channel")
        second = services.invite_organization(
            other, name="Summit Solar West", email="Owner@SummitSolar.example", invited_by=None
        )
        services.accept_invitation(first, UserFactory())
        before = (Organization.objects.count(), Partnership.objects.count())
        with pytest.raises(ValidationError) as error:
            services.accept_invitation(second, UserFactory())
        assert error.value.code == "email_used"
        assert (
            "Owner@SummitSolar.example accepted an invitation already: its organization "
            "Summit Solar Co. (summit-solar-co) joined Channel Data Sync on"
        ) in error.value.messages[0]
        assert "Ask Zenith Channel to request a partnership" in error.value.messages[0]
        assert (Organization.objects.count(), Partnership.objects.count()) == before
        second.refresh_from_db()
        assert second.status == "pending"

    def test_accept_refuses_a_name_taken_since_the_invitation(
        self, channel_manager, channel_manager_admin
    ):
        invitation = self.invite(channel_manager, channel_manager_admin)
        OrganizationFactory(name="summit solar co.")
        with pytest.raises(ValidationError, match="joined Channel Data Sync after this invitation"):
            services.accept_invitation(invitation, UserFactory())
        assert Organization.objects.count() == 2
        assert Invitation.objects.get().status == "pending"

    def test_accept_creates_organization_admin_and_partnership(
        self, channel_manager, channel_manager_admin, events, django_capture_on_commit_callbacks
    ):
        invitation = self.invite(channel_manager, channel_manager_admin, **FLEXIBLE)
        user = UserFactory()
        with django_capture_on_commit_callbacks(execute=True):
            partnership = services.accept_invitation(invitation, user)
        organization = partnership.downstream
        assert organization.name == "Summit Solar Co."
        assert Membership.objects.get(organization=organization).user == user
        assert Membership.objects.get(organization=organization).role == "admin"
        assert partnership.upstream == channel_manager
        assert partnership.mode == "flexible"
        assert partnership.created_by == channel_manager_admin
        invitation.refresh_from_db()
        assert (invitation.status, invitation.accepted_by, invitation.partnership) == (
            "accepted",
            user,
            partnership,
        )
        assert [name for name, _ in events] == ["invitation_accepted"]
        assert events[0][1]["partnership"] == partnership

    @pytest.mark.parametrize("case", ["used", "expired", "revoked", "unknown"])
    def test_bad_tokens_create_nothing(self, channel_manager, channel_manager_admin, case):
        invitation = self.invite(channel_manager, channel_manager_admin)
        token = invitation.issue_token()
        if case == "used":
            services.accept_invitation(invitation, UserFactory())
        elif case == "expired":
            Invitation.objects.filter(pk=invitation.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        elif case == "revoked":
            services.revoke_invitation(invitation, by=channel_manager_admin)
        else:
            token = a_different_token(token)
        organizations = Organization.objects.count()
        partnerships = Partnership.objects.count()
        with pytest.raises(ValidationError) as error:
            services.find_invitation(token)
        assert error.value.code == case
        if case != "unknown":
            with pytest.raises(ValidationError):
                services.accept_invitation(invitation, UserFactory())
        assert Organization.objects.count() == organizations
        assert Partnership.objects.count() == partnerships


class TestRequests:
    def test_request_changes_nothing_until_accepted(
        self,
        channel_manager,
        partner,
        channel_manager_admin,
        partner_admin,
        events,
        django_capture_on_commit_callbacks,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            sent = services.request_partnership(
                channel_manager, partner, by=channel_manager_admin, **STRICT
            )
        assert not Partnership.objects.exists()
        assert events == []
        with django_capture_on_commit_callbacks(execute=True):
            partnership = services.accept_request(sent, by=partner_admin)
        assert partnership.mode == "strict"
        assert (partnership.upstream, partnership.downstream) == (channel_manager, partner)
        sent.refresh_from_db()
        assert (sent.status, sent.decided_by, sent.partnership) == (
            "accepted",
            partner_admin,
            partnership,
        )
        assert [name for name, _ in events] == ["partnership_created"]

    def test_request_message_has_a_maximum(self, channel_manager, partner, channel_manager_admin):
        with pytest.raises(ValidationError) as error:
            services.request_partnership(
                channel_manager,
                partner,
                by=channel_manager_admin,
                message="x" * 2001,
                data_sync_enabled=True,
            )
        assert error.value.message_dict["message"] == [
            "Keep the message to at most 2,000 characters."
        ]
        assert not PartnershipRequest.objects.exists()
        services.request_partnership(
            channel_manager, partner, by=channel_manager_admin, message="x" * 2000
        )
        assert PartnershipRequest.objects.count() == 1

    def test_decline_creates_nothing(
        self, channel_manager, partner, channel_manager_admin, partner_admin
    ):
        sent = services.request_partnership(channel_manager, partner, by=channel_manager_admin)
        services.decline_request(sent, by=partner_admin)
        assert not Partnership.objects.exists()
        with pytest.raises(ValidationError, match="already declined"):
            services.accept_request(sent, by=partner_admin)
        assert not Partnership.objects.exists()

    def test_one_pending_request_per_pair(self, channel_manager, partner, channel_manager_admin):
        services.request_partnership(channel_manager, partner, by=channel_manager_admin)
        with pytest.raises(ValidationError, match="already waiting"):
            services.request_partnership(channel_manager, partner, by=channel_manager_admin)

    def test_request_checks_the_rules_again_on_accept(
        self, channel_manager, partner, channel_manager_admin, partner_admin
    ):
        sent = services.request_partnership(
            channel_manager, partner, by=channel_manager_admin, **STRICT
        )
        make_partnership(OrganizationFactory(), partner, data_sync_enabled=True)
        with pytest.raises(ValidationError, match="only active channel manager"):
            services.accept_request(sent, by=partner_admin)
        sent.refresh_from_db()
        assert sent.status == "pending"
        assert partner.upstream_partnerships.count() == 1

    def test_withdraw(self, channel_manager, partner, channel_manager_admin):
        sent = services.request_partnership(channel_manager, partner, by=channel_manager_admin)
        services.withdraw_request(sent, by=channel_manager_admin)
        assert PartnershipRequest.objects.get().status == "withdrawn"


def test_a_refused_request_names_no_other_channel_manager():
    """The organization asking may be a stranger to the partner: the reason a partnership is
    refused never names the partner's other channel managers."""
    from tests.factories import OrganizationFactory

    partner = OrganizationFactory(name="Sunrise Solar")
    services.create_partnership(
        OrganizationFactory(name="Evergreen Distribution"), partner, by=None, is_exclusive=True
    )
    stranger = OrganizationFactory(name="Helios Energy Partners")
    with pytest.raises(ValidationError) as refused:
        services.create_partnership(stranger, partner, by=None)
    assert "Evergreen" not in str(refused.value)


def test_create_partnership_reads_each_organization_once():
    """Both organizations are found by the lock of ``create_partnership``; validating the new
    partnership does not ask the database again whether they exist."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    upstream, downstream = OrganizationFactory(), OrganizationFactory()
    with CaptureQueriesContext(connection) as queries:
        partnership = services.create_partnership(upstream, downstream, by=None)
    table = f'"{Organization._meta.db_table}"'
    reads = [q["sql"] for q in queries.captured_queries if f"FROM {table}" in q["sql"]]
    assert len(reads) == 1, reads
    assert Partnership.objects.get(pk=partnership.pk).downstream == downstream


def test_create_partnership_refuses_an_organization_that_is_gone():
    upstream, downstream = OrganizationFactory(), OrganizationFactory()
    Organization.objects.filter(pk=downstream.pk).delete()
    with pytest.raises(ValidationError):
        services.create_partnership(upstream, downstream, by=None)
    assert not Partnership.objects.exists()


def test_the_rules_of_a_new_partnership_are_checked_with_two_reads():
    """The partner's other active partnerships are counted once for every rule (same channel
    manager, exclusive, any at all); one more read finds no cycle below a fresh partner."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    upstream, downstream = OrganizationFactory(), OrganizationFactory()
    with CaptureQueriesContext(connection) as queries:
        services.create_partnership(upstream, downstream, by=None, is_exclusive=True)
    table = f'"{Partnership._meta.db_table}"'
    # On PostgreSQL the locks and these reads are one text (one round trip).
    statements = [sql for q in queries.captured_queries for sql in q["sql"].split("; ")]
    reads = [sql for sql in statements if sql.startswith("SELECT")]
    assert len([sql for sql in reads if f"FROM {table}" in sql]) == 2, reads
