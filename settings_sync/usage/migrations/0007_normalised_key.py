"""Natural keys compared as Python normalises them, stored and indexed (docs/design.md §3.3)."""

from django.conf import settings
from django.db import migrations, models

from organizations.natural_keys import fill_normalised_keys_operation


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0008_normalised_key"),
        ("partnerships", "0002_invited_by_optional"),
        ("usage", "0006_text_length_constraints"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="persona",
            name="persona_unique_natural_key",
        ),
        migrations.RemoveConstraint(
            model_name="rateescalation",
            name="rate_escalation_unique_natural_key",
        ),
        migrations.AddField(
            model_name="persona",
            name="normalised_key",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The natural key as it is compared: trimmed and case-folded.",
            ),
        ),
        migrations.AddField(
            model_name="rateescalation",
            name="normalised_key",
            field=models.TextField(
                default="",
                editable=False,
                help_text="The natural key as it is compared: trimmed and case-folded.",
            ),
        ),
        fill_normalised_keys_operation("usage", "persona", ("name",)),
        fill_normalised_keys_operation("usage", "rateescalation", ("utility_name",)),
        migrations.AddConstraint(
            model_name="persona",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("organization", "normalised_key"),
                name="persona_unique_natural_key",
                violation_error_code="duplicate",
                violation_error_message="This organization already has a persona with this name.",
            ),
        ),
        migrations.AddConstraint(
            model_name="rateescalation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("archived_at__isnull", True)),
                fields=("organization", "normalised_key"),
                name="rate_escalation_unique_natural_key",
                violation_error_code="duplicate",
                violation_error_message="This organization already has an escalation rate for this utility.",
            ),
        ),
    ]
