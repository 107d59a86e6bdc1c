"""
The import as a task: its run's life cycle (queued, running, imported / failed / lost), what the import page makes of
a task that never started or whose worker died, double submits, retries, time limits, and imports too large for a web
request. A real Celery worker that is killed mid-import is in tests/importing/test_worker.py.
"""
import logging
import time
import uuid
from dataclasses import asdict
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded, WorkerLostError
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix.base.models import CachedFile
from pretix.base.services.tasks import ProfiledEventTask

from pretix_secrets_import import config
from pretix_secrets_import.importing import report as error_report, tasks
from pretix_secrets_import.importing.columns import ColumnMapping
from pretix_secrets_import.importing.files import FileFormat
from pretix_secrets_import.models import ImportRun
from pretix_secrets_import.pool import store as pool
from tests.control.test_views import pool_rows, pool_url, upload

pytestmark = pytest.mark.django_db
CSV_FORM = {"format_set": "1", "encoding": "utf-8", "delimiter": ",", "secret": "column:0"}


class Result:
    """What the import page reads of a task from Celery's result backend: its state and the last progress."""

    def __init__(self, state="PENDING", info=None):
        self.state, self.info = state, info

    def ready(self):
        return self.state in ("SUCCESS", "FAILURE")


def make_run(event, state=ImportRun.QUEUED, age=0, started_age=None):
    with scopes_disabled():
        run = ImportRun.objects.create(id=uuid.uuid4(), event=event, upload=uuid.uuid4(), state=state, options={
            "fmt": asdict(FileFormat()), "mapping": ColumnMapping().as_dict()})
        ImportRun.objects.filter(pk=run.pk).update(
            created=now() - timedelta(seconds=age),
            started=None if started_age is None else now() - timedelta(seconds=started_age))
        run.refresh_from_db()
    return run


def test_a_task_no_worker_starts_in_time_is_given_up(event):
    assert tasks.lost_reason(make_run(event, age=config.start_within() - 5), Result()) is None
    run = make_run(event, age=config.start_within() + 1)
    assert tasks.lost_reason(run, Result()) == tasks.NOT_STARTED
    assert run.state == ImportRun.LOST
    assert tasks.lost_reason(run, Result()) == tasks.NOT_STARTED  # and stays so


def test_a_started_task_without_heartbeat_is_lost(event):
    run = make_run(event, state=ImportRun.RUNNING, started_age=config.lost_after() + 30)
    fresh = Result("PROGRESS", {"value": 40, "beat": time.time() - 2})
    assert tasks.lost_reason(run, fresh) is None
    assert run.state == ImportRun.RUNNING
    stale = Result("PROGRESS", {"value": 40, "beat": time.time() - config.lost_after() - 1})
    assert tasks.lost_reason(run, stale) == tasks.LOST
    assert run.state == ImportRun.LOST
    # before its first progress the start time counts
    young = make_run(event, state=ImportRun.RUNNING, started_age=5)
    assert tasks.lost_reason(young, Result("STARTED")) is None


def test_a_task_that_ended_unexpectedly_frees_its_upload_for_a_retry(event):
    run = make_run(event, state=ImportRun.RUNNING, started_age=1000)
    assert tasks.lost_reason(run, Result("FAILURE", ValueError())) is None  # pretix shows the task's error
    assert run.state == ImportRun.FAILED


def test_a_task_whose_worker_process_died_is_lost_with_a_log_line(event, caplog):
    # what Celery's main process stores when the pool process running the task dies, e.g. by the out-of-memory killer
    died = Result("FAILURE", WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0."))
    run = make_run(event, state=ImportRun.RUNNING, started_age=2)
    with caplog.at_level(logging.ERROR, logger=tasks.__name__):
        assert tasks.lost_reason(run, died) == tasks.LOST
    assert run.state == ImportRun.LOST
    [line] = caplog.messages
    assert f"import {run.pk} for bigevents/sampleconf lost: its worker process ended" in line and "SIGKILL" in line
    assert tasks.lost_reason(run, died) == tasks.LOST and len(caplog.messages) == 1  # said and logged once
    # killed before its first step: it was started all the same
    queued = make_run(event)
    assert tasks.lost_reason(queued, died) == tasks.LOST and queued.state == ImportRun.LOST


def process_url_of(backend_client, event, data=b"K-1\nK-2\n"):
    process = upload(backend_client, event, "codes.csv", data)
    file_id = uuid.UUID(process.rstrip("/").split("/")[-1])
    return process, file_id


def runs(file_id):
    with scopes_disabled():
        return list(ImportRun.objects.filter(upload=file_id).order_by("created").values_list("state", flat=True))


def test_an_import_run_ends_imported_and_a_second_submit_shows_it(backend_client, event):
    process, file_id = process_url_of(backend_client, event)
    assert "Try the import again" not in backend_client.get(process).content.decode()
    resp = backend_client.post(process, CSV_FORM, follow=True)
    assert "2 secrets have been imported." in resp.content.decode()
    assert runs(file_id) == [ImportRun.IMPORTED]
    # the upload is gone after a successful import; submitting it again (a double click) imports nothing twice
    resp = backend_client.post(process, CSV_FORM, follow=True)
    assert resp.redirect_chain[-1][0] == pool_url(event)
    assert "This file has already been imported." in resp.content.decode()
    assert pool_rows(event) == [("K-1", False, None), ("K-2", False, None)]
    assert runs(file_id) == [ImportRun.IMPORTED]


def test_a_submit_while_the_upload_is_being_imported_follows_that_import(backend_client, event):
    process, file_id = process_url_of(backend_client, event)
    with scopes_disabled():
        ImportRun.objects.create(id=uuid.uuid4(), event=event, upload=file_id, state=ImportRun.RUNNING)
    resp = backend_client.post(process, CSV_FORM, follow=True)
    assert "This file is being imported already." in resp.content.decode()
    assert pool_rows(event) == []
    assert runs(file_id) == [ImportRun.RUNNING]


def test_a_failed_run_allows_a_retry_with_the_same_choices(backend_client, event, item):
    process, file_id = process_url_of(backend_client, event, b"K-1,x\nK-1,y\n")
    resp = backend_client.post(process, {**CSV_FORM, "item": f"fixed:{item.pk}"})
    assert "/report/" in resp["Location"]
    assert runs(file_id) == [ImportRun.FAILED]
    page = backend_client.get(process).content.decode()
    assert f'<option value="fixed:{item.pk}" selected>' in page  # the last try's choices
    assert "Try the import again" in page
    resp = backend_client.post(process, {**CSV_FORM, "secret": "column:1", "item": f"fixed:{item.pk}"}, follow=True)
    assert "2 secrets have been imported." in resp.content.decode()
    assert runs(file_id) == [ImportRun.FAILED, ImportRun.IMPORTED]
    assert pool_rows(event) == [("x", False, item.pk), ("y", False, item.pk)]


def test_an_import_whose_worker_died_after_the_commit_shows_its_success(backend_client, event, settings):
    process, file_id = process_url_of(backend_client, event)
    backend_client.post(process, CSV_FORM)
    with scopes_disabled():
        run = ImportRun.objects.get(upload=file_id)
    assert run.outcome == {"lines": 2, "imported": 2, "passed_over": 0, "error_count": 0, "report": None,
                           "warnings": []}
    # Celery never learnt the result (the worker died right after the commit): the page reads the run
    settings.HAS_CELERY = True
    answer = backend_client.get(process, {"async_id": str(run.pk), "ajax": "1"}).json()
    assert answer == {"ready": True, "success": True, "redirect": pool_url(event),
                      "message": "2 secrets have been imported."}


def test_a_task_given_up_before_it_started_imports_nothing(backend_client, event):
    process, file_id = process_url_of(backend_client, event)
    with scopes_disabled():
        upload_file = CachedFile.objects.get(pk=file_id)
        run = ImportRun.objects.create(id=uuid.uuid4(), event=event, upload=file_id, state=ImportRun.LOST)
    result = tasks.import_secrets.apply(args=(
        event.pk, str(file_id), asdict(FileFormat()), ColumnMapping().as_dict(), "en", 1, upload_file.session_key,
    ), kwargs={"run_id": str(run.pk)})
    assert "started this import in time" in str(result.result)
    assert pool_rows(event) == []


def test_the_time_limit_stops_an_import_and_stores_nothing(backend_client, event, monkeypatch):
    process, file_id = process_url_of(backend_client, event, b"".join(b"T-%d\n" % i for i in range(12000)))
    insert = pool.insert_rows

    def insert_then_time_out(*args, **kwargs):
        insert(*args, **kwargs)  # a first chunk is stored in the transaction, then the soft limit strikes
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(pool, "insert_rows", insert_then_time_out)
    resp = backend_client.post(process, CSV_FORM, follow=True)
    assert "took too long and was stopped. Nothing was imported." in resp.content.decode()
    assert pool_rows(event) == []
    assert runs(file_id) == [ImportRun.FAILED]


def test_imports_go_to_the_configured_queue_with_a_time_limit(monkeypatch):
    sent = {}
    monkeypatch.setattr(ProfiledEventTask, "apply_async", lambda self, args, kwargs, **options: sent.update(options))
    monkeypatch.setattr(config, "import_queue", lambda: "secrets_import")
    monkeypatch.setattr(config, "import_time_limit", lambda: 600)
    tasks.import_secrets.apply_async(args=(1,), kwargs={"run_id": "5f4bc2b4-0f0e-4f55-9d0b-6a3d7f0a7d31"})
    assert sent == {"task_id": "5f4bc2b4-0f0e-4f55-9d0b-6a3d7f0a7d31", "queue": "secrets_import",
                    "soft_time_limit": 600, "time_limit": 660}


def test_without_a_task_queue_a_large_file_is_refused_up_front(backend_client, event, monkeypatch):
    monkeypatch.setattr(config, "max_lines_in_request", lambda: 3)
    process, file_id = process_url_of(backend_client, event, b"A\nB\nC\nD\nE\n")
    page = backend_client.post(process, CSV_FORM).content.decode()
    assert "This file has about 5 lines." in page
    assert f"python -m pretix import_secrets {event.organizer.slug} {event.slug} FILE" in page
    assert pool_rows(event) == [] and runs(file_id) == []
    monkeypatch.setattr(config, "max_lines_in_request", lambda: 5)
    assert "5 secrets have been imported." in backend_client.post(process, CSV_FORM, follow=True).content.decode()


@pytest.mark.parametrize("option, value, read", [
    ("queue", "imports", config.import_queue), ("import_time_limit", "90", config.import_time_limit),
    ("lost_after", "30", config.lost_after), ("start_within", "45", config.start_within),
    ("max_lines_in_request", "7", config.max_lines_in_request),
])
def test_operators_set_the_limits_in_pretix_cfg(settings, option, value, read):
    defaults = {"queue": None, "import_time_limit": 1800, "lost_after": 60, "start_within": 120,
                "max_lines_in_request": 100000}
    assert read() == defaults[option]
    if not settings.CONFIG_FILE.cp.has_section("pretix_secrets_import"):
        settings.CONFIG_FILE.cp.add_section("pretix_secrets_import")
    settings.CONFIG_FILE.cp.set("pretix_secrets_import", option, value)
    try:
        assert str(read()) == value
    finally:
        settings.CONFIG_FILE.cp.remove_option("pretix_secrets_import", option)


@pytest.mark.parametrize("upload,report", [
    ("gate-codes.csv", "gate-codes-errors.csv"),
    ("Codes 2026 (final).xlsx", "Codes_2026_final-errors.csv"),
    ('x"; filename="evil.exe', "x_filename_evil-errors.csv"),
    ("../../etc/passwd", "passwd-errors.csv"),
    ("", "secrets-import-errors.csv"),
])
def test_the_error_report_is_named_after_the_upload(upload, report):
    assert error_report.filename(upload) == report
