"""Fill every organization's name key. Organizations that share a name (compared as the new
unique constraint compares them) keep it for the oldest one; each other one gets its slug
appended, "Summit Solar (summit-solar-2)", which is how pages now tell organizations apart."""

from django.db import migrations

NAME_MAX_LENGTH = 200


def name_key(name):
    return " ".join((name or "").split()).casefold()


def fill_name_keys(apps, schema_editor):
    Organization = apps.get_model("organizations", "Organization")
    taken = set()
    for organization in Organization.objects.order_by("pk"):
        name, n = organization.name, 1
        while name_key(name) in taken:
            suffix = f" ({organization.slug})" if n == 1 else f" ({organization.slug}, {n})"
            name = organization.name[: NAME_MAX_LENGTH - len(suffix)].rstrip() + suffix
            n += 1
        key = name_key(name)
        taken.add(key)
        Organization.objects.filter(pk=organization.pk).update(name=name, name_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("organizations", "0005_organization_name_key"),
    ]

    operations = [
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop, elidable=True),
    ]
