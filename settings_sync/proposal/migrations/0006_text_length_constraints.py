import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("proposal", "0005_bounded_texts"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="proposalemail",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(
                    django.db.models.functions.text.Length("body"), 10000
                ),
                name="proposal_email_body_length",
                violation_error_message="Keep this to at most 10,000 characters.",
            ),
        ),
        migrations.AddConstraint(
            model_name="proposaltemplate",
            constraint=models.CheckConstraint(
                condition=django.db.models.lookups.LessThanOrEqual(
                    django.db.models.functions.text.Length("description"), 2000
                ),
                name="proposal_template_description_length",
                violation_error_message="Keep this to at most 2,000 characters.",
            ),
        ),
    ]
