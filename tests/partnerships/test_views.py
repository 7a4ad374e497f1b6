"""Partnership pages: permissions, flag form, invitations, requests, and the list's queries."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from organizations.models import Membership, Organization
from partnerships import services
from partnerships.models import Invitation, Partnership, PartnershipRequest
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, make_partnership

pytestmark = pytest.mark.django_db

STRICT = {"is_exclusive": True, "data_sync_enabled": True}


def url(name: str, organization: Organization, *args) -> str:
    return reverse(f"partnerships:{name}", args=[organization.slug, *args])


@pytest.fixture
def partnership(channel_manager, partner):
    return make_partnership(channel_manager, partner, data_sync_enabled=True)


def post_flags(client, organization, partnership, **flags):
    data = {"version": partnership.version}
    data.update({name: "on" for name, value in flags.items() if value})
    return client.post(url("edit", organization, partnership.pk), data)


class TestFlagEditing:
    def test_upstream_admin_saves_flags(
        self, client, channel_manager_admin, channel_manager, partnership
    ):
        client.force_login(channel_manager_admin)
        response = post_flags(
            client, channel_manager, partnership, is_exclusive=True, data_sync_enabled=True
        )
        assert response.status_code == 302
        partnership.refresh_from_db()
        assert partnership.mode == "strict"
        assert partnership.updated_by == channel_manager_admin

    def test_edit_fragment_for_htmx(
        self, client, channel_manager_admin, channel_manager, partnership
    ):
        client.force_login(channel_manager_admin)
        response = client.get(url("edit", channel_manager, partnership.pk), HTTP_HX_REQUEST="true")
        content = response.content.decode()
        assert "<html" not in content
        assert 'id="partnership-details"' in content
        assert "Edit Partnership Details" in content
        saved = client.post(
            url("edit", channel_manager, partnership.pk),
            {"version": partnership.version, "is_exclusive": "on", "data_sync_enabled": "on"},
            HTTP_HX_REQUEST="true",
        )
        assert saved.status_code == 200
        assert "Partnership flags saved." in saved.content.decode()
        assert "<html" not in saved.content.decode()
        # The sync section further down the page is refreshed too (out of band).
        assert 'id="partnership-sync" hx-swap-oob="true"' in saved.content.decode()

    def test_allow_edit_shown_only_with_exclusive_and_sync(
        self, client, channel_manager_admin, channel_manager, partnership
    ):
        client.force_login(channel_manager_admin)
        edit = url("edit", channel_manager, partnership.pk)
        page = client.get(edit).content.decode()  # non-exclusive: hidden
        assert "id_allow_downstream_edit" not in page

        def refresh(**flags):
            data = {"_refresh": "1", "version": partnership.version}
            data.update(dict.fromkeys(flags, "on"))
            return client.post(edit, data, HTTP_HX_REQUEST="true").content.decode()

        both = refresh(is_exclusive=True, data_sync_enabled=True)
        assert "id_allow_downstream_edit" in both
        cleared = refresh(is_exclusive=True, allow_downstream_edit=True)
        assert "id_allow_downstream_edit" not in cleared
        assert 'data-testid="form-mode" title="Nothing is synced.">Off<' in cleared
        # A redraw saves nothing.
        partnership.refresh_from_db()
        assert partnership.mode == "non_exclusive"

    def test_forged_impossible_combination_refused(
        self, client, channel_manager_admin, channel_manager, partnership
    ):
        client.force_login(channel_manager_admin)
        response = post_flags(
            client, channel_manager, partnership, data_sync_enabled=True, allow_downstream_edit=True
        )
        assert response.status_code == 400
        assert "can only be on when" in response.content.decode()
        partnership.refresh_from_db()
        assert (partnership.allow_downstream_edit, partnership.version) == (False, 1)

    def test_stale_form_refused(self, client, channel_manager_admin, channel_manager, partnership):
        client.force_login(channel_manager_admin)
        opened = partnership.version
        services.update_flags(
            partnership, by=UserFactory(first_name="Maya", last_name="Chen"), **STRICT
        )
        response = client.post(
            url("edit", channel_manager, partnership.pk),
            {"version": opened, "data_sync_enabled": "on"},
        )
        assert response.status_code == 400
        assert "changed meanwhile (by Maya Chen" in response.content.decode()
        partnership.refresh_from_db()
        assert partnership.mode == "strict"

    @pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
    def test_after_a_stale_save_the_form_shows_the_current_flags_and_saves(
        self, client, channel_manager_admin, channel_manager, partnership, htmx
    ):
        client.force_login(channel_manager_admin)
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        edit = url("edit", channel_manager, partnership.pk)
        opened = client.get(edit, **headers).content.decode()
        fields = dict(
            re.findall(r'<input type="hidden" name="(version|opened)" value="([^"]*)"', opened)
        )
        assert fields == {"version": "1", "opened": "data_sync_enabled"}
        services.update_flags(
            partnership, by=UserFactory(first_name="Maya", last_name="Chen"), **STRICT
        )
        # Saved from the form opened before Maya's change: refused, and shown what she did.
        stale = client.post(edit, {**fields, "data_sync_enabled": "on"}, **headers)
        page = stale.content.decode()
        assert "changed meanwhile (by Maya Chen" in page
        assert "Exclusive: off → on" in page
        assert "Mode: Non-exclusive → Strict" in page
        assert re.search(r'name="is_exclusive"[^>]* checked', page)
        refreshed = dict(
            re.findall(r'<input type="hidden" name="(version|opened)" value="([^"]*)"', page)
        )
        assert refreshed == {"version": "2", "opened": "is_exclusive data_sync_enabled"}
        # Saved again from the form as it now is: it goes through.
        saved = client.post(edit, {**refreshed, "data_sync_enabled": "on"}, **headers)
        assert saved.status_code in (200, 302)
        assert "changed meanwhile" not in saved.content.decode()
        partnership.refresh_from_db()
        assert (partnership.mode, partnership.version) == ("non_exclusive", 3)
        assert partnership.updated_by == channel_manager_admin

    @pytest.mark.parametrize("who", ["member", "downstream_admin", "downstream_member"])
    def test_others_cannot_change_flags(self, client, who, channel_manager, partner, partnership):
        organization = channel_manager if who == "member" else partner
        role = "admin" if who == "downstream_admin" else "member"
        client.force_login(MembershipFactory(organization=organization, role=role).user)
        response = post_flags(client, organization, partnership, **STRICT)
        assert response.status_code == 403
        assert client.get(url("edit", organization, partnership.pk)).status_code == 403
        partnership.refresh_from_db()
        assert partnership.mode == "non_exclusive"

    def test_downstream_admin_sees_flags_read_only(
        self, client, partner_admin, partner, partnership
    ):
        client.force_login(partner_admin)
        page = client.get(url("detail", partner, partnership.pk)).content.decode()
        assert "Partnership Details" in page
        assert url("edit", partner, partnership.pk) not in page
        assert f"Helios Energy Partners ({partnership.upstream.slug}) sets these flags." in page

    def test_other_organizations_get_404(self, client, partnership):
        outsider = MembershipFactory(role="admin")
        client.force_login(outsider.user)
        mine = outsider.organization
        for name in ("detail", "edit", "end"):
            assert client.get(url(name, mine, partnership.pk)).status_code == 404
        assert post_flags(client, mine, partnership, **STRICT).status_code == 404
        assert client.post(url("end", mine, partnership.pk)).status_code == 404
        # Through the real organization's URL: not a member, so 404 as well.
        assert client.get(url("detail", partnership.upstream, partnership.pk)).status_code == 404
        partnership.refresh_from_db()
        assert partnership.is_active
        assert partnership.mode == "non_exclusive"


class TestEnding:
    @pytest.mark.parametrize("side", ["upstream", "downstream"])
    def test_either_admin_ends_after_confirmation(self, client, side, partnership):
        organization = getattr(partnership, side)
        client.force_login(MembershipFactory(organization=organization, role="admin").user)
        confirm = client.get(url("end", organization, partnership.pk))
        assert "End the partnership between" in confirm.content.decode()
        assert Partnership.objects.get(pk=partnership.pk).is_active
        response = client.post(url("end", organization, partnership.pk))
        assert response.status_code == 302
        assert Partnership.objects.get(pk=partnership.pk).status == "ended"

    def test_member_cannot_end(self, client, partnership):
        client.force_login(
            MembershipFactory(organization=partnership.downstream, role="member").user
        )
        assert client.post(url("end", partnership.downstream, partnership.pk)).status_code == 403
        assert Partnership.objects.get(pk=partnership.pk).is_active


class TestInvitationFlow:
    def send(self, client, channel_manager, **extra):
        data = {
            "organization_name": "Summit Solar Co.",
            "email": "owner@summitsolar.example",
            "data_sync_enabled": "on",
            **extra,
        }
        return client.post(url("invite", channel_manager), data)

    def link(self) -> str:
        return re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)

    def test_end_to_end_with_a_new_account(
        self, client, channel_manager_admin, channel_manager, django_capture_on_commit_callbacks
    ):
        client.force_login(channel_manager_admin)
        with django_capture_on_commit_callbacks(execute=True):
            response = self.send(client, channel_manager, is_exclusive="on")
        assert response.status_code == 302
        listing = client.get(url("list", channel_manager)).content.decode()
        assert "Invitation to <strong>Summit Solar Co.</strong>" in listing
        path = self.link().split("://", 1)[1].split("/", 1)[1]
        client.logout()

        page = client.get(f"/{path}")
        assert (
            f"Helios Energy Partners ({channel_manager.slug}) invites Summit Solar Co."
            in page.content.decode()
        )
        response = client.post(
            f"/{path}",
            {
                "username": "summit-owner",
                "email": "owner@summitsolar.example",
                "password1": "a long Passphrase 42",
                "password2": "a long Passphrase 42",
            },
        )
        summit = Organization.objects.get(name="Summit Solar Co.")
        assert response.status_code == 302
        assert response["Location"] == summit.get_absolute_url()
        membership = Membership.objects.get(organization=summit)
        assert (membership.user.username, membership.role) == ("summit-owner", "admin")
        partnership = Partnership.objects.get(downstream=summit)
        assert (partnership.upstream, partnership.mode) == (channel_manager, "strict")
        # Signed in as the new admin; the link is now used.
        assert client.get(summit.get_absolute_url(), follow=True).status_code == 200
        reused = client.get(f"/{path}")
        assert reused.status_code == 410
        page = reused.content.decode()
        assert "already been used: Summit Solar Co. was created with it." in page
        assert "Go to your organization" in page
        assert "Sign in" not in page  # signed in already
        client.logout()
        assert "Sign in" in client.get(f"/{path}").content.decode()

    def test_inviting_twice_points_at_the_pending_invitation(
        self, client, channel_manager_admin, channel_manager, django_capture_on_commit_callbacks
    ):
        client.force_login(channel_manager_admin)
        with django_capture_on_commit_callbacks(execute=True):
            self.send(client, channel_manager)
        pending = Invitation.objects.get()
        again = self.send(client, channel_manager, organization_name="Summit Solar Inc.")
        assert again.status_code == 400
        page = again.content.decode()
        assert "that invitation is still waiting to be accepted" in page
        assert url("invitation-resend", channel_manager, pending.pk) in page
        assert url("invitation-revoke", channel_manager, pending.pk) in page
        assert list(Invitation.objects.all()) == [pending]

    def test_mail_server_down_shows_a_resend_button_not_an_error_page(
        self,
        client,
        channel_manager_admin,
        channel_manager,
        mail_server,
        django_capture_on_commit_callbacks,
    ):
        client.force_login(channel_manager_admin)
        mail_server(refusals=99)
        with django_capture_on_commit_callbacks(execute=True):
            response = self.send(client, channel_manager)
        assert response.status_code == 302
        invitation = Invitation.objects.get()
        assert invitation.email_status == "failed"
        listing = client.get(response["Location"]).content.decode()
        assert "Email not sent —" in listing
        resend = url("invitation-resend", channel_manager, invitation.pk)
        assert f'action="{resend}"' in listing

        mail_server(refusals=0)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(resend)
        assert response.status_code == 302
        listing = client.get(response["Location"]).content.decode()
        assert "Email not sent" not in listing
        assert client.get(self.link()).status_code == 200  # the new link works

    @pytest.mark.django_db(transaction=True)
    def test_the_message_says_whether_the_email_went(
        self, client, channel_manager_admin, channel_manager, mail_server
    ):
        """Committed for real, as in a request: the immediate task backend has tried the
        email by the time the page answers, and the message says how it went."""
        client.force_login(channel_manager_admin)
        mail_server(refusals=99)
        failed = self.send(client, channel_manager, organization_name="Summit Solar Co.")
        page = client.get(failed["Location"]).content.decode()
        assert "its email to owner@summitsolar.example could not be sent" in page
        mail_server(refusals=0)
        sent = self.send(
            client, channel_manager, organization_name="Dawn Solar", email="owner@dawn.example"
        )
        page = client.get(sent["Location"]).content.decode()
        assert "Your invitation to owner@dawn.example was sent." in page

    def test_member_cannot_resend(
        self, client, channel_manager_admin, channel_manager, django_capture_on_commit_callbacks
    ):
        invitation = services.invite_organization(
            channel_manager,
            name="Summit Solar Co.",
            email="a@example.com",
            invited_by=channel_manager_admin,
        )
        Invitation.objects.filter(pk=invitation.pk).update(email_status="failed")
        client.force_login(MembershipFactory(organization=channel_manager, role="member").user)
        listing = client.get(url("list", channel_manager)).content.decode()
        assert "Email not sent" in listing
        resend = url("invitation-resend", channel_manager, invitation.pk)
        assert resend not in listing
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(resend).status_code == 403
        assert mail.outbox == []
        assert Invitation.objects.get().email_status == "failed"

    def test_signed_in_user_accepts(self, client, channel_manager_admin, channel_manager):
        invitation = services.invite_organization(
            channel_manager,
            name="Summit Solar Co.",
            email="a@example.com",
            invited_by=channel_manager_admin,
        )
        invitee = UserFactory()
        client.force_login(invitee)
        link = reverse("invitations:accept", args=[invitation.issue_token()])
        assert "Accept and create Summit Solar Co." in client.get(link).content.decode()
        assert client.post(link).status_code == 302
        assert Membership.objects.get(organization__name="Summit Solar Co.").user == invitee

    def test_bad_signup_creates_nothing(self, client, channel_manager_admin, channel_manager):
        invitation = services.invite_organization(
            channel_manager,
            name="Summit Solar Co.",
            email="a@example.com",
            invited_by=channel_manager_admin,
        )
        users = UserFactory._meta.model.objects.count()
        response = client.post(
            reverse("invitations:accept", args=[invitation.issue_token()]),
            {"username": "x", "password1": "a long Passphrase 42", "password2": "different"},
        )
        assert response.status_code == 400
        assert "password fields didn" in response.content.decode()
        assert UserFactory._meta.model.objects.count() == users
        assert not Organization.objects.filter(name="Summit Solar Co.").exists()
        assert Invitation.objects.get().status == "pending"

    @pytest.mark.parametrize(("token", "status"), [("nope", 404), ("x" * 43, 404)])
    def test_unknown_token_page(self, client, token, status):
        response = client.get(reverse("invitations:accept", args=[token]))
        assert response.status_code == status
        assert "This invitation link is not valid" in response.content.decode()
        assert client.post(reverse("invitations:accept", args=[token])).status_code == status
        assert Organization.objects.count() == 0

    def test_invalid_invite_form_changes_nothing(
        self, client, channel_manager_admin, channel_manager
    ):
        client.force_login(channel_manager_admin)
        response = self.send(client, channel_manager, email="nope", organization_name="")
        assert response.status_code == 400
        content = response.content.decode()
        assert "Enter a valid email address." in content
        assert "This field is required." in content
        assert not Invitation.objects.exists()
        assert mail.outbox == []

    def test_organization_name_with_a_line_break_is_refused(
        self, client, channel_manager_admin, channel_manager, django_capture_on_commit_callbacks
    ):
        """The name goes into the email's subject: a line break would end that header."""
        client.force_login(channel_manager_admin)
        with django_capture_on_commit_callbacks(execute=True):
            response = self.send(
                client, channel_manager, organization_name="Summit\r\nBcc: all@example.com"
            )
        assert response.status_code == 400
        content = response.content.decode()
        assert 'id="id_organization_name_error"' in content
        assert "It contains a line break: retype it without." in content
        assert not Invitation.objects.exists()
        assert mail.outbox == []

    def test_the_name_of_an_organization_on_the_platform_is_refused_beside_the_field(
        self, client, channel_manager_admin, channel_manager
    ):
        OrganizationFactory(name="summit solar co.")
        client.force_login(channel_manager_admin)
        response = self.send(client, channel_manager)
        assert response.status_code == 400
        content = response.content.decode()
        assert 'id="id_organization_name_error"' in content
        assert "Request a partnership with it instead" in content
        assert not Invitation.objects.exists()

    def test_accepting_after_the_name_was_taken_explains_why(
        self, client, channel_manager_admin, channel_manager
    ):
        invitation = services.invite_organization(
            channel_manager,
            name="Summit Solar Co.",
            email="a@example.com",
            invited_by=channel_manager_admin,
        )
        OrganizationFactory(name="summit solar CO.")  # registered meanwhile
        client.force_login(UserFactory())
        response = client.post(reverse("invitations:accept", args=[invitation.issue_token()]))
        assert response.status_code == 410
        assert "joined Channel Data Sync after this invitation was sent" in (
            response.content.decode()
        )
        assert Organization.objects.filter(name_key="summit solar co.").count() == 1
        assert Invitation.objects.get().status == "pending"

    def test_member_cannot_invite(self, client, channel_manager):
        client.force_login(MembershipFactory(organization=channel_manager, role="member").user)
        assert self.send(client, channel_manager).status_code == 403
        assert not Invitation.objects.exists()


class TestRequestFlow:
    def test_end_to_end(
        self, client, channel_manager_admin, partner_admin, channel_manager, partner
    ):
        client.force_login(channel_manager_admin)
        response = client.post(
            url("request", channel_manager),
            {"organization": "sunrise solar", "is_exclusive": "on", "data_sync_enabled": "on"},
        )
        assert response.status_code == 302
        assert not Partnership.objects.exists()

        client.force_login(partner_admin)
        listing = client.get(url("list", partner)).content.decode()
        assert "Partnership requests waiting for your answer" in listing
        assert "Review the request from Helios Energy Partners" in listing
        sent = PartnershipRequest.objects.get()
        review = client.get(url("request-detail", partner, sent.pk)).content.decode()
        assert "Accept request from Helios Energy Partners" in review
        assert "Partner may not edit" in review
        response = client.post(url("request-accept", partner, sent.pk))
        partnership = Partnership.objects.get()
        assert response["Location"] == partnership.url_for(partner)
        assert (partnership.upstream, partnership.downstream, partnership.mode) == (
            channel_manager,
            partner,
            "strict",
        )

    def test_decline(self, client, channel_manager_admin, partner_admin, channel_manager, partner):
        sent = services.request_partnership(channel_manager, partner, by=channel_manager_admin)
        client.force_login(partner_admin)
        client.post(url("request-decline", partner, sent.pk))
        assert PartnershipRequest.objects.get().status == "declined"
        assert not Partnership.objects.exists()
        review = client.get(url("request-detail", partner, sent.pk)).content.decode()
        assert "This request was declined" in review
        assert "Accept request" not in review

    def test_only_the_addressee_decides(
        self, client, channel_manager_admin, channel_manager, partner
    ):
        sent = services.request_partnership(channel_manager, partner, by=channel_manager_admin)
        client.force_login(channel_manager_admin)  # the requester cannot accept its own request
        assert client.post(url("request-accept", channel_manager, sent.pk)).status_code == 404
        assert client.get(url("request-detail", channel_manager, sent.pk)).status_code == 404
        client.force_login(MembershipFactory(organization=partner, role="member").user)
        assert client.post(url("request-accept", partner, sent.pk)).status_code == 403
        assert client.get(url("request-detail", partner, sent.pk)).status_code == 403
        assert PartnershipRequest.objects.get().status == "pending"
        assert not Partnership.objects.exists()

    def test_unknown_organization_refused(self, client, channel_manager_admin, channel_manager):
        client.force_login(channel_manager_admin)
        response = client.post(url("request", channel_manager), {"organization": "Nobody Inc"})
        assert response.status_code == 400
        assert "No organization is called “Nobody Inc”" in response.content.decode()
        assert not PartnershipRequest.objects.exists()

    def test_suggestions(self, client, channel_manager_admin, channel_manager, partner):
        client.force_login(channel_manager_admin)
        response = client.get(url("organization-search", channel_manager), {"organization": "sunr"})
        assert (
            f'<option value="{partner.slug}">Sunrise Solar ({partner.slug})</option>'
            in response.content.decode()
        )
        own = client.get(url("organization-search", channel_manager), {"organization": "helios"})
        assert "<option" not in own.content.decode()

    def test_members_cannot_search_or_request(self, client, channel_manager, partner):
        """Searching every organization on the platform is for admins, who may ask one to
        partner; a member reads only, so gets neither the suggestions nor the form."""
        client.force_login(MembershipFactory(organization=channel_manager, role="member").user)
        search = client.get(url("organization-search", channel_manager), {"organization": "sunr"})
        assert search.status_code == 403
        assert "Sunrise Solar" not in search.content.decode()
        assert client.get(url("request", channel_manager)).status_code == 403
        sent = client.post(url("request", channel_manager), {"organization": "sunrise solar"})
        assert sent.status_code == 403
        assert not PartnershipRequest.objects.exists()


class TestList:
    def test_lists_both_directions_with_badges(
        self, client, channel_manager_admin, channel_manager, partner
    ):
        make_partnership(channel_manager, partner, **STRICT)
        make_partnership(OrganizationFactory(name="Evergreen Distribution"), channel_manager)
        client.force_login(channel_manager_admin)
        page = client.get(url("list", channel_manager)).content.decode()
        downstream = page.split('id="downstream-heading"')[1].split('id="upstream-heading"')[0]
        upstream = page.split('id="upstream-heading"')[1]
        assert "Sunrise Solar" in downstream
        assert ">Strict<" in downstream
        assert "Evergreen Distribution" in upstream
        assert ">Off<" in upstream

    def test_search_and_ended_filter(self, client, channel_manager_admin, channel_manager):
        make_partnership(channel_manager, OrganizationFactory(name="Sunrise Solar"))
        ended = make_partnership(channel_manager, OrganizationFactory(name="Dusk Energy"))
        services.end_partnership(ended, by=None)
        client.force_login(channel_manager_admin)
        active = client.get(url("list", channel_manager)).content.decode()
        assert "Sunrise Solar" in active
        assert "Dusk Energy" not in active
        searched = client.get(url("list", channel_manager), {"q": "sunrise", "status": "all"})
        assert "Dusk Energy" not in searched.content.decode()
        ended_page = client.get(url("list", channel_manager), {"status": "ended"}).content.decode()
        assert "Dusk Energy" in ended_page
        assert "Sunrise Solar" not in ended_page

    def test_pages_compiled_once_are_the_orms(self, channel_manager, monkeypatch):
        """Every status, both sides, every page: the partnerships listed and the figures as
        the ORM reads them, and each row with its partner or channel manager."""
        from partnerships import views

        monkeypatch.setattr(views, "PAGE_SIZE", 2)
        for n in range(5):
            make_partnership(channel_manager, OrganizationFactory(name=f"Partner {n}"))
            make_partnership(OrganizationFactory(name=f"Manager {n}"), channel_manager)
        for partnership in Partnership.objects.all()[::3]:
            services.end_partnership(partnership, by=None)
        ids = [channel_manager.pk]
        for status in ("active", "ended", "all"):
            figures = views._FIGURES.rows(ids, status=status)
            assert figures == list(views._figures(ids, status=status))
            for side in ("downstream", "upstream"):
                own = "upstream" if side == "downstream" else "downstream"
                everyone = Partnership.objects.filter(**{own: channel_manager})
                if status != "all":
                    everyone = everyone.filter(status=status)
                by_name = sorted(everyone, key=lambda p: (getattr(p, side).name, -p.pk))
                listed = []
                for offset in range(0, 6, 2):
                    shape = {"status": status, "offset": offset, "limit": 2}
                    page = views._LISTED[side].objects(ids, **shape)
                    assert page == list(views._listed(side)(ids, **shape))
                    listed += [(p, getattr(p, side).name) for p in page]
                assert listed == [(p, getattr(p, side).name) for p in by_name]
            count = {"downstream": figures[0][0], "upstream": figures[0][1]}
            assert count["downstream"] == len(
                Partnership.objects.filter(upstream=channel_manager).filter(
                    **({} if status == "all" else {"status": status})
                )
            )
            assert count["upstream"] == len(
                Partnership.objects.filter(downstream=channel_manager).filter(
                    **({} if status == "all" else {"status": status})
                )
            )

    def test_a_later_page_and_a_search_of_both_sides(
        self, client, channel_manager_admin, channel_manager, monkeypatch
    ):
        from partnerships import views

        monkeypatch.setattr(views, "PAGE_SIZE", 2)
        for name in ("Alpha Solar", "Beta Solar", "Gamma Solar"):
            make_partnership(channel_manager, OrganizationFactory(name=name))
        for name in ("Delta Distribution", "Epsilon Solar Supply", "Zeta Supply"):
            make_partnership(OrganizationFactory(name=name), channel_manager)
        client.force_login(channel_manager_admin)
        second = client.get(url("list", channel_manager), {"page": 2, "upstream_page": 2})
        content = second.content.decode()
        downstream = content.split('id="downstream-heading"')[1].split('id="upstream-heading"')[0]
        upstream = content.split('id="upstream-heading"')[1]
        assert "Gamma Solar" in downstream
        assert "Alpha Solar" not in downstream
        assert "Zeta Supply" in upstream
        assert "Delta Distribution" not in upstream
        assert "3 partners" in downstream
        assert "3 channel managers" in upstream
        searched = client.get(url("list", channel_manager), {"q": "solar"}).content.decode()
        downstream = searched.split('id="downstream-heading"')[1].split('id="upstream-heading"')[0]
        upstream = searched.split('id="upstream-heading"')[1]
        assert "3 partners" in downstream
        assert "1 channel manager<" in upstream
        assert "Epsilon Solar Supply" in upstream
        assert "Zeta Supply" not in upstream

    def test_constant_queries_with_5000_partners(
        self, client, channel_manager_admin, channel_manager, django_assert_num_queries
    ):
        client.force_login(channel_manager_admin)

        def add_partners(count: int) -> None:
            start = Organization.objects.count()
            organizations = Organization.objects.bulk_create(
                Organization(name=f"Partner {start + n:05}", slug=f"partner-{start + n}")
                for n in range(count)
            )
            Partnership.objects.bulk_create(
                Partnership(
                    upstream=channel_manager, downstream=organization, data_sync_enabled=True
                )
                for organization in organizations
            )

        add_partners(5)
        client.get(url("list", channel_manager))  # the first visit also records the session
        with CaptureQueriesContext(connection) as few:
            client.get(url("list", channel_manager))
        # Drift of the whole page, every category: one read of the counts kept, which the
        # first visit recounted and stored; no settings are read. The tab badges of a channel
        # manager that is nobody's partner read no settings at all.
        settings_reads = [q for q in few.captured_queries if '"project_adder"' in q["sql"]]
        assert settings_reads == []
        kept_reads = [q for q in few.captured_queries if '"settings_sync_driftcount"' in q["sql"]]
        assert len(kept_reads) == 1
        # The memberships are read once: for the access check and the organization switcher.
        membership_reads = [
            q for q in few.captured_queries if '"organizations_membership"' in q["sql"]
        ]
        assert len(membership_reads) == 1
        # Session, user, memberships; the partners and channel managers listed with whether
        # any partner syncs, the partners' page (no channel managers: no page of them), drift,
        # overrides, last runs; unread notifications; tab badges; requests received and
        # sent; invitations sent.
        assert len(few.captured_queries) == 12
        add_partners(4995)
        # A page never counted: its drift is recounted (one query, every category) and stored
        # (one more); the next visit reads the counts kept.
        with django_assert_num_queries(len(few.captured_queries) + 2):
            client.get(url("list", channel_manager), {"page": 3})
        with django_assert_num_queries(len(few.captured_queries)):
            response = client.get(url("list", channel_manager), {"page": 3})
        content = response.content.decode()
        assert "5000 partners" in content
        assert "Page 3 of 200" in content


class TestAdmin:
    def test_staff_create_and_change_through_the_rules(
        self, client, channel_manager, partner, events, django_capture_on_commit_callbacks
    ):
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
        add = reverse("admin:partnerships_partnership_add")
        refused = client.post(
            add,
            {
                "upstream": channel_manager.pk,
                "downstream": partner.pk,
                "allow_downstream_edit": "on",
            },
        )
        assert refused.status_code == 200
        assert "can only be on when" in refused.content.decode()
        assert not Partnership.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post(
                add,
                {
                    "upstream": channel_manager.pk,
                    "downstream": partner.pk,
                    "is_exclusive": "on",
                    "data_sync_enabled": "on",
                },
            )
        assert created.status_code == 302
        partnership = Partnership.objects.get()
        assert partnership.mode == "strict"
        assert [name for name, _ in events] == ["partnership_created"]
        cycle = client.post(add, {"upstream": partner.pk, "downstream": channel_manager.pk})
        assert "would make a cycle" in cycle.content.decode()
        assert Partnership.objects.count() == 1
        changelist = client.get(
            reverse("admin:partnerships_partnership_changelist"), {"mode": "strict"}
        )
        assert "Sunrise Solar" in changelist.content.decode()


class TestOrganizationsShownWithTheirSlugs:
    """Wherever one organization sees another, its unique slug stands beside its name: names
    are chosen by the organizations themselves, and two may look alike."""

    @pytest.fixture
    def helios(self):
        return OrganizationFactory(name="Helios Energy Partners", slug="helios-energy")

    @pytest.fixture
    def summit(self):
        return OrganizationFactory(name="Summit Solar", slug="summit-solar")

    def test_requests_received_and_sent(self, client, helios, summit):
        services.request_partnership(helios, summit, by=None, data_sync_enabled=True)
        client.force_login(MembershipFactory(organization=summit).user)
        received = client.get(url("list", summit)).content.decode()
        assert (
            "<strong>Helios Energy Partners (helios-energy)</strong> asks to become your "
            "channel manager" in received
        )
        assert "Review the request from Helios Energy Partners (helios-energy)" in received
        client.force_login(MembershipFactory(organization=helios).user)
        sent = client.get(url("list", helios)).content.decode()
        assert "Request to <strong>Summit Solar (summit-solar)</strong>" in sent
        assert "Withdraw request to Summit Solar (summit-solar)" in sent

    def test_the_request_form_and_its_preview(self, client, helios, summit):
        client.force_login(MembershipFactory(organization=helios).user)
        suggestions = client.get(url("organization-search", helios), {"organization": "summ"})
        assert (
            '<option value="summit-solar">Summit Solar (summit-solar)</option>'
            in suggestions.content.decode()
        )
        form = client.post(
            url("request", helios),
            {"_refresh": "1", "organization": "summit-solar", "data_sync_enabled": "on"},
        )
        # The preview counts only what Helios sends: it names no one else (an oracle otherwise).
        assert "Preview of what you send" in form.content.decode()

    def test_partnerships_lists_detail_and_end(self, client, helios, summit):
        partnership = make_partnership(helios, summit, data_sync_enabled=True)
        make_partnership(OrganizationFactory(name="Evergreen", slug="evergreen"), helios)
        client.force_login(MembershipFactory(organization=helios).user)
        listing = client.get(url("list", helios)).content.decode()
        assert ">Summit Solar (summit-solar)</a>" in listing
        assert ">Evergreen (evergreen)</a>" in listing
        detail = client.get(url("detail", helios, partnership.pk)).content.decode()
        assert '<h2 class="h4 mb-0">Summit Solar (summit-solar)</h2>' in detail
        assert "Helios Energy Partners (helios-energy)</dd>" in detail
        end = client.get(url("end", helios, partnership.pk)).content.decode()
        assert (
            "End the partnership between Helios Energy Partners (helios-energy) and "
            "Summit Solar (summit-solar)?" in end
        )

    def test_the_invitation_page_and_email(
        self, client, helios, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            invitation = services.invite_organization(
                helios, name="Nova Roofing", email="a@example.com", invited_by=None
            )
        assert "Helios Energy Partners (helios-energy) invites Nova Roofing" in mail.outbox[0].body
        page = client.get(reverse("invitations:accept", args=[invitation.issue_token()]))
        assert (
            "Helios Energy Partners (helios-energy) invites Nova Roofing" in page.content.decode()
        )
