"""One message for a range of numbers, whichever end is crossed (no change to the tables)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("project", "0005_normalised_key"),
    ]

    operations = [
        migrations.AlterField(
            model_name="installationdates",
            name="contract_to_install_days",
            field=models.PositiveSmallIntegerField(
                default=30,
                validators=[
                    django.core.validators.MinValueValidator(
                        0, message="Enter a number of days from 0 to 365."
                    ),
                    django.core.validators.MaxValueValidator(
                        365, message="Enter a number of days from 0 to 365."
                    ),
                ],
                verbose_name="contract to install (days)",
            ),
        ),
        migrations.AlterField(
            model_name="installationdates",
            name="install_to_pto_days",
            field=models.PositiveSmallIntegerField(
                default=21,
                help_text="Permission to operate, after installation.",
                validators=[
                    django.core.validators.MinValueValidator(
                        0, message="Enter a number of days from 0 to 365."
                    ),
                    django.core.validators.MaxValueValidator(
                        365, message="Enter a number of days from 0 to 365."
                    ),
                ],
                verbose_name="install to PTO (days)",
            ),
        ),
    ]
