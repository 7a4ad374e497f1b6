"""Natural keys compared as Python normalises them, stored and indexed (docs/design.md §3.3)."""

from django.conf import settings
from django.db import migrations, models

from organizations.natural_keys import fill_normalised_keys_operation


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0008_normalised_key"),
        ("partnerships", "0002_invited_by_optional"),
        ("project", "0004_names_without_invisible_characters"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="adder",
            name="adder_unique_natural_key",
        ),
        migrations.RemoveConstraint(
            model_name="equipment",
            name="equipment_unique_natural_key",
        ),
        migrations.AddField(
            model_name="adder",
            name="normalised_key",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The natural key as it is compared: trimmed and case-folded.",
            ),
        ),
        migrations.AddField(
            model_name="equipment",
            name="normalised_key",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The natural key as it is compared: trimmed and case-folded.",
            ),
        ),
        fill_normalised_keys_operation("project", "adder", ("name",)),
        fill_normalised_keys_operation("project", "equipment", ("kind", "manufacturer", "model")),
        migrations.AddConstraint(
            model_name="adder",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("organization", "normalised_key"),
                name="adder_unique_natural_key",
                violation_error_code="duplicate",
                violation_error_message="This organization already has an adder with this name.",
            ),
        ),
        migrations.AddConstraint(
            model_name="equipment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("organization", "normalised_key"),
                name="equipment_unique_natural_key",
                violation_error_code="duplicate",
                violation_error_message="This organization already has this kind, manufacturer and model.",
            ),
        ),
    ]
