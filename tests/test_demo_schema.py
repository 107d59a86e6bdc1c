"""demo/schema.sql, which spares the first `make demo` its migrations, is what the migrations make."""
import sqlite3

import pytest
from django.db import connection

from demo import schema

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the demo runs on SQLite")


def objects(cursor):
    """The tables, indexes and triggers, and the migrations recorded as applied."""
    cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
    schema_rows = [tuple(row) for row in cursor.fetchall()]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    return schema_rows, [tuple(row) for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_snapshot_is_the_schema_the_migrations_make(tmp_path):
    # the test database is built by the real migrations of the installed pretix and of the plugin
    db = tmp_path / "db.sqlite3"
    assert schema.restore(db), "demo/schema.sql was not made with the installed pretix: run make demo-schema"
    with sqlite3.connect(db) as snapshot, connection.cursor() as live:
        assert objects(snapshot.cursor()) == objects(live), "demo/schema.sql is out of date: run make demo-schema"


def test_restore_leaves_a_database_with_tables_alone(tmp_path):
    db = tmp_path / "db.sqlite3"
    with sqlite3.connect(db) as existing:
        existing.execute("CREATE TABLE kept (id integer)")
    assert not schema.restore(db)
    with sqlite3.connect(db) as existing:
        assert existing.execute("SELECT name FROM sqlite_master").fetchall() == [("kept",)]


def test_restore_ignores_a_snapshot_of_another_pretix(tmp_path):
    other = tmp_path / "schema.sql"
    other.write_text(schema.HEADER.format(version="1.0.0") + "CREATE TABLE t (id integer);\n")
    assert not schema.restore(tmp_path / "db.sqlite3", snapshot=other)
