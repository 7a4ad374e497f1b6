from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0006_fill_name_keys"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="organization",
            constraint=models.UniqueConstraint(
                fields=("name_key",),
                name="organization_unique_name",
                violation_error_message=(
                    "Another organization on Channel Data Sync already has this name. Choose a "
                    "name that tells your organization apart."
                ),
            ),
        ),
    ]
