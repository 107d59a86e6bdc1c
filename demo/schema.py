"""
A snapshot of the demo database right after its migrations, so that the first `make demo` does not spend a minute
of CPU on them: Django re-renders its model states for each of pretix' ~460 migrations, the schema itself is
written in a fraction of a second.

    python demo/schema.py restore DB   fill DB (a new or empty SQLite file) from demo/schema.sql, if the snapshot was
                                       made with the installed pretix; `migrate` then applies what is newer
    python demo/schema.py dump DB      write demo/schema.sql from DB, a database that `migrate` has just made

`make demo-schema` renews the snapshot (after a pretix upgrade or a new migration of the plugin); its second line
records what it was made from, which tests/test_demo_schema.py compares with the checkout. .ci/check-dist compares
the snapshot with what the migrations of the built wheel make in a fresh virtualenv. Without a snapshot for the
installed pretix, `make demo` migrates as before.
"""
import hashlib
import sqlite3
import sys
from importlib.metadata import version
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("schema.sql")
MIGRATIONS = Path(__file__).resolve().parent.parent / "pretix_secrets_import" / "migrations"
HEADER = "-- the demo database after `migrate` with pretix {version}; made by `make demo-schema`, do not edit\n"
SOURCES = "-- made from: Django {django}, the plugin's migrations {digest}\n"


def sources() -> str:
    """The snapshot's second line as the checkout would make it: the Django and the plugin migrations it depends on."""
    digest = hashlib.sha256()
    for migration in sorted(MIGRATIONS.glob("*.py")):
        digest.update(migration.name.encode() + b"\0" + migration.read_bytes())
    return SOURCES.format(django=version("Django"), digest=digest.hexdigest()[:16])


def recorded_sources(snapshot=SNAPSHOT) -> str:
    with snapshot.open() as text:
        text.readline()
        return text.readline()


def objects(connection):
    """The tables, indexes and triggers of an SQLite database, and the migrations recorded as applied."""
    cursor = connection.cursor()
    cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
    schema_rows = [tuple(row) for row in cursor.fetchall()]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    return schema_rows, [tuple(row) for row in cursor.fetchall()]


def dump(db, snapshot=SNAPSHOT):
    with sqlite3.connect(db) as connection:
        lines = list(connection.iterdump())
    snapshot.write_text(HEADER.format(version=version("pretix")) + sources() + "\n".join(lines) + "\n")


def restore(db, snapshot=SNAPSHOT) -> bool:
    """Whether ``db`` was filled from the snapshot; not when it has tables already or the snapshot does not fit."""
    if not snapshot.exists():
        return False
    text = snapshot.read_text()
    if not text.startswith(HEADER.format(version=version("pretix"))):
        return False
    with sqlite3.connect(db) as connection:
        if connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return False
        connection.executescript(text)  # one transaction: BEGIN ... COMMIT as iterdump writes it
    return True


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("dump", "restore"):
        sys.exit(f"usage: {sys.argv[0]} dump|restore DB")
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
    else:
        restore(sys.argv[2])
