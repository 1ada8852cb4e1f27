"""Audit log: append-only in the database itself (migration 0004), past the ORM.

Raw SQL through `connection.cursor()` goes around AuditEntry's manager; on PostgreSQL
a trigger refuses it. SQLite has no such trigger (see the migration), so the raw-SQL
tests run on PostgreSQL only; deleting what an entry names must work on both.
"""

import importlib

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from dashboard.audit import Actor, record
from dashboard.models import AuditEntry, Host

pytestmark = [pytest.mark.django_db]

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger is PostgreSQL's"
)
TABLE = connection.ops.quote_name(AuditEntry._meta.db_table)


@pytest.fixture
def entry(cast):
    host = Host.objects.create(name="h1", url="unix:///tmp/nope.sock")
    return record(
        Actor(cast.owner, "10.1.2.3"),
        "container.stop",
        host=host,
        team=cast.alpha,
        target="web-1",
        target_type="container",
        message="stopped",
    )


def snapshot(pk):
    return AuditEntry.objects.filter(pk=pk).values().get()


def run_sql(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


REFUSED = {
    "update_one": f"UPDATE {TABLE} SET message = 'rewritten' WHERE id = %s",
    "update_all": f"UPDATE {TABLE} SET username = 'nobody' WHERE id >= %s",
    "delete_one": f"DELETE FROM {TABLE} WHERE id = %s",
    "delete_all": f"DELETE FROM {TABLE} WHERE id >= %s",
}


@postgres_only
@pytest.mark.parametrize("statement", list(REFUSED))
def test_raw_sql_update_and_delete_of_audit_entries_are_refused_by_postgresql(entry, statement):
    before = snapshot(entry.pk)
    # A savepoint: the refused statement aborts it, not the test's transaction.
    with pytest.raises(DatabaseError, match="audit entries are append-only"):
        with transaction.atomic():
            run_sql(REFUSED[statement], [entry.pk])
    assert snapshot(entry.pk) == before


@postgres_only
def test_raw_sql_insert_into_the_audit_table_works_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (at, username, host_name, target_type, target_id,"
            " target_name, action, params, result, message)"
            " VALUES (now(), 'raw', '', 'container', '', 'web-1', 'container.stop', '{}',"
            " 'ok', '') RETURNING id"
        )
        (pk,) = cursor.fetchone()
    row = snapshot(pk)
    assert (row["username"], row["action"], row["target_name"]) == (
        "raw",
        "container.stop",
        "web-1",
    )


@postgres_only
def test_reverse_migration_drops_the_trigger_and_update_works_again(entry):
    migration = importlib.import_module("dashboard.migrations.0004_audit_append_only")

    class Undo(Exception):
        pass

    # DDL is transactional on PostgreSQL: drop the trigger, try, and roll it all back.
    with pytest.raises(Undo), transaction.atomic():
        with connection.schema_editor() as editor:
            migration.drop_trigger(apps, editor)
        assert run_sql(REFUSED["update_one"], [entry.pk]) == 1
        assert snapshot(entry.pk)["message"] == "rewritten"
        raise Undo
    # Rolled back: the trigger is in place again.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        run_sql(REFUSED["update_one"], [entry.pk])
    assert snapshot(entry.pk)["message"] == "stopped"


@pytest.mark.parametrize("what", ["user", "host", "team"])
def test_deleting_a_user_host_or_team_named_by_audit_entries_works_and_keeps_them(
    entry, cast, what
):
    # The entry's foreign keys are DO_NOTHING without a DB constraint: the delete
    # issues no UPDATE or DELETE on the audit table, so the trigger never fires.
    before = snapshot(entry.pk)
    target = {"user": cast.owner, "host": entry.host, "team": cast.alpha}[what]
    model = type(target)
    target.delete()
    assert not model.objects.filter(pk=before[f"{what}_id"]).exists()
    assert snapshot(entry.pk) == before


def test_deleting_a_user_with_many_audit_entries_through_the_queryset_works(cast):
    for n in range(3):
        record(Actor(cast.owner, "127.0.0.1"), "container.start", target=f"web-{n}")
    type(cast.owner).objects.filter(pk=cast.owner.pk).delete()
    assert AuditEntry.objects.filter(username="owner").count() == 3
    assert set(AuditEntry.objects.values_list("user_id", flat=True)) == {cast.owner.pk}


@pytest.fixture
def intent(cast):
    return record(
        Actor(cast.owner, "10.1.2.3"),
        "container.stop",
        target="web-1",
        target_type="container",
        result=AuditEntry.Result.PENDING,
    )


def test_an_intent_gets_its_outcome_once_and_only_once(intent):
    assert intent.complete(AuditEntry.Result.OK, "stopped")
    assert not intent.complete(AuditEntry.Result.FAILED, "rewritten")
    row = snapshot(intent.pk)
    assert (row["result"], row["message"]) == ("ok", "stopped")
    assert row["completed_at"] is not None


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        # the outcome, a second time
        f"UPDATE {TABLE} SET result = 'failed', message = 'x' WHERE id = %s",
        # anything but the outcome, even while pending
        f"UPDATE {TABLE} SET result = 'ok', username = 'someone' WHERE id = %s",
        f"UPDATE {TABLE} SET target_name = 'other' WHERE id = %s",
    ],
)
def test_postgresql_refuses_any_other_change_to_an_intent(intent, sql):
    if "failed" in sql:
        intent.complete(AuditEntry.Result.OK, "stopped")
    before = snapshot(intent.pk)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        run_sql(sql, [intent.pk])
    assert snapshot(intent.pk) == before


@postgres_only
def test_postgresql_lets_a_pending_intent_get_its_outcome_by_raw_sql(intent):
    assert (
        run_sql(
            f"UPDATE {TABLE} SET result = 'ok', message = 'done', completed_at = now()"
            " WHERE id = %s",
            [intent.pk],
        )
        == 1
    )
