"""An update of history is checked only where it moves a change to another run.

Migration 0014 checked every ``UPDATE`` of the history with a statement-level trigger over its
rows (their distinct runs locked and counted). Nothing in the app moves a change to another
run, but the database now writes a first copy's values into its ``created`` rows, one row at
a time, as the copies first change (0015): each of those updates paid the whole statement-level
check, more than a third of what writing the values in cost. A row-level trigger limited to the run
column, whose ``WHEN`` lets through only a row whose run changes, checks what the statement-
level one did for such a row (the run locked ``FOR KEY SHARE``, SQLSTATE 23503 when it does not
exist, at the end of the statement) and costs nothing to any other update (docs/design.md
§7.4). PostgreSQL only; SQLite's row-level trigger was limited to the column already.
"""

from django.db import migrations

HISTORY = "settings_sync_syncchange"
RUNS = "settings_sync_syncrun"

POSTGRESQL_FORWARDS = f"""
DROP TRIGGER history_runs_exist_on_update ON {HISTORY};

CREATE FUNCTION settings_sync_moved_change_run_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM {RUNS} WHERE id = NEW.run_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "{HISTORY}" refers to a run that does not exist'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (run_id)=(%s) is not present in table "{RUNS}".',
                                  NEW.run_id),
                  TABLE = '{HISTORY}';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER history_run_exists_on_move
AFTER UPDATE OF run_id ON {HISTORY}
FOR EACH ROW WHEN (OLD.run_id IS DISTINCT FROM NEW.run_id)
EXECUTE FUNCTION settings_sync_moved_change_run_exists();
"""  # noqa: S608

POSTGRESQL_BACKWARDS = f"""
DROP TRIGGER history_run_exists_on_move ON {HISTORY};
DROP FUNCTION settings_sync_moved_change_run_exists();
CREATE TRIGGER history_runs_exist_on_update
AFTER UPDATE ON {HISTORY} REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION settings_sync_history_runs_exist();
"""


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FORWARDS, params=None)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_BACKWARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("settings_sync", "0015_created_values_kept")]

    operations = [migrations.RunPython(forwards, backwards)]
