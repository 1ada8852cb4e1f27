"""Audit entries are append-only in the database itself, not only in the ORM.

AuditEntry's manager and methods refuse updates and deletes, but raw SQL, a
`.raw()`/cursor path or a future bug would go around them. On PostgreSQL a row-level
trigger refuses every UPDATE and DELETE on the audit table; INSERT stays free.

TRUNCATE is deliberately not blocked: row-level triggers do not fire for it, and the
only thing that truncates is an administrative flush of the whole database
(`manage.py flush`, and pytest-django between transactional tests), never the
application. A BEFORE TRUNCATE trigger would break that flush. Note what a trigger can
and cannot do: it stops the application's role from rewriting history by accident or
through a bug; a role that owns the table can still drop the trigger.

SQLite gets no trigger: Django's flush on SQLite empties tables with `DELETE FROM`,
so a DELETE trigger there would make `manage.py flush` and every transactional test
fail. SQLite is the development default only; production runs PostgreSQL.
"""

from django.db import migrations

FUNCTION = "dashboard_auditentry_append_only"
TRIGGER = "dashboard_auditentry_append_only"


def install_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    q = schema_editor.quote_name
    table = q(apps.get_model("dashboard", "AuditEntry")._meta.db_table)
    schema_editor.execute(
        f"""
        CREATE OR REPLACE FUNCTION {q(FUNCTION)}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit entries are append-only'
                USING DETAIL = TG_OP || ' on ' || TG_TABLE_NAME || ' refused';
        END
        $$
        """
    )
    schema_editor.execute(
        f"""
        CREATE TRIGGER {q(TRIGGER)}
        BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {q(FUNCTION)}()
        """
    )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    q = schema_editor.quote_name
    table = q(apps.get_model("dashboard", "AuditEntry")._meta.db_table)
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {q(TRIGGER)} ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {q(FUNCTION)}()")


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_access_model"),
    ]

    operations = [
        migrations.RunPython(install_trigger, drop_trigger),
    ]
