"""Every organization that existed before this app gets its singleton rows (docs/design.md §3.1)."""

from django.db import migrations

SINGLETONS = ("DefaultCosts", "InstallationDates")


def create_rows(apps, schema_editor):
    organization_ids = apps.get_model("organizations", "Organization").objects.values_list(
        "pk", flat=True
    )
    for model_name in SINGLETONS:
        model = apps.get_model("project", model_name)
        existing = set(model.objects.values_list("organization_id", flat=True))
        model.objects.bulk_create(
            model(organization_id=pk) for pk in organization_ids if pk not in existing
        )


class Migration(migrations.Migration):
    dependencies = [("project", "0001_initial"), ("organizations", "0001_initial")]

    operations = [migrations.RunPython(create_rows, migrations.RunPython.noop)]
