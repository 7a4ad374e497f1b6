"""Natural keys compared as Python normalises them, stored and indexed (docs/design.md §3.3)."""

from django.conf import settings
from django.db import migrations, models

from organizations.natural_keys import fill_normalised_keys_operation


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0008_normalised_key"),
        ("partnerships", "0002_invited_by_optional"),
        ("proposal", "0006_text_length_constraints"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="comparablevalue",
            name="comparable_value_unique_natural_key",
        ),
        migrations.AddField(
            model_name="comparablevalue",
            name="normalised_key",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The natural key as it is compared: trimmed and case-folded.",
            ),
        ),
        fill_normalised_keys_operation("proposal", "comparablevalue", ("label",)),
        migrations.AddConstraint(
            model_name="comparablevalue",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("organization", "normalised_key"),
                name="comparable_value_unique_natural_key",
                violation_error_code="duplicate",
                violation_error_message="This organization already has a comparable value with this label.",
            ),
        ),
    ]
