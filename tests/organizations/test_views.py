"""The Organization tab: who may see and change it, and what bad input changes (nothing)."""

from __future__ import annotations

import io
import os
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from organizations.models import License, Organization
from partnerships import services
from tests.factories import LicenseFactory, MembershipFactory, OrganizationFactory, UserFactory
from tests.images import image_upload

pytestmark = pytest.mark.django_db


def tab_url(organization: Organization) -> str:
    return reverse("organizations:organization", kwargs={"org": organization.slug})


def license_url(name: str, organization: Organization, *args) -> str:
    return reverse(
        f"settings_sync:{name}", args=[organization.slug, "organization", "licenses", *args]
    )


def license_add_url(organization: Organization) -> str:
    return license_url("add", organization)


class TestAccess:
    def test_anonymous_is_sent_to_sign_in(self, client, organization):
        response = client.get(tab_url(organization))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    def test_member_reads_without_edit_controls(self, member_client, organization):
        LicenseFactory(organization=organization, number="C46-777")
        response = member_client.get(tab_url(organization))
        assert response.status_code == 200
        assert b"C46-777" in response.content
        assert b"Save profile" not in response.content
        assert b"Add license" not in response.content
        assert b"Read-only: you are a member" in response.content

    def test_member_cannot_rename(self, member_client, organization):
        response = member_client.post(tab_url(organization), {"name": "Hijacked"})
        assert response.status_code == 403
        organization.refresh_from_db()
        assert organization.name != "Hijacked"

    def test_member_cannot_add_or_archive_licenses(self, member_client, organization):
        license_ = LicenseFactory(organization=organization)
        response = member_client.post(
            license_add_url(organization),
            {"license_type": "X", "number": "1", "jurisdiction": "Texas"},
        )
        assert response.status_code == 403
        archive = license_url("archive", organization, license_.pk)
        assert member_client.post(archive).status_code == 403
        assert License.objects.filter(organization=organization).count() == 1

    def test_other_organization_is_not_found(self, admin_client, organization):
        other = OrganizationFactory()
        other_license = LicenseFactory(organization=other)
        assert admin_client.get(tab_url(other)).status_code == 404
        assert admin_client.post(tab_url(other), {"name": "Taken over"}).status_code == 404
        other.refresh_from_db()
        assert other.name != "Taken over"
        # Another organization's license through one's own organization: also 404.
        edit = license_url("edit", organization, other_license.pk)
        assert admin_client.post(edit, {"number": "1"}).status_code == 404
        other_license.refresh_from_db()
        assert other_license.number != "1"

    def test_home_opens_the_last_organization(self, client):
        membership = MembershipFactory()
        second = MembershipFactory(user=membership.user)
        client.force_login(membership.user)
        client.get(tab_url(second.organization))
        response = client.get(reverse("home"))
        assert response["Location"] == second.organization.get_absolute_url()

    def test_user_without_organization_sees_explanation(self, client):
        client.force_login(UserFactory())
        response = client.get(reverse("home"))
        assert b"not in an organization yet" in response.content
        assert b"accept the invitation a channel" in response.content
        assert reverse("admin:index").encode() not in response.content

    def test_staff_without_organization_are_shown_the_way_to_the_admin(self, client):
        client.force_login(UserFactory(is_staff=True))
        page = client.get(reverse("home")).content.decode()
        assert "As platform staff you work in the administration" in page
        admin_link = f'href="{reverse("admin:index")}">Open the administration</a>'
        assert admin_link in page
        assert "accept the invitation" not in page

    def test_header_shows_current_organization_and_switcher(self, client):
        membership = MembershipFactory(organization__name="Sunrise Solar")
        MembershipFactory(user=membership.user, organization__name="Helios Energy")
        client.force_login(membership.user)
        response = client.get(tab_url(membership.organization))
        content = response.content.decode()
        assert 'data-testid="current-organization">Sunrise Solar<' in content
        assert "Helios Energy" in content

    def test_each_tab_links_to_its_own_page_of_this_organization(self, client):
        membership = MembershipFactory(organization__name="Sunrise Solar")
        other = MembershipFactory(user=membership.user, organization__name="Helios Energy")
        client.force_login(membership.user)
        for organization in (membership.organization, other.organization):
            page = client.get(tab_url(organization)).content.decode()
            bar = page.split('aria-label="Organization Settings"')[1].split("</nav>")[0]
            links = re.findall(r'href="([^"]+)"', bar)
            assert len(links) >= 8
            for link in links:
                assert link.startswith(f"/o/{organization.slug}/settings/")
                opened = client.get(link, follow=True).content.decode()
                opened_bar = opened.split('aria-label="Organization Settings"')[1].split("</nav>")[
                    0
                ]
                # The page opened is the tab that links to it.
                assert re.findall(r'aria-current="page"\s+href="([^"]+)"', opened_bar) == [link]


class TestProfile:
    def test_admin_renames(self, admin_client, organization):
        response = admin_client.post(tab_url(organization), {"name": "Sunrise Solar"})
        assert response.status_code == 302
        organization.refresh_from_db()
        assert organization.name == "Sunrise Solar"

    def test_blank_name_refused(self, admin_client, organization):
        before = organization.name
        response = admin_client.post(tab_url(organization), {"name": "  "})
        assert response.status_code == 400
        assert b"This field is required" in response.content
        organization.refresh_from_db()
        assert organization.name == before

    @pytest.mark.parametrize("taken", ["Summit Solar", " summit SOLAR ", "SUMMIT   Solar"])
    def test_renaming_to_another_organizations_name_is_refused(
        self, admin_client, organization, taken
    ):
        OrganizationFactory(name="Summit Solar")
        before = organization.name
        response = admin_client.post(tab_url(organization), {"name": taken})
        assert response.status_code == 400
        content = response.content.decode()
        assert 'id="id_name_error"' in content
        assert "Another organization on Channel Data Sync already has this name." in content
        organization.refresh_from_db()
        assert organization.name == before

    def test_an_organization_may_change_the_case_of_its_own_name(self, admin_client, organization):
        organization.name = "Sunrise Solar"
        organization.save()
        response = admin_client.post(tab_url(organization), {"name": "SUNRISE solar"})
        assert response.status_code == 302
        organization.refresh_from_db()
        assert organization.name == "SUNRISE solar"

    @pytest.mark.parametrize(
        ("name", "described"),
        [
            ("Sunrise\nSolar", "a line break"),
            ("Sunrise\tSolar", "a tab"),
            ("Sunrise\u200bSolar", "U+200B (zero width space)"),
            ("\u202eralos esirnuS", "U+202E (right-to-left override)"),
            ("Sunrise\u2066Solar\u2069", "U+2066 (left-to-right isolate)"),
            ("Sun\u00adrise Solar", "U+00AD (soft hyphen)"),
        ],
    )
    def test_name_with_hidden_characters_refused_beside_the_field(
        self, admin_client, organization, name, described
    ):
        before = organization.name
        response = admin_client.post(tab_url(organization), {"name": name})
        assert response.status_code == 400
        content = response.content.decode()
        assert 'id="id_name_error"' in content
        assert f"It contains {described}: retype it without." in content
        organization.refresh_from_db()
        assert organization.name == before

    @pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
    def test_logo_upload_accepted(self, admin_client, organization, fmt):
        upload = image_upload(f"logo.{fmt.lower()}", fmt)
        response = admin_client.post(tab_url(organization), {"name": "Acme", "logo": upload})
        assert response.status_code == 302
        organization.refresh_from_db()
        assert organization.logo
        served = admin_client.get(reverse("organization-logo", args=[organization.slug]))
        assert served.status_code == 200

    @pytest.mark.parametrize(
        ("upload", "message"),
        [
            (
                SimpleUploadedFile(
                    "logo.svg",
                    b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
                    content_type="image/svg+xml",
                ),
                "SVG and other formats are not accepted",
            ),
            (
                SimpleUploadedFile("logo.png", b"%PDF-1.4 not an image", content_type="image/png"),
                "not an image we can use",
            ),
            (image_upload("logo.gif", "GIF"), "GIF images are not accepted"),
        ],
        ids=["svg", "renamed-pdf", "gif"],
    )
    def test_bad_logo_refused_and_nothing_changes(
        self, admin_client, organization, upload, message
    ):
        response = admin_client.post(tab_url(organization), {"name": "Renamed", "logo": upload})
        assert response.status_code == 400
        assert message in response.content.decode()
        organization.refresh_from_db()
        assert not organization.logo
        assert organization.name != "Renamed"

    def test_oversized_logo_refused(self, admin_client, organization):
        # A real PNG just over 2 MB (noise does not compress).
        noise = Image.frombytes("RGB", (900, 900), os.urandom(900 * 900 * 3))
        buffer = io.BytesIO()
        noise.save(buffer, format="PNG", compress_level=0)
        assert buffer.tell() > 2 * 1024 * 1024
        upload = SimpleUploadedFile("big.png", buffer.getvalue(), content_type="image/png")
        response = admin_client.post(tab_url(organization), {"name": "x", "logo": upload})
        assert response.status_code == 400
        assert "the largest allowed is 2" in response.content.decode()
        organization.refresh_from_db()
        assert not organization.logo

    def test_refused_upload_keeps_the_previous_logo(self, admin_client, organization):
        admin_client.post(tab_url(organization), {"name": "Acme", "logo": image_upload()})
        organization.refresh_from_db()
        previous = organization.logo.name
        svg = SimpleUploadedFile("x.svg", b"<svg/>", content_type="image/svg+xml")
        admin_client.post(tab_url(organization), {"name": "Acme", "logo": svg})
        organization.refresh_from_db()
        assert organization.logo.name == previous


class TestLogoField:
    """The logo is shown as a person expects: the image, a file to replace it, a box to
    remove it; never the stored file's name."""

    def test_with_a_logo(self, admin_client, organization):
        organization.logo.save("logo.png", image_upload())
        page = admin_client.get(tab_url(organization)).content.decode()
        assert f'alt="Current logo of {organization.name}"' in page
        assert '<label for="id_logo">Replace the logo:</label>' in page
        assert re.search(r'<input type="file" name="logo"[^>]*id="id_logo"', page)
        assert re.search(r'<input type="checkbox" name="remove_logo"[^>]*id="id_remove_logo"', page)
        assert '<label for="id_remove_logo">Remove the logo:</label>' in page
        for raw in ("Currently:", "Change:", "Clear", "logos/"):
            assert raw not in page

    def test_without_a_logo(self, admin_client, organization):
        page = admin_client.get(tab_url(organization)).content.decode()
        assert '<label for="id_logo">Logo:</label>' in page
        assert "remove_logo" not in page

    def test_removing_the_logo(self, admin_client, organization):
        organization.logo.save("logo.png", image_upload())
        response = admin_client.post(
            tab_url(organization), {"name": organization.name, "remove_logo": "on"}
        )
        assert response.status_code == 302
        organization.refresh_from_db()
        assert not organization.logo

    def test_replacing_and_removing_at_once_is_refused(self, admin_client, organization):
        organization.logo.save("logo.png", image_upload())
        before = organization.logo.name
        response = admin_client.post(
            tab_url(organization),
            {"name": organization.name, "remove_logo": "on", "logo": image_upload()},
        )
        assert response.status_code == 400
        assert "Choose a new logo or remove the logo, not both." in response.content.decode()
        organization.refresh_from_db()
        assert organization.logo.name == before


class TestLicenses:
    def post_license(self, client, organization, **overrides):
        data = {
            "license_type": "C-46 Solar Contractor",
            "number": "1045822",
            "jurisdiction": "California",
            "expires_on": "2028-06-30",
            **overrides,
        }
        return client.post(license_add_url(organization), data)

    def test_admin_adds_a_license(self, admin_client, organization):
        response = self.post_license(admin_client, organization)
        assert response.status_code == 302
        assert organization.licenses.get().number == "1045822"
        page = admin_client.get(tab_url(organization))
        assert b"1045822" in page.content

    def test_duplicate_refused_beside_the_field(self, admin_client, organization):
        LicenseFactory(organization=organization, number="1045822", jurisdiction="California")
        response = self.post_license(
            admin_client, organization, number=" 1045822 ", jurisdiction="california"
        )
        assert response.status_code == 400
        content = response.content.decode()
        assert "already has a license with this number in this jurisdiction" in content
        assert 'id="id_number_error"' in content
        assert organization.licenses.count() == 1

    def test_same_number_elsewhere_is_fine(self, admin_client, organization):
        LicenseFactory(organization=organization, number="1045822", jurisdiction="California")
        LicenseFactory(number="1045822", jurisdiction="Nevada")
        response = self.post_license(admin_client, organization, jurisdiction="Nevada")
        assert response.status_code == 302
        assert organization.licenses.count() == 2

    def test_missing_fields_refused(self, admin_client, organization):
        response = self.post_license(admin_client, organization, number="", expires_on="soon")
        assert response.status_code == 400
        assert b"This field is required" in response.content
        assert b"Enter a valid date" in response.content
        assert not organization.licenses.exists()

    def test_edit(self, admin_client, organization):
        license_ = LicenseFactory(organization=organization)
        url = license_url("edit", organization, license_.pk)
        response = admin_client.post(
            url,
            {"license_type": "C-10", "number": "42", "jurisdiction": "Oregon", "expires_on": ""},
        )
        assert response.status_code == 302
        license_.refresh_from_db()
        assert (license_.number, license_.jurisdiction, license_.expires_on) == (
            "42",
            "Oregon",
            None,
        )

    def test_delete_archives_and_frees_the_number(self, admin_client, admin_user, organization):
        license_ = LicenseFactory(organization=organization, number="1045822")
        url = license_url("archive", organization, license_.pk)
        assert "Delete license “C-46 Solar Contractor 1045822 (California)”?" in (
            admin_client.get(url).content.decode()
        )
        assert admin_client.post(url).status_code == 302
        archived = License.all_objects.get(pk=license_.pk)
        assert archived.archived_by == admin_user
        assert archived.archived_at is not None
        assert not organization.licenses.exists()
        page = admin_client.get(tab_url(organization)).content.decode()
        assert "License “C-46 Solar Contractor 1045822 (California)” deleted." in page
        assert '<td class="font-monospace">1045822</td>' not in page
        # The number can be used again by a new license.
        assert self.post_license(admin_client, organization).status_code == 302


class TestCopiedWhenJoining:
    """Licenses and the logo an invitation copies are the new organization's own, and say
    where they came from."""

    @pytest.fixture
    def joined(self, client, django_capture_on_commit_callbacks):
        helios = OrganizationFactory(name="Helios Energy Partners")
        helios.logo.save("helios.png", image_upload())
        LicenseFactory(organization=helios, number="1045822", jurisdiction="California")
        invitation = services.invite_organization(
            helios,
            name="Summit Solar",
            email="a@example.com",
            invited_by=None,
            data_sync_enabled=True,
        )
        summit_admin = UserFactory()
        with django_capture_on_commit_callbacks(execute=True):
            summit = services.accept_invitation(invitation, summit_admin).downstream
        client.force_login(summit_admin)
        return summit

    def test_the_organization_tab_says_they_were_copied(self, client, joined):
        LicenseFactory(organization=joined, number="77", jurisdiction="Nevada")  # its own
        page = client.get(tab_url(joined)).content.decode()
        marks = page.count("Copied from Helios Energy Partners when you joined")
        assert marks == 2  # the logo and the copied license; not the organization's own

    def test_a_new_logo_is_no_longer_a_copy(self, client, joined):
        response = client.post(tab_url(joined), {"name": joined.name, "logo": image_upload()})
        assert response.status_code == 302
        joined.refresh_from_db()
        assert joined.logo_copied_from is None
        page = client.get(tab_url(joined)).content.decode()
        assert page.count("Copied from Helios Energy Partners when you joined") == 1
