"""Natural keys compared as Python normalises them, stored and indexed (docs/design.md §3.3)."""

from django.conf import settings
from django.db import migrations, models

from organizations.natural_keys import fill_normalised_keys_operation


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0007_organization_unique_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="license",
            name="license_unique_jurisdiction_number",
        ),
        migrations.AddField(
            model_name="license",
            name="normalised_key",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The natural key as it is compared: trimmed and case-folded.",
            ),
        ),
        fill_normalised_keys_operation("organizations", "license", ("jurisdiction", "number")),
        migrations.AddConstraint(
            model_name="license",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("organization", "normalised_key"),
                name="license_unique_jurisdiction_number",
                violation_error_code="duplicate",
                violation_error_message="This organization already has a license with this number in this jurisdiction.",
            ),
        ),
    ]
