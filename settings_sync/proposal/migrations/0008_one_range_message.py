"""One message for a range of numbers, whichever end is crossed (no change to the tables)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("proposal", "0007_normalised_key"),
    ]

    operations = [
        migrations.AlterField(
            model_name="proposalexpiration",
            name="days_valid",
            field=models.PositiveSmallIntegerField(
                default=30,
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="Enter a number of days from 1 to 365."
                    ),
                    django.core.validators.MaxValueValidator(
                        365, message="Enter a number of days from 1 to 365."
                    ),
                ],
                verbose_name="proposals are valid for (days)",
            ),
        ),
        migrations.AlterField(
            model_name="proposaltemplate",
            name="page_count",
            field=models.PositiveSmallIntegerField(
                default=8,
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="Enter a number of pages from 1 to 100."
                    ),
                    django.core.validators.MaxValueValidator(
                        100, message="Enter a number of pages from 1 to 100."
                    ),
                ],
            ),
        ),
    ]
