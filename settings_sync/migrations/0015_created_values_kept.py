"""A first copy's ``created`` history rows take their values from the copy, until it changes.

On PostgreSQL one partnership's first copy records each copy's creation without its values
(``after``): the copy holds them in its baseline and points at the row (``created_change_id``).
Before the baseline first changes (a later run, *take theirs*, *keep mine*, a detach, any
statement at all) or the copy is deleted, these triggers write the baseline as it was into
the history row and empty the pointer, so the row keeps the values of the creation
(docs/design.md §7.5). Only PostgreSQL writes such rows; SQLite needs no trigger.

The fields are the categories' synced fields as they are now: a migration that changes a
collection's synced fields changes its triggers too (``tests/settings_sync/test_history_
values.py`` checks every category's).
"""

from django.db import migrations

HISTORY = "settings_sync_syncchange"

#: Each collection's table, and its synced fields.
SYNCED_FIELDS = {
    "project_equipment": ["kind", "manufacturer", "model", "rating", "unit_cost", "is_active"],
    "project_adder": ["name", "pricing", "amount", "applied_by_default"],
    "usage_persona": ["name", "annual_kwh", "monthly_profile", "description"],
    "usage_rateescalation": ["utility_name", "annual_escalation_percent"],
    "proposal_comparablevalue": ["label", "unit", "factor_per_mwh"],
}


def _function(table: str) -> str:
    return f"settings_sync_keep_created_values_{table}"


def _triggers(table: str, fields: list[str]) -> str:
    """The table's function (the baseline as it was, keyed by the synced fields' names, into
    the row the copy points at, if that row still waits for its values; the pointer emptied)
    and its two triggers. One function per table, its fields written out: a generic one
    reading the row as ``jsonb`` cost three times as much a copy."""
    values = ", ".join(f"'{field}', OLD.baseline_{field}" for field in fields)
    old = ", ".join(f"OLD.baseline_{field}" for field in fields)
    new = ", ".join(f"NEW.baseline_{field}" for field in fields)
    function = _function(table)
    return f"""
CREATE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {HISTORY} SET after = jsonb_build_object({values})
     WHERE id = OLD.created_change_id AND after IS NULL;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.created_change_id := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER {table}_created_values_kept_on_update BEFORE UPDATE ON {table}
FOR EACH ROW WHEN (
    OLD.created_change_id IS NOT NULL
    AND (OLD.created_change_id IS DISTINCT FROM NEW.created_change_id
         OR ROW({old}) IS DISTINCT FROM ROW({new}))
)
EXECUTE FUNCTION {function}();

CREATE TRIGGER {table}_created_values_kept_on_delete BEFORE DELETE ON {table}
FOR EACH ROW WHEN (OLD.created_change_id IS NOT NULL)
EXECUTE FUNCTION {function}();
"""  # noqa: S608


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, fields in SYNCED_FIELDS.items():
        schema_editor.execute(_triggers(table, fields), params=None)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in SYNCED_FIELDS:
        for event in ("update", "delete"):
            schema_editor.execute(
                f"DROP TRIGGER {table}_created_values_kept_on_{event} ON {table}", params=None
            )
        schema_editor.execute(f"DROP FUNCTION {_function(table)}()", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("settings_sync", "0014_history_run_check"),
        ("project", "0020_created_change"),
        ("proposal", "0020_created_change"),
        ("usage", "0020_created_change"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
