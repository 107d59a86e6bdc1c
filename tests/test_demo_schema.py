"""demo/schema.sql, which spares the first `make demo` its migrations and each test run on SQLite its schema, is what
the migrations make."""
import sqlite3

import pytest
from django.db import connection

from demo import schema
from tests import database

DEMO = schema.SNAPSHOT.parent

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the demo runs on SQLite")


def objects(cursor):
    """The tables, indexes and triggers, and the migrations recorded as applied."""
    cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
    schema_rows = [tuple(row) for row in cursor.fetchall()]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    return schema_rows, [tuple(row) for row in cursor.fetchall()]


def migrated(data):
    """A database made by the real migrations of the installed pretix and of the plugin, as `make demo-schema` does."""
    config = data / "pretix.cfg"
    config.write_text((DEMO / "pretix.cfg.in").read_text().replace("@PORT@", "8000").replace("@DATA@", str(data)))
    database.pretix_migrate(config)
    return data / "db.sqlite3"


@pytest.mark.long
def test_the_snapshot_is_the_schema_the_migrations_make(tmp_path):
    (tmp_path / "snapshot").mkdir()
    restored = tmp_path / "snapshot" / "db.sqlite3"
    assert schema.restore(restored), "demo/schema.sql was not made with the installed pretix: run make demo-schema"
    with sqlite3.connect(restored) as snapshot, sqlite3.connect(migrated(tmp_path)) as real:
        assert objects(snapshot.cursor()) == objects(real.cursor()), "demo/schema.sql is out of date: make demo-schema"


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
