import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0005_bounded_texts"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="persona",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(
                    django.db.models.functions.text.Length("description"), 2000
                ),
                name="persona_description_length",
                violation_error_message="Keep this to at most 2,000 characters.",
            ),
        ),
    ]
