"""One message for a range of numbers, whichever end is crossed (no change to the tables)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("unsynced", "0002_names_without_invisible_characters"),
    ]

    operations = [
        migrations.AlterField(
            model_name="financingproduct",
            name="apr_percent",
            field=models.DecimalField(
                decimal_places=2,
                max_digits=5,
                validators=[
                    django.core.validators.MinValueValidator(
                        0, message="Enter an APR from 0 to 40."
                    ),
                    django.core.validators.MaxValueValidator(
                        40, message="Enter an APR from 0 to 40."
                    ),
                ],
                verbose_name="APR (%)",
            ),
        ),
        migrations.AlterField(
            model_name="financingproduct",
            name="term_months",
            field=models.PositiveSmallIntegerField(
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="Enter a term from 1 to 360."
                    ),
                    django.core.validators.MaxValueValidator(
                        360, message="Enter a term from 1 to 360."
                    ),
                ],
                verbose_name="term (months)",
            ),
        ),
    ]
