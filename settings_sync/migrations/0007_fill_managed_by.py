"""Copies already made through a strict partnership are managed by its channel manager
(docs/design.md §12.3); from now on the sync writes ``managed_by`` with every copy."""

from django.db import migrations
from django.db.models import OuterRef, Subquery

#: The collection models of the synced catalogue, as they stood when the column was added.
COLLECTIONS = [
    ("project", "Equipment"),
    ("project", "Adder"),
    ("usage", "Persona"),
    ("usage", "RateEscalation"),
    ("proposal", "ComparableValue"),
]


def fill(apps, schema_editor):
    Partnership = apps.get_model("partnerships", "Partnership")
    strict = Partnership.objects.filter(
        status="active", is_exclusive=True, data_sync_enabled=True, allow_downstream_edit=False
    )
    for app_label, name in COLLECTIONS:
        model = apps.get_model(app_label, name)
        model._base_manager.filter(synced_partnership__in=strict).update(
            managed_by=Subquery(strict.filter(pk=OuterRef("synced_partnership")).values("upstream"))
        )


class Migration(migrations.Migration):
    dependencies = [
        ("settings_sync", "0006_run_caused_by"),
        ("project", "0018_managed_by"),
        ("usage", "0018_managed_by"),
        ("proposal", "0018_managed_by"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
