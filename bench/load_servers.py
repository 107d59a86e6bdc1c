"""
The load run's pretix (a PostgreSQL database and a redis-server of its own) and its servers: gunicorn and a Celery
worker, each in its own process group and logging to a file in the data directory.
"""
import http.client
import os
import random
import re
import signal
import subprocess
import sys
import time

from load_clients import request

PG_DB = "load_secrets_import"  # the start of its database's name; bench/stack.py adds a random part
IMPORT_QUEUE = "secrets_import"  # the plugin's own queue for file imports (its config option [pretix_secrets_import])
WORKERS = int(os.environ.get("LOAD_WORKERS", 3))
WORKER_START = 120.0  # s for a worker or gunicorn to come up


def celery_queues():
    """Every queue pretix routes a task to, and the plugin's queue for imports (which this run configures)."""
    from django.conf import settings

    from pretix.celery_app import app

    from pretix_secrets_import.importing.tasks import import_secrets
    queues = [q.name for q in settings.CELERY_TASK_QUEUES]
    for routes in settings.CELERY_TASK_ROUTES:
        queues += [options["queue"] for _pattern, options in routes if "queue" in options]
    route = app.amqp.router.route(import_secrets._get_exec_options(), import_secrets.name)
    queues += [route["queue"].name if hasattr(route.get("queue"), "name") else route.get("queue"),
               getattr(import_secrets, "queue", None), IMPORT_QUEUE]
    try:
        from pretix_secrets_import.config import import_queue
        queues.append(import_queue())
    except ImportError:  # a plugin version without the option
        pass
    return sorted({q for q in queues if q})


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Servers:
    """gunicorn and a Celery worker, each in its own process group, logging to files in the data directory."""

    def __init__(self, pretix, queues, token):
        self.env = pretix.env(bench_settings=True)
        self.datadir, self.pg_db, self.queues, self.token = pretix.datadir, pretix.pg_db, queues, token
        self.port = random.randint(20000, 40000)
        self.gunicorn = self.worker = None
        self.worker_log = None
        self.generation = 0
        self.logs = []

    def _spawn(self, name, cmd):
        path = os.path.join(self.datadir, name + ".log")
        with open(path, "ab") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.logs.append(path)
        return proc, path

    def start(self):
        """Both; the worker starts first and comes up while gunicorn does."""
        self.start_worker()
        self.start_gunicorn()
        self.wait_worker()

    def start_gunicorn(self):
        self.gunicorn, path = self._spawn("gunicorn", [
            sys.executable, "-m", "gunicorn", "pretix.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(WORKERS), "--timeout", "60", "--log-level", "warning", "--capture-output"])
        deadline = time.time() + WORKER_START
        while time.time() < deadline:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.gunicorn.returncode}):\n{tail(path)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                if request(conn, "GET", "/api/v1/organizers/", self.token)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"gunicorn did not answer within {WORKER_START:.0f} s:\n{tail(path)}")

    def start_worker(self):
        """Start a worker and return at once; ``wait_worker`` waits until it consumes."""
        self.generation += 1
        self.worker, self.worker_log = self._spawn(f"worker-{self.generation}", [
            sys.executable, "-m", "celery", "-A", "pretix.celery_app", "worker", "--pool", "prefork",
            "--concurrency", "2", "--queues", ",".join(self.queues), "--hostname", f"load{self.generation}@%h",
            "--loglevel", "info"])

    def wait_worker(self, timeout=WORKER_START):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited ({self.worker.returncode}):\n{tail(self.worker_log)}")
            with open(self.worker_log, errors="replace") as f:
                if re.search(r"@\S+ ready\.", f.read()):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the Celery worker was not ready within {timeout:.0f} s:\n{tail(self.worker_log)}")

    def kill_worker(self):
        """SIGKILL the worker's whole process group: the main process and its pool children at once."""
        try:
            os.killpg(self.worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.worker.wait(timeout=30)

    def stop(self):
        """SIGTERM to gunicorn's and the worker's main process (a warm shutdown), then SIGKILL to what is left."""
        procs = [p for p in (self.worker, self.gunicorn) if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the group (pool children, gunicorn workers)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
