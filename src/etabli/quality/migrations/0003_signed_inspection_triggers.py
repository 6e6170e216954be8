"""The database itself refuses to change a signed inspection, its dimensions or its photos.

The services answer 409 and the models raise before this; the triggers hold against anything
else that writes to the tables (a bulk update, a script, the database shell). Deleting is left
alone: a piece's records go with it when a whole installation is emptied.
"""

from django.db import migrations

MESSAGE = "A signed inspection cannot change; open a new inspection instead."

SQLITE = [
    f"""CREATE TRIGGER quality_inspection_signed_no_update
        BEFORE UPDATE ON quality_inspection FOR EACH ROW WHEN OLD.status = 'signed'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
] + [
    f"""CREATE TRIGGER quality_{table}_signed_no_{event.lower()}
        BEFORE {event} ON quality_{table} FOR EACH ROW
        WHEN (SELECT status FROM quality_inspection WHERE id = {row}.inspection_id) = 'signed'
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"""
    for table in ("inspectiondimension", "inspectionphoto")
    for event, row in (("INSERT", "NEW"), ("UPDATE", "OLD"))
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS quality_inspection_signed_no_update",
] + [
    f"DROP TRIGGER IF EXISTS quality_{table}_signed_no_{event}"
    for table in ("inspectiondimension", "inspectionphoto") for event in ("insert", "update")
]

POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION quality_refuse_signed_inspection() RETURNS trigger AS $$
        BEGIN
          IF OLD.status = 'signed' THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER quality_inspection_signed_no_update
        BEFORE UPDATE ON quality_inspection FOR EACH ROW
        EXECUTE FUNCTION quality_refuse_signed_inspection()""",
    f"""CREATE OR REPLACE FUNCTION quality_refuse_signed_inspection_part() RETURNS trigger
        AS $$
        DECLARE parent_id bigint;
        BEGIN
          IF TG_OP = 'INSERT' THEN parent_id := NEW.inspection_id;
          ELSE parent_id := OLD.inspection_id; END IF;
          IF EXISTS (SELECT 1 FROM quality_inspection
                     WHERE id IN (parent_id, NEW.inspection_id) AND status = 'signed') THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""",
] + [
    f"""CREATE TRIGGER quality_{table}_signed_no_change
        BEFORE INSERT OR UPDATE ON quality_{table} FOR EACH ROW
        EXECUTE FUNCTION quality_refuse_signed_inspection_part()"""
    for table in ("inspectiondimension", "inspectionphoto")
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS quality_inspection_signed_no_update ON quality_inspection",
    "DROP TRIGGER IF EXISTS quality_inspectiondimension_signed_no_change "
    "ON quality_inspectiondimension",
    "DROP TRIGGER IF EXISTS quality_inspectionphoto_signed_no_change ON quality_inspectionphoto",
    "DROP FUNCTION IF EXISTS quality_refuse_signed_inspection()",
    "DROP FUNCTION IF EXISTS quality_refuse_signed_inspection_part()",
]


def _run(schema_editor, statements: dict) -> None:
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def create(apps, schema_editor):
    _run(schema_editor, {"sqlite": SQLITE, "postgresql": POSTGRESQL})


def drop(apps, schema_editor):
    _run(schema_editor, {"sqlite": SQLITE_DROP, "postgresql": POSTGRESQL_DROP})


class Migration(migrations.Migration):
    dependencies = [("quality", "0002_house_standard")]
    operations = [migrations.RunPython(create, drop)]
