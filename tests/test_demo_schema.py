"""demo/schema.sql, which spares the first `make demo` its migrations and each test run on SQLite its schema, is what
the migrations make: here that it was made from them, in .ci/check-dist that it equals what they make."""
import sqlite3

import pytest
from django.db import connection

from demo import schema

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the demo runs on SQLite")


def test_the_snapshot_was_made_from_the_migrations_of_this_checkout():
    """Cheap, for every `make test`: a new or changed migration of the plugin, or another Django, needs a new snapshot.
    That the snapshot is exactly what the migrations make is compared by .ci/check-dist, which migrates anyway."""
    assert schema.recorded_sources() == schema.sources(), "demo/schema.sql is out of date: make demo-schema"


def test_the_snapshot_restores_for_the_installed_pretix(tmp_path):
    restored = tmp_path / "db.sqlite3"
    assert schema.restore(restored), "demo/schema.sql was not made with the installed pretix: run make demo-schema"
    with sqlite3.connect(restored) as snapshot:
        tables, migrations = schema.objects(snapshot)
    assert ("table", "pretix_secrets_import_importedsecret") in [row[:2] for row in tables]
    assert ("pretix_secrets_import", "0001_initial") in migrations


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
