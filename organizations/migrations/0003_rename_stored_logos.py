"""Logos stored before names were chosen by the server kept the uploader's file name, so a
valid image could sit under ``.html`` or ``.svg`` and be served as such from the media URL.
Each is stored again under a fresh name with the extension of the format its bytes are in; a
stored file that is not a PNG, JPEG or WebP image is removed from its organization. The old
files are deleted once the migration has committed."""

import uuid
import warnings

from django.db import migrations, transaction
from PIL import Image

EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def _extension(handle) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(handle) as image:
                return EXTENSIONS.get(image.format)
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return None


def rename_stored_logos(apps, schema_editor):
    Organization = apps.get_model("organizations", "Organization")
    storage = Organization._meta.get_field("logo").storage
    replaced = []
    for organization in Organization.objects.exclude(logo="").order_by("pk"):
        old_name = organization.logo.name
        new_name = ""
        try:
            with storage.open(old_name, "rb") as handle:
                extension = _extension(handle)
                if extension is not None:
                    handle.seek(0)
                    new_name = storage.save(f"logos/{uuid.uuid4().hex}.{extension}", handle)
        except FileNotFoundError:
            pass  # nothing to serve: the organization simply has no logo
        Organization.objects.filter(pk=organization.pk).update(logo=new_name)
        replaced.append(old_name)

    def delete_old_files():
        for name in replaced:
            storage.delete(name)

    transaction.on_commit(delete_old_files)


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0002_logo_server_chosen_names"),
    ]

    operations = [
        migrations.RunPython(rename_stored_logos, migrations.RunPython.noop, elidable=True),
    ]
