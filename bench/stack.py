"""
The throwaway pretix that the benchmark (bench/run.py) and the load run (bench/load.py) set up: a temporary data
directory with its pretix.cfg (DEBUG off), a database of the run's own (SQLite in that directory, or a PostgreSQL
database on 127.0.0.1:5432, user postgres, trust authentication, dropped and recreated) and, for the load run, Redis dbs
as Celery broker, result backend, cache and session store. On SQLite the schema comes from demo/schema.sql, the
snapshot `make demo` uses, if it fits the installed pretix; pretix' own migrate command then applies what is newer
(everything on PostgreSQL or without a snapshot). Django then runs in this process with bench_settings.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PG = dict(host="127.0.0.1", port=5432, user="postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def write_config(datadir, db, pg_db, redis_dbs=(), import_queue=None):
    """
    pretix.cfg in ``datadir``. ``redis_dbs`` (broker, result backend, cache and sessions) puts Celery on Redis, else
    pretix runs its tasks in the calling process; ``import_queue`` is the plugin's Celery queue for file imports.
    """
    if db == "sqlite":
        database = f"backend=sqlite3\nname={datadir}/db.sqlite3\n"
    else:
        database = f"backend=postgresql\nname={pg_db}\nuser={PG['user']}\nhost={PG['host']}\nport={PG['port']}\n"
    text = ("# written by bench/stack.py\n[pretix]\ninstance_name=bench\nurl=http://127.0.0.1\ncurrency=EUR\n"
            f"datadir={datadir}\n\n[database]\n{database}\n[django]\ndebug=off\n\n"
            "[mail]\nfrom=bench@localhost\nhost=127.0.0.1\nport=1\n")
    if redis_dbs:
        broker, backend, cache = (f"redis://{REDIS_HOST}:{REDIS_PORT}/{n}" for n in redis_dbs)
        text += f"\n[celery]\nbroker={broker}\nbackend={backend}\n\n[redis]\nlocation={cache}\nsessions=true\n"
    if import_queue:
        text += f"\n[pretix_secrets_import]\nqueue={import_queue}\n"
    path = os.path.join(datadir, "pretix.cfg")
    with open(path, "w") as f:
        f.write(text)
    return path


def pg_connect(dbname, autocommit=False):
    import psycopg2
    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = autocommit
    return conn


def drop_database(name, create=False):
    """Drop the PostgreSQL database ``name`` (its sessions too) and, with ``create``, create it empty."""
    conn = pg_connect("postgres", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            cur.execute(f"CREATE DATABASE {name}")
    conn.close()


def flush_redis(dbs):
    if not dbs:
        return
    import redis
    for db in dbs:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        client.flushdb()
        client.close()


class Pretix:
    """One run's pretix: its data directory, pretix.cfg, database and Redis dbs."""

    def __init__(self, db, pg_db, prefix, redis_dbs=(), import_queue=None):
        self.db, self.pg_db, self.redis_dbs = db, pg_db, redis_dbs
        self.datadir = tempfile.mkdtemp(prefix=prefix)
        self.config = write_config(self.datadir, db, pg_db, redis_dbs, import_queue)

    def create(self):
        """Empty Redis dbs and a new database, migrated."""
        flush_redis(self.redis_dbs)
        if self.db == "postgresql":
            drop_database(self.pg_db, create=True)
        self.restore_snapshot()
        self.command("migrate", "--noinput", "-v", "0")

    def restore_snapshot(self):
        """On SQLite, the migrated schema in a second instead of the two minutes of pretix' ~470 migrations."""
        if self.db == "sqlite":  # as `make demo` does
            subprocess.run([sys.executable, os.path.join(ROOT, "demo", "schema.py"), "restore",
                            os.path.join(self.datadir, "db.sqlite3")], check=True)

    def setup_django(self):
        """Django in this process on this pretix.cfg, with bench_settings."""
        os.environ["PRETIX_CONFIG_FILE"] = self.config
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        import django
        django.setup()
        import logging
        for name in ("celery", "pretix", "django", "pretix_secrets_import"):  # pretix logs every eager task at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        from django.conf import settings
        assert not settings.DEBUG

    def env(self, bench_settings=False):
        """
        The environment of a subprocess. ``python -m pretix`` falls back to pretix' own settings; servers (gunicorn,
        Celery) get bench_settings and its path.
        """
        env = dict(os.environ, PRETIX_CONFIG_FILE=self.config)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        if bench_settings:
            env.update(DJANGO_SETTINGS_MODULE="bench_settings", PYTHONPATH=HERE)
        return env

    def command(self, *args):
        """Run ``python -m pretix ARGS`` under /usr/bin/time -v: (seconds, peak RSS in MB, stdout)."""
        cmd = [sys.executable, "-m", "pretix", *args]
        wrapped = ["/usr/bin/time", "-v", *cmd] if os.path.exists("/usr/bin/time") else cmd
        t = time.perf_counter()
        proc = subprocess.run(wrapped, env=self.env(), capture_output=True, text=True)
        elapsed = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        rss = int(m.group(1)) / 1024 if m else None
        return elapsed, rss, proc.stdout

    def drop(self):
        """Close this process' connections, drop the database and empty the Redis dbs."""
        from django.db import connections
        connections.close_all()
        if self.db == "postgresql":
            drop_database(self.pg_db)
        flush_redis(self.redis_dbs)

    def remove(self):
        shutil.rmtree(self.datadir, ignore_errors=True)
