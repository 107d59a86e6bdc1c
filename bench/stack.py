"""
The throwaway pretix that the benchmark (bench/run.py) and the load run (bench/load.py) set up: a temporary data
directory with its pretix.cfg (DEBUG off), a database of the run's own (SQLite in that directory, or a PostgreSQL
database on 127.0.0.1:5432, user postgres, trust authentication, under a name no other run has, created and dropped
by the run) and, for the load run, a redis-server of its own (``RedisServer``) as Celery broker, result backend, cache
and session store. Nothing here touches a database or a Redis that another pretix may use. On SQLite the schema comes
from demo/schema.sql, the snapshot `make demo` uses, if it fits the installed pretix; pretix' own migrate command then
applies what is newer (everything on PostgreSQL or without a snapshot). Django then runs in this process with
bench_settings.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PG = dict(host="127.0.0.1", port=5432, user="postgres")


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def _end_with_parent():
    """In the child before exec: SIGTERM when the process that started it dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RedisServer:
    """
    A redis-server of the caller's own on 127.0.0.1, its files in ``directory``: the load run and the worker tests
    empty and fill Redis databases, which on a shared server would be some pretix' broker, cache or sessions. It
    ends with ``stop``, or with the process that started it.
    """

    def __init__(self, directory):
        self.directory = directory
        self.process = self.port = None

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout=10.0):
        os.makedirs(self.directory, exist_ok=True)
        for _attempt in range(5):  # the free port may be taken by someone else before the server binds it
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", self.directory, "--logfile", os.path.join(self.directory, "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the run does not end it before the run has stopped its servers
                preexec_fn=_end_with_parent,
            )
            if self._answers(timeout):
                return self
        raise RuntimeError(f"redis-server did not start; see {self.directory}/redis.log")

    def _answers(self, timeout):
        import redis
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                    if client.ping():
                        return True
            except redis.ConnectionError:
                time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        return False

    def stop(self):
        """End the server and remove its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def write_config(datadir, db, pg_db, redis=None, import_queue=None):
    """
    pretix.cfg in ``datadir``. With ``redis`` (a started ``RedisServer``) Celery runs on it, with databases 0 and 1 as
    broker and result backend and 2 as cache and session store; without, pretix runs its tasks in the calling process.
    ``import_queue`` is the plugin's Celery queue for file imports.
    """
    if db == "sqlite":
        database = f"backend=sqlite3\nname={datadir}/db.sqlite3\n"
    else:
        database = f"backend=postgresql\nname={pg_db}\nuser={PG['user']}\nhost={PG['host']}\nport={PG['port']}\n"
    text = ("# written by bench/stack.py\n[pretix]\ninstance_name=bench\nurl=http://127.0.0.1\ncurrency=EUR\n"
            f"datadir={datadir}\n\n[database]\n{database}\n[django]\ndebug=off\n\n"
            "[mail]\nfrom=bench@localhost\nhost=127.0.0.1\nport=1\n")
    if redis:
        text += (f"\n[celery]\nbroker={redis.url(0)}\nbackend={redis.url(1)}\n\n"
                 f"[redis]\nlocation={redis.url(2)}\nsessions=true\n")
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


def _database(statement):
    conn = pg_connect("postgres", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


class Pretix:
    """
    One run's pretix: its data directory, pretix.cfg, database and Redis. The PostgreSQL database is named
    ``<pg_db>_<random>``, so that the run never drops a database it did not create, nor one of a run beside it.
    """

    def __init__(self, db, pg_db, prefix, redis=False, import_queue=None):
        self.db, self.import_queue = db, import_queue
        self.pg_db = f"{pg_db}_{uuid.uuid4().hex[:8]}"
        self.datadir = tempfile.mkdtemp(prefix=prefix)
        self.config = os.path.join(self.datadir, "pretix.cfg")
        self.redis = RedisServer(os.path.join(self.datadir, "redis")) if redis else None
        self.created = False

    def create(self):
        """The Redis started, pretix.cfg written, the database created and migrated."""
        if self.redis:
            self.redis.start()
        write_config(self.datadir, self.db, self.pg_db, self.redis, self.import_queue)
        if self.db == "postgresql":
            _database(f"CREATE DATABASE {self.pg_db}")
        self.created = True
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
        """Close this process' connections, drop the database and stop the Redis: whatever of them the run made."""
        from django.conf import settings
        if settings.configured:
            from django.db import connections
            connections.close_all()
        if self.db == "postgresql" and self.created:
            _database(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
        if self.redis:
            self.redis.stop()

    def remove(self):
        shutil.rmtree(self.datadir, ignore_errors=True)
