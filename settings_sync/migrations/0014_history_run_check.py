"""The history's reference to its run is checked once per statement, not once per row.

On PostgreSQL the foreign-key constraint of ``settings_sync_syncchange.run_id`` (a lookup and a
row lock per history row, at the commit) is replaced with statement-level triggers that lock the
distinct runs a statement refers to and refuse, with the foreign key's SQLSTATE, a run that does
not exist or a run deleted while history refers to it (docs/design.md §7.4). SQLite keeps its
deferred foreign key (Django's test flush deletes the tables in an arbitrary order, which a check
at the statement would refuse) and gains row-level triggers that refuse a history row for a
missing run at its statement, as PostgreSQL does. On both, the single-column index Django made
for the foreign key goes: the (run, category) index serves every lookup by run.
"""

from django.db import migrations, models

HISTORY = "settings_sync_syncchange"
RUNS = "settings_sync_syncrun"
#: The names Django gave the index and the constraint of the foreign key (0001_initial).
RUN_INDEX = "settings_sync_syncchange_run_id_1fbb8ce2"
RUN_CONSTRAINT = "settings_sync_syncch_run_id_1fbb8ce2_fk_settings_"

POSTGRESQL_FORWARDS = f"""
ALTER TABLE {HISTORY} DROP CONSTRAINT {RUN_CONSTRAINT};
DROP INDEX {RUN_INDEX};

-- Every statement that writes history: the distinct runs its rows refer to are locked FOR KEY
-- SHARE, as the foreign key's check locked each row's run, and all must exist.
CREATE FUNCTION settings_sync_history_runs_exist() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    runs bigint[];
    locked integer;
    missing bigint;
BEGIN
    SELECT array_agg(run_id) INTO runs FROM (SELECT DISTINCT run_id FROM new_rows) AS referred;
    IF runs IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO locked FROM (
        SELECT FROM {RUNS} WHERE id = ANY (runs) ORDER BY id FOR KEY SHARE
    ) AS held;
    IF locked < cardinality(runs) THEN
        SELECT run INTO missing FROM unnest(runs) AS run
         WHERE NOT EXISTS (SELECT FROM {RUNS} WHERE id = run) LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "{HISTORY}" refers to a run that does not exist'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (run_id)=(%s) is not present in table "{RUNS}".',
                                  coalesce(missing::text, '?')),
                  TABLE = '{HISTORY}';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER history_runs_exist_on_insert
AFTER INSERT ON {HISTORY} REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION settings_sync_history_runs_exist();

CREATE TRIGGER history_runs_exist_on_update
AFTER UPDATE ON {HISTORY} REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION settings_sync_history_runs_exist();

-- Every statement that deletes runs: no history may still refer to one of them.
CREATE FUNCTION settings_sync_deleted_runs_have_no_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    referred bigint;
BEGIN
    SELECT run_id INTO referred FROM {HISTORY}
     WHERE run_id IN (SELECT id FROM old_rows) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'delete on table "{RUNS}" leaves history in "{HISTORY}" without its run'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "{HISTORY}".',
                                  referred),
                  TABLE = '{RUNS}';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_deleted_without_history
AFTER DELETE ON {RUNS} REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION settings_sync_deleted_runs_have_no_history();

-- A run's id changed (never done by the app): a row-level trigger, since PostgreSQL allows no
-- transition tables on a trigger limited to a column, and one over every update of a run would
-- be paid by every claim, heartbeat and settle.
CREATE FUNCTION settings_sync_renamed_run_has_no_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM {HISTORY} WHERE run_id = OLD.id)
       AND NOT EXISTS (SELECT FROM {RUNS} WHERE id = OLD.id) THEN
        RAISE EXCEPTION 'update on table "{RUNS}" leaves history in "{HISTORY}" without its run'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "{HISTORY}".',
                                  OLD.id),
                  TABLE = '{RUNS}';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER run_id_changed_without_history
AFTER UPDATE OF id ON {RUNS}
FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
EXECUTE FUNCTION settings_sync_renamed_run_has_no_history();

-- TRUNCATE fires no delete trigger: the runs may go with the history only (Django's test flush
-- truncates every table in one statement; this fires after all of them are empty).
CREATE FUNCTION settings_sync_truncated_runs_have_no_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM {HISTORY}) THEN
        RAISE EXCEPTION 'truncate of table "{RUNS}" leaves history in "{HISTORY}" without its run'
            USING ERRCODE = 'foreign_key_violation', TABLE = '{RUNS}';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_truncated_without_history
AFTER TRUNCATE ON {RUNS}
FOR EACH STATEMENT EXECUTE FUNCTION settings_sync_truncated_runs_have_no_history();
"""  # noqa: S608

POSTGRESQL_BACKWARDS = f"""
DROP TRIGGER runs_truncated_without_history ON {RUNS};
DROP FUNCTION settings_sync_truncated_runs_have_no_history();
DROP TRIGGER run_id_changed_without_history ON {RUNS};
DROP FUNCTION settings_sync_renamed_run_has_no_history();
DROP TRIGGER runs_deleted_without_history ON {RUNS};
DROP FUNCTION settings_sync_deleted_runs_have_no_history();
DROP TRIGGER history_runs_exist_on_update ON {HISTORY};
DROP TRIGGER history_runs_exist_on_insert ON {HISTORY};
DROP FUNCTION settings_sync_history_runs_exist();
CREATE INDEX {RUN_INDEX} ON {HISTORY} (run_id);
ALTER TABLE {HISTORY} ADD CONSTRAINT {RUN_CONSTRAINT}
    FOREIGN KEY (run_id) REFERENCES {RUNS} (id) DEFERRABLE INITIALLY DEFERRED;
"""

# SQLite keeps the deferred foreign key (checked at the commit, whatever the order of a
# transaction's deletes); these refuse a history row for a missing run at its statement.
SQLITE_FORWARDS = [
    f"DROP INDEX {RUN_INDEX}",
    f"""CREATE TRIGGER history_run_exists_on_insert BEFORE INSERT ON {HISTORY}
    FOR EACH ROW WHEN NOT EXISTS (SELECT 1 FROM {RUNS} WHERE id = NEW.run_id)
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: no such run'); END""",  # noqa: S608
    f"""CREATE TRIGGER history_run_exists_on_update BEFORE UPDATE OF run_id ON {HISTORY}
    FOR EACH ROW WHEN NOT EXISTS (SELECT 1 FROM {RUNS} WHERE id = NEW.run_id)
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: no such run'); END""",  # noqa: S608
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER history_run_exists_on_update",
    "DROP TRIGGER history_run_exists_on_insert",
    f"CREATE INDEX {RUN_INDEX} ON {HISTORY} (run_id)",
]


def _execute(schema_editor, statements) -> None:
    for statement in statements:
        schema_editor.execute(statement, params=None)


def forwards(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _execute(schema_editor, [POSTGRESQL_FORWARDS])
    elif vendor == "sqlite":
        _execute(schema_editor, SQLITE_FORWARDS)
    else:
        raise NotImplementedError(f"No check of the history's run for {vendor}.")


def backwards(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _execute(schema_editor, [POSTGRESQL_BACKWARDS])
    elif vendor == "sqlite":
        _execute(schema_editor, SQLITE_BACKWARDS)


class Migration(migrations.Migration):
    dependencies = [("settings_sync", "0013_drift_counts")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="syncchange",
                    name="run",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="changes",
                        to="settings_sync.syncrun",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
