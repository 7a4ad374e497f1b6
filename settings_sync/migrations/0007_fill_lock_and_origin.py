"""Copies already made through a strict partnership are managed by its channel manager
(docs/design.md §14.3), and every copy is originally from the top of its chain (§14.2); from
now on the sync writes both with every copy."""

from django.db import migrations
from django.db.models import OuterRef, Subquery

#: Longer chains than this could not be made before the sync travelled down networks.
DEPTH = 8

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
        rows = model._base_manager
        rows.filter(synced_partnership__in=strict).update(
            managed_by=Subquery(strict.filter(pk=OuterRef("synced_partnership")).values("upstream"))
        )
        rows.filter(synced_partnership__isnull=False).update(
            synced_origin=Subquery(
                Partnership.objects.filter(pk=OuterRef("synced_partnership")).values("upstream")
            )
        )
        for _ in range(DEPTH):  # a copy of a copy is originally from where its source is
            sources = rows.filter(synced_origin__isnull=False)
            rows.filter(synced_from__in=sources).update(
                synced_origin=Subquery(
                    sources.filter(pk=OuterRef("synced_from")).values("synced_origin")
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("settings_sync", "0006_run_caused_by"),
        ("project", "0018_managed_by_and_origin"),
        ("usage", "0018_managed_by_and_origin"),
        ("proposal", "0018_managed_by_and_origin"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
