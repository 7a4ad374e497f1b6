"""Invite-only copies remember the channel manager they came from (docs/design.md §3.1)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0008_normalised_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="license",
            name="copied_from_organization",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                help_text="The channel manager this license was copied from when this organization joined through its invitation (empty for the organization's own).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="organizations.organization",
            ),
        ),
        migrations.AddField(
            model_name="organization",
            name="logo_copied_from",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                help_text="The channel manager whose logo this is a copy of, made when this organization joined through its invitation (empty once the logo is replaced).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="organizations.organization",
            ),
        ),
    ]
