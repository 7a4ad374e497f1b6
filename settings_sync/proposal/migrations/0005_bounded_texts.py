"""Texts get a maximum length. Texts stored before that are longer are cut at the maximum,
so that the database can hold the limit as a constraint (next migration)."""

import settings_sync.fields
from django.db import migrations


#: (model, field, maximum length)
BOUNDED_TEXTS = [
    ("ProposalEmail", "body", 10000),
    ("ProposalTemplate", "description", 2000),
]


class Migration(migrations.Migration):
    dependencies = [
        ("proposal", "0004_names_without_invisible_characters"),
    ]

    operations = [
        migrations.AlterField(
            model_name="proposalemail",
            name="body",
            field=settings_sync.fields.BoundedTextField(
                default="Hello {customer_name},\n\nAttached is your solar proposal. It is valid for {days_valid} days.\n\nBest regards,\n{sender_name}",
                max_length=10000,
            ),
        ),
        migrations.AlterField(
            model_name="proposaltemplate",
            name="description",
            field=settings_sync.fields.BoundedTextField(blank=True, max_length=2000),
        ),
        migrations.RunPython(
            settings_sync.fields.cut_overlong_texts("proposal", BOUNDED_TEXTS),
            migrations.RunPython.noop,
            elidable=True,
        ),
    ]
