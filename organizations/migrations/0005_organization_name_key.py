import organizations.models
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0004_names_without_invisible_characters"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="name_key",
            field=organizations.models.NameKeyField(
                default="", editable=False, max_length=600, populate_from="name"
            ),
            preserve_default=False,
        ),
    ]
