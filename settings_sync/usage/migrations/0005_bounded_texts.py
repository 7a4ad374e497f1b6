"""Texts get a maximum length. Texts stored before that are longer are cut at the maximum,
so that the database can hold the limit as a constraint (next migration)."""

import settings_sync.fields
from django.db import migrations


#: (model, field, maximum length)
BOUNDED_TEXTS = [
    ("Persona", "description", 2000),
]


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0004_names_without_invisible_characters"),
    ]

    operations = [
        migrations.AlterField(
            model_name="persona",
            name="baseline_description",
            field=settings_sync.fields.BoundedTextField(
                blank=True,
                editable=False,
                max_length=2000,
                null=True,
                verbose_name="baseline description",
            ),
        ),
        migrations.AlterField(
            model_name="persona",
            name="description",
            field=settings_sync.fields.BoundedTextField(blank=True, max_length=2000),
        ),
        migrations.RunPython(
            settings_sync.fields.cut_overlong_texts("usage", BOUNDED_TEXTS),
            migrations.RunPython.noop,
            elidable=True,
        ),
    ]
