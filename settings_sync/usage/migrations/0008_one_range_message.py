"""One message for a range of numbers, whichever end is crossed (no change to the tables)."""

import django.core.validators
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0007_normalised_key"),
    ]

    operations = [
        migrations.AlterField(
            model_name="persona",
            name="annual_kwh",
            field=models.PositiveIntegerField(
                validators=[
                    django.core.validators.MinValueValidator(
                        1, message="Enter an annual usage from 1 to 1,000,000."
                    ),
                    django.core.validators.MaxValueValidator(
                        1000000, message="Enter an annual usage from 1 to 1,000,000."
                    ),
                ],
                verbose_name="annual usage (kWh)",
            ),
        ),
        migrations.AlterField(
            model_name="rateescalation",
            name="annual_escalation_percent",
            field=models.DecimalField(
                decimal_places=2,
                max_digits=5,
                validators=[
                    django.core.validators.MinValueValidator(
                        Decimal("-10"), message="Enter an escalation from -10 to 25."
                    ),
                    django.core.validators.MaxValueValidator(
                        Decimal("25"), message="Enter an escalation from -10 to 25."
                    ),
                ],
                verbose_name="annual escalation (%)",
            ),
        ),
    ]
