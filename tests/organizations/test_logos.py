"""Logos are images and nothing else: stored under names the server chooses, served with the
format read from their bytes, and refused when they claim more pixels than a logo needs."""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from organizations.models import Organization
from organizations.validators import validate_logo
from partnerships import services
from tests.factories import OrganizationFactory, UserFactory
from tests.images import image_bytes, image_upload, png_claiming

pytestmark = pytest.mark.django_db

SERVER_CHOSEN = re.compile(r"logos/[0-9a-f]{32}\.(png|jpg|webp)")


def tab_url(organization: Organization) -> str:
    return reverse("organizations:organization", kwargs={"org": organization.slug})


def logo_url(organization: Organization) -> str:
    return reverse("organization-logo", args=[organization.slug])


def stored_as(organization: Organization, name: str, content: bytes) -> None:
    """A logo file stored under ``name`` as a form did before names were chosen here."""
    default_storage.save(name, ContentFile(content))
    Organization.objects.filter(pk=organization.pk).update(logo=name)
    organization.refresh_from_db()


@pytest.mark.parametrize(
    ("upload_name", "image_format", "extension", "content_type"),
    [
        ("logo.html", "PNG", "png", "image/png"),
        ("logo.svg", "JPEG", "jpg", "image/jpeg"),
        ("evil.png", "WEBP", "webp", "image/webp"),
    ],
)
def test_logo_is_stored_under_a_server_chosen_name_and_served_as_its_format(
    admin_client, organization, upload_name, image_format, extension, content_type
):
    upload = image_upload(upload_name, image_format)
    response = admin_client.post(tab_url(organization), {"name": "Acme", "logo": upload})
    assert response.status_code == 302
    organization.refresh_from_db()
    assert SERVER_CHOSEN.fullmatch(organization.logo.name)
    assert organization.logo.name.endswith(f".{extension}")

    served = admin_client.get(logo_url(organization))
    assert served.status_code == 200
    assert served["Content-Type"] == content_type
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert served["Content-Disposition"].startswith("inline")
    assert b"".join(served.streaming_content) == upload.open().read()


def test_an_image_stored_under_a_document_name_is_served_as_an_image(client):
    organization = OrganizationFactory()
    stored_as(organization, "logos/logo.html", image_bytes("PNG"))
    served = client.get(logo_url(organization))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert "sandbox" in served["Content-Security-Policy"]


@pytest.mark.parametrize(
    "content",
    [b"<html><script>alert(document.domain)</script></html>", b"<svg onload='alert(1)'/>"],
    ids=["html", "svg"],
)
def test_a_stored_file_that_is_not_an_accepted_image_is_not_served(client, content):
    organization = OrganizationFactory()
    stored_as(organization, "logos/logo.html", content)
    served = client.get(logo_url(organization))
    assert served.status_code == 404
    assert content not in served.content


def test_a_logo_saved_in_code_gets_a_server_chosen_name_too():
    organization = OrganizationFactory()
    organization.logo.save("../../brand.html", ContentFile(image_bytes("JPEG")))
    organization.refresh_from_db()
    assert SERVER_CHOSEN.fullmatch(organization.logo.name)
    assert organization.logo.name.endswith(".jpg")


def test_a_file_that_is_not_an_accepted_image_cannot_be_stored_as_a_logo():
    organization = OrganizationFactory()
    with pytest.raises(ValidationError, match="must be a PNG, JPEG or WebP image"):
        organization.logo.save("logo.png", ContentFile(image_bytes("GIF")))
    organization.refresh_from_db()
    assert not organization.logo


def test_the_invitation_copy_gets_a_server_chosen_name(django_capture_on_commit_callbacks):
    """The copy an invitation makes goes through the same naming as an upload, even when the
    channel manager's own file still has an old, uploader-chosen name."""
    channel_manager = OrganizationFactory()
    stored_as(channel_manager, "logos/helios.html", image_bytes("PNG"))
    invitation = services.invite_organization(
        channel_manager,
        name="Summit Solar",
        email="a@example.com",
        invited_by=None,
        data_sync_enabled=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        partnership = services.accept_invitation(invitation, UserFactory())
    summit = Organization.objects.get(pk=partnership.downstream_id)
    assert SERVER_CHOSEN.fullmatch(summit.logo.name)
    assert summit.logo.name.endswith(".png")
    assert summit.logo.read() == image_bytes("PNG")


class TestPixelLimit:
    """The project's own limit on declared pixels, far below Pillow's, and whatever the
    process's warning filters say."""

    @pytest.mark.parametrize(
        ("width", "height"), [(9000, 9000), (4097, 4096), (10_000, 10_000), (20_000, 20_000)]
    )
    def test_a_few_bytes_claiming_too_many_pixels_are_refused(
        self, admin_client, organization, width, height
    ):
        upload = SimpleUploadedFile("logo.png", png_claiming(width, height), "image/png")
        response = admin_client.post(tab_url(organization), {"name": "Renamed", "logo": upload})
        assert response.status_code == 400
        assert "too many pixels to be a logo (at most 4096 by 4096)" in response.content.decode()
        organization.refresh_from_db()
        assert not organization.logo
        assert organization.name != "Renamed"

    @pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
    def test_refused_where_pillow_only_warns_and_the_warning_is_ignored(self):
        with pytest.raises(ValidationError, match="too many pixels"):
            validate_logo(ContentFile(png_claiming(10_000, 10_000), name="logo.png"))

    def test_the_largest_logo_is_accepted(self):
        validate_logo(ContentFile(png_claiming(4096, 4096), name="logo.png"))


def test_migration_stores_old_logos_under_server_chosen_names(
    django_capture_on_commit_callbacks,
):
    migration = importlib.import_module("organizations.migrations.0003_rename_stored_logos")
    image, document = OrganizationFactory(), OrganizationFactory()
    stored_as(image, "logos/logo.html", image_bytes("WEBP"))
    stored_as(document, "logos/page.html", b"<script>alert(1)</script>")
    with django_capture_on_commit_callbacks(execute=True):
        migration.rename_stored_logos(apps, None)
    image.refresh_from_db()
    document.refresh_from_db()
    assert SERVER_CHOSEN.fullmatch(image.logo.name)
    assert image.logo.name.endswith(".webp")
    assert image.logo.read() == image_bytes("WEBP")
    assert not document.logo
    assert not default_storage.exists("logos/logo.html")
    assert not default_storage.exists("logos/page.html")
