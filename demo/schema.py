"""
A snapshot of the demo database right after its migrations, so that the first `make demo` does not spend a minute
of CPU on them: Django re-renders its model states for each of pretix' ~460 migrations, the schema itself is
written in a fraction of a second.

    python demo/schema.py restore DB   fill DB (a new or empty SQLite file) from demo/schema.sql, if the snapshot was
                                       made with the installed pretix; `migrate` then applies what is newer
    python demo/schema.py dump DB      write demo/schema.sql from DB, a database that `migrate` has just made

`make demo-schema` renews the snapshot (after a pretix upgrade, for instance); tests/test_demo_schema.py fails
while it differs from what the migrations make. Without a snapshot for the installed pretix, `make demo` migrates
as before.
"""
import sqlite3
import sys
from importlib.metadata import version
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("schema.sql")
HEADER = "-- the demo database after `migrate` with pretix {version}; made by `make demo-schema`, do not edit\n"


def dump(db, snapshot=SNAPSHOT):
    with sqlite3.connect(db) as connection:
        lines = list(connection.iterdump())
    snapshot.write_text(HEADER.format(version=version("pretix")) + "\n".join(lines) + "\n")


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
