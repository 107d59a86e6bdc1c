"""
File imports on pretix' production task stack: a real Celery worker (prefork, Redis as broker and result backend) on
the test database, on the plugin's own queue. Its pool process is killed with SIGKILL mid-import while its main
process lives on (what the kernel's out-of-memory killer does), the whole worker is killed (its machine or container
gone), its database session is terminated mid-import, and it is not running at all when an import is queued: each
time the import page answers within the configured bound that nothing was imported, the pool holds nothing of that
import, and a retry of the same upload imports it whole.

PostgreSQL only (the worker needs a database it shares with the test) and ``transaction=True`` (it reads committed
data). Each test starts a redis-server of its own (bench/stack.py) and stops it at its end: no Redis that a pretix
may use is touched.
"""
import html
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict

import pytest
from celery import Celery
from celery.result import AsyncResult
from django.db import connection
from django_scopes import scopes_disabled

from pretix.base.models import CachedFile

from bench.stack import RedisServer
from pretix_secrets_import import config
from pretix_secrets_import.control.views import imports as import_views
from pretix_secrets_import.importing import tasks
from pretix_secrets_import.importing.columns import ColumnMapping
from pretix_secrets_import.importing.files import FileFormat
from pretix_secrets_import.models import ImportedSecret, ImportRun
from tests.importing.test_tasks import process_url_of
from tests.test_crash_safety import assert_counted, query

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.heavy,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the worker needs a shared database"),
]

QUEUE = "secrets_import"
LINES = int(os.environ.get("WORKER_IMPORT_LINES", "300000"))
LOST_AFTER = 10  # seconds: the import page's bound in these tests (60 by default)
APP_NAME = "secrets-import-worker"


@pytest.fixture
def stack(tmp_path, monkeypatch, settings):
    """Start and kill a Celery worker; ``stack.app`` sends tasks and reads their results like pretix' web server."""
    redis = RedisServer(str(tmp_path / "redis")).start()
    broker, backend = redis.url(0), redis.url(1)
    cfg = tmp_path / "pretix.cfg"
    cfg.write_text(
        f"[pretix]\ndatadir={settings.DATA_DIR}\n\n"  # where the test's uploads are
        f"[database]\nbackend=postgresql\nname={connection.settings_dict['NAME']}\nuser=postgres\n"
        f"host=127.0.0.1\nport=5432\n\n[celery]\nbroker={broker}\nbackend={backend}\n\n"
        f"[pretix_secrets_import]\nqueue={QUEUE}\n"
    )
    workers = []

    class Stack:
        app = Celery(backend=backend)  # reads the results
        # sends without a result backend: Celery's Redis backend would subscribe to each task's result, and unsubscribe
        # when the AsyncResult is garbage-collected, which may be after the Redis has gone
        sender = Celery(broker=broker)

        @staticmethod
        def start_worker():
            log = open(tmp_path / f"worker-{len(workers)}.log", "w")
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "pretix.celery_app", "worker", "-Q", QUEUE, "--pool",
                 "prefork", "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                env={**os.environ, "PRETIX_CONFIG_FILE": str(cfg), "DJANGO_SETTINGS_MODULE": "pretix.settings",
                     "PGAPPNAME": APP_NAME},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            workers.append(worker)
            return worker

        @staticmethod
        def kill(worker):
            """The whole worker at once, its main process and its pool, as when its machine or container goes down."""
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)

        @staticmethod
        def kill_pool_process(worker):
            """
            SIGKILL to the worker's one pool process alone, as the kernel's out-of-memory killer picks the process
            that holds the import's memory; the main process lives on and starts a new pool process.
            """
            [child] = children(worker.pid)
            os.kill(child, signal.SIGKILL)
            return child

        @staticmethod
        def send(event, file_id, session_key, user):
            """What the import page does when the user clicks Import, through the real queue."""
            with scopes_disabled():
                run = ImportRun.objects.create(id=uuid.uuid4(), event=event, upload=file_id, options={
                    "fmt": asdict(FileFormat()), "mapping": ColumnMapping().as_dict()})
            Stack.sender.send_task(
                tasks.import_secrets.name, task_id=str(run.pk), queue=QUEUE,
                args=(event.pk, str(file_id), asdict(FileFormat()), ColumnMapping().as_dict(), "en", user.pk,
                      session_key),
                kwargs={"run_id": str(run.pk)}, soft_time_limit=config.import_time_limit(),
            )
            return run, AsyncResult(str(run.pk), app=Stack.app)

    monkeypatch.setattr(config, "lost_after", lambda: LOST_AFTER)
    monkeypatch.setattr(config, "start_within", lambda: 5)
    try:
        yield Stack
    finally:
        for worker in workers:
            if worker.poll() is None:
                Stack.kill(worker)
        Stack.sender.close()
        Stack.app.close()
        redis.stop()


def children(pid):
    """The IDs of the processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # ended meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # "pid (name) state ppid ...": the name may hold spaces
            found.append(int(entry))
    return found


def wait_for(condition, timeout, what):
    started = time.monotonic()
    while True:
        value = condition()
        if value:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{what} not within {timeout} s"
        time.sleep(0.2)


def mid_import(result):
    assert not result.ready(), result.result
    return result.state == "PROGRESS" and 0 < result.info.get("value", 0) < 100


def reason_of(run, result):
    with scopes_disabled():
        run.refresh_from_db()
        return tasks.lost_reason(run, result)


def pool_size(event):
    with scopes_disabled():
        return ImportedSecret.objects.filter(event=event).count()


def big_upload(backend_client, event):
    data = b"".join(b"W-%07d\n" % i for i in range(LINES))
    process, file_id = process_url_of(backend_client, event, data)
    with scopes_disabled():
        session_key = CachedFile.objects.get(pk=file_id).session_key
    return process, file_id, session_key


def poll_page(backend_client, process, run, app, settings, monkeypatch):
    """The import page's answer to the browser's poll, as pretix with Celery gives it."""
    settings.HAS_CELERY = True
    monkeypatch.setattr(import_views, "AsyncResult", lambda task_id: AsyncResult(task_id, app=app))
    try:
        return backend_client.get(process, {"async_id": str(run.pk), "ajax": "1"}).json()
    finally:
        settings.HAS_CELERY = False


def assert_offered_again(backend_client, process):
    """The import page after a lost import: the reason, and the form with the retry button."""
    page = backend_client.get(process).content.decode()
    assert html.escape(str(tasks.LOST)) in page
    assert 'id="import-submit"' in page and "Try the import again" in page


def test_a_pool_process_killed_mid_import_is_reported_within_seconds_and_the_retry_imports_all(
        backend_client, event, user, stack, settings, monkeypatch, caplog):
    process, file_id, session_key = big_upload(backend_client, event)
    worker = stack.start_worker()
    run, result = stack.send(event, file_id, session_key, user)
    wait_for(lambda: mid_import(result), 120, "progress")
    stack.kill_pool_process(worker)
    killed_at = time.monotonic()
    # Celery's main process sees its pool process die and stores that as the task's result: no heartbeat to wait for
    wait_for(lambda: result.ready(), LOST_AFTER, "Celery's report of the lost task")
    with caplog.at_level(logging.ERROR, logger=tasks.__name__):
        answer = poll_page(backend_client, process, run, stack.app, settings, monkeypatch)
    print(f"failure shown {time.monotonic() - killed_at:.1f} s after the kill")
    assert answer["ready"] is True and answer["success"] is False
    assert answer["message"] == str(tasks.LOST) and answer["redirect"] == process
    [line] = [record.getMessage() for record in caplog.records if record.name == tasks.__name__]
    assert f"import {run.pk} for bigevents/sampleconf lost: its worker process ended" in line
    assert "signal 9 (SIGKILL)" in line and "nothing was imported" in line
    with scopes_disabled():
        run.refresh_from_db()
    assert run.state == ImportRun.LOST
    assert pool_size(event) == 0
    assert_counted(event)
    assert_offered_again(backend_client, process)
    # the retry: the same upload, the same page, everything imported once, by the same worker: its main process lived
    # on and started a new pool process
    assert worker.poll() is None
    retry, retry_result = stack.send(event, file_id, session_key, user)
    wait_for(lambda: retry_result.ready(), 300, "the retried import")
    # .result, not .get(): an eager task earlier in this test process makes Celery refuse a blocking get()
    assert retry_result.state == "SUCCESS" and retry_result.result["imported"] == LINES
    assert pool_size(event) == LINES
    assert_counted(event)
    with scopes_disabled():
        assert list(ImportRun.objects.filter(upload=file_id).order_by("created").values_list("state", flat=True)) \
            == [ImportRun.LOST, ImportRun.IMPORTED]


def test_a_worker_killed_whole_mid_import_is_reported_when_its_heartbeat_stops(
        backend_client, event, user, stack, settings, monkeypatch):
    # Nobody is left to store a result: only the missing heartbeat tells. (The retry after a lost import is above.)
    process, file_id, session_key = big_upload(backend_client, event)
    worker = stack.start_worker()
    run, result = stack.send(event, file_id, session_key, user)
    wait_for(lambda: mid_import(result), 120, "progress")
    stack.kill(worker)
    killed_at = time.monotonic()
    assert reason_of(run, result) is None  # a heartbeat a moment ago: it could still be working
    waited = wait_for(lambda: reason_of(run, result), LOST_AFTER + tasks.HEARTBEAT_SECONDS + 5, "the failure")
    assert time.monotonic() - killed_at <= LOST_AFTER + tasks.HEARTBEAT_SECONDS + 5
    print(f"failure shown {time.monotonic() - killed_at:.1f} s after the kill (polled for {waited:.1f} s)")
    assert reason_of(run, result) == tasks.LOST and run.state == ImportRun.LOST
    answer = poll_page(backend_client, process, run, stack.app, settings, monkeypatch)
    assert answer["ready"] is True and answer["success"] is False
    assert answer["message"] == str(tasks.LOST) and answer["redirect"] == process
    assert pool_size(event) == 0
    assert_counted(event)
    assert_offered_again(backend_client, process)


def test_a_terminated_database_session_fails_the_import_cleanly(backend_client, event, user, stack):
    _process, file_id, session_key = big_upload(backend_client, event)
    stack.start_worker()
    run, result = stack.send(event, file_id, session_key, user)
    wait_for(lambda: mid_import(result), 120, "progress")
    terminated = query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                       [APP_NAME])
    assert terminated
    wait_for(lambda: result.ready(), 60, "the import's end")
    assert result.state == "FAILURE"
    assert "interrupted by a database error. Nothing was imported." in str(result.result)
    assert reason_of(run, result) is None and run.state == ImportRun.FAILED
    assert pool_size(event) == 0
    assert_counted(event)


def test_a_queued_import_without_worker_is_given_up_and_never_runs_later(backend_client, event, user, stack):
    _process, file_id, session_key = big_upload(backend_client, event)
    run, result = stack.send(event, file_id, session_key, user)  # no worker listens on the queue
    wait_for(lambda: reason_of(run, result), 5 + 5, "giving up")
    assert reason_of(run, result) == tasks.NOT_STARTED
    stack.start_worker()  # the task is still in the queue: it must not import behind the user's back now
    wait_for(lambda: result.ready(), 60, "the late task")
    assert "started this import in time" in str(result.result)
    assert pool_size(event) == 0
