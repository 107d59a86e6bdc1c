"""
The test database, with its schema built once instead of by each worker through pretix' ~470 migrations.

SQLite: each worker's database file is filled from demo/schema.sql, the snapshot of what the migrations of the pinned
pretix and of the plugin make (tests/test_demo_schema.py fails while it is out of date, .ci/check-dist compares it
with what the migrations make); `migrate` then applies what is newer, which is nothing unless the snapshot is behind.
Without a fitting snapshot, the migrations run as before.

PostgreSQL: a template database is migrated, by pretix' own migrate command in a process of its own, and every worker
clones it (``CREATE DATABASE … TEMPLATE``, about a second). The template is marked with a digest of everything its
schema depends on: the installed packages and the plugin's migrations. It is used again while that digest stays the
same and migrated afresh when it changes; ``python -m tests.database`` (.ci/run) builds it ahead of the tests. The
real migration chain keeps its own tests (tests/test_migrations.py on both databases, .ci/check-dist).
"""
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.db import connection
from django.test.utils import setup_databases

from demo import schema


def set_up(keepdb, verbosity):
    """Create this worker's test database as ``setup_databases`` would; return what ``teardown_databases`` takes."""
    name = connection.creation._get_test_db_name()
    if connection.vendor == "sqlite" and not (keepdb and os.path.exists(name)):
        if restore_snapshot(name):
            keepdb = True  # keep the restored schema: migrate applies only what is newer
    elif connection.vendor == "postgresql" and not keepdb:
        return set_up_from_template(name, verbosity)
    return migrate(keepdb, verbosity)


def migrate(keepdb, verbosity):
    return setup_databases(verbosity=verbosity, interactive=False, aliases={"default"}, serialized_aliases=set(),
                           keepdb=keepdb)


def restore_snapshot(name) -> bool:
    if os.path.exists(name):
        os.remove(name)
    return schema.restore(name)


def set_up_from_template(name, verbosity):
    with connection._nodb_cursor() as cursor:  # on the "postgres" database, in autocommit as CREATE DATABASE needs
        template = ensure_template(cursor)
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return migrate(True, verbosity)  # nothing left to apply: this only points Django at the clone


def ensure_template(cursor):
    """The template database, migrated unless it is already for this schema; one process builds, the others wait."""
    template, key = template_name(), schema_key()
    cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [template])
    try:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [template])
        row = cursor.fetchone()
        if not row or row[0] != key:
            cursor.execute(f'DROP DATABASE IF EXISTS "{template}"')
            cursor.execute(f'CREATE DATABASE "{template}"')
            run_migrations(template)
            cursor.execute(f'COMMENT ON DATABASE "{template}" IS %s', [key])  # only once it is complete
    finally:
        cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [template])
    return template


def schema_key():
    """A digest of what the migrated schema depends on: the installed packages and the plugin's migrations."""
    digest = hashlib.sha256()
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    digest.update("\n".join(packages).encode())
    digest.update(schema.sources().encode())  # the plugin's migrations, digested as for demo/schema.sql
    return digest.hexdigest()


def run_migrations(database):
    """The migrations on the PostgreSQL database ``database`` of this run's server."""
    settings = connection.settings_dict
    with tempfile.TemporaryDirectory() as data:
        config = Path(data) / "pretix.cfg"
        config.write_text(f"[pretix]\ndatadir={data}\n\n[database]\nbackend=postgresql\nname={database}\n"
                          f"user={settings['USER']}\npassword={settings['PASSWORD']}\nhost={settings['HOST']}\n"
                          f"port={settings['PORT']}\n")
        pretix_migrate(config)


def pretix_migrate(config):
    """pretix' migrate command with the pretix.cfg ``config``, in a process of its own as an installation runs it."""
    env = {**os.environ, "PRETIX_CONFIG_FILE": str(config), "DJANGO_SETTINGS_MODULE": "pretix.settings"}
    subprocess.run([sys.executable, "-m", "pretix", "migrate", "--noinput", "-v", "0"], env=env, check=True)


def template_name():
    """The test database's name without a worker's suffix, and ``_template``."""
    configured = connection.settings_dict.get("TEST", {}).get("NAME")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if configured and worker and configured.endswith("_" + worker):
        configured = configured[:-len(worker) - 1]
    return (configured or "test_" + connection.settings_dict["NAME"]) + "_template"


if __name__ == "__main__":  # the template alone, ahead of `make test-pg` (.ci/run); PRETIX_CONFIG_FILE names the server
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    with connection._nodb_cursor() as nodb:
        print(f"{ensure_template(nodb)} is ready")
