"""A cheaper reset between transactional tests on PostgreSQL.

Most of the suite runs as transactional tests (the Celery worker, the events watcher
and the ASGI app must see what a test wrote), and Django resets the database after
each one with `flush`: a TRUNCATE of every table, then the post_migrate signal, which
deletes and re-creates every content type and permission. On PostgreSQL that cost
about 0.3 s a test, some 5 minutes of the suite, most of it TRUNCATE's per-table file
work. A test writes a few rows to a dozen tables, so this empties only the tables that
hold rows, with DELETE (Django's foreign keys are deferred to the commit, so the order
does not matter), and keeps the content types and permissions that migrate made, so
post_migrate has nothing to re-create. The audit table refuses DELETE (a trigger keeps
it append-only), so it alone is truncated, with whatever references it.

Only the test suite installs it (tests/conftest.py); SQLite keeps Django's own flush.
"""

from django.core.management import sql as management_sql
from django.core.management.commands import flush as flush_command

# Written by migrate, never by a test: kept across flushes (and so post_migrate, whose
# only work is re-creating them, is not needed).
KEPT_TABLES = frozenset({"django_content_type", "auth_permission", "django_migrations"})
# Append-only (dashboard/migrations/0004_audit_append_only.py): DELETE is refused.
TRUNCATED_TABLES = frozenset({"dashboard_auditentry"})

_django_sql_flush = management_sql.sql_flush
_django_post_migrate = management_sql.emit_post_migrate_signal


def _tables_with_rows(cursor, connection, tables):
    quote = connection.ops.quote_name
    probes = " UNION ALL ".join(
        f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(table)})" for table in tables
    )
    cursor.execute(probes, list(tables))
    return {row[0] for row in cursor.fetchall()}


def _with_referencing_tables(cursor, dirty, tables):
    """`dirty` plus every table that references one of them, transitively.

    TRUNCATE refuses a table referenced by a foreign key from a table left out of the
    same statement, even an empty one.
    """
    cursor.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text "
        "FROM pg_constraint WHERE contype = 'f'"
    )
    referenced_by = {}
    for referencing, referenced in cursor.fetchall():
        referenced_by.setdefault(referenced.strip('"'), set()).add(referencing.strip('"'))
    result, todo = set(dirty), list(dirty)
    while todo:
        for table in referenced_by.get(todo.pop(), ()):
            if table in tables and table not in result:
                result.add(table)
                todo.append(table)
    return result


def sql_flush(style, connection, reset_sequences=True, allow_cascade=False):
    if connection.vendor != "postgresql" or reset_sequences:
        return _django_sql_flush(
            style, connection, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    tables = set(connection.introspection.django_table_names(only_existing=True)) - KEPT_TABLES
    with connection.cursor() as cursor:
        dirty = _tables_with_rows(cursor, connection, sorted(tables))
        truncate = dirty & TRUNCATED_TABLES
        if truncate:
            truncate = _with_referencing_tables(cursor, truncate, tables)
    quote = connection.ops.quote_name
    statements = [f"DELETE FROM {quote(table)};" for table in sorted(dirty - truncate)]
    if truncate:
        statements += connection.ops.sql_flush(style, sorted(truncate), allow_cascade=allow_cascade)
    return statements


def emit_post_migrate_signal(verbosity, interactive, db, **kwargs):
    from django.db import connections

    if connections[db].vendor != "postgresql":
        _django_post_migrate(verbosity, interactive, db, **kwargs)
    # PostgreSQL: the content types and permissions were kept; nothing to re-create.


def install():
    flush_command.sql_flush = sql_flush
    flush_command.emit_post_migrate_signal = emit_post_migrate_signal
