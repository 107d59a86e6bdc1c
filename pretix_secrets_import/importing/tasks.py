import logging
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded, WorkerLostError
from django.core.files import File
from django.db import DatabaseError, close_old_connections, transaction
from django.utils.timezone import now
from django.utils.translation import gettext as _, gettext_lazy

from pretix.base.i18n import language
from pretix.base.modelimport import DataImportError
from pretix.base.models import CachedFile, Event, User
from pretix.base.services.tasks import ProfiledEventTask
from pretix.celery_app import app

from pretix_secrets_import import config
from pretix_secrets_import.importing import report
from pretix_secrets_import.importing.columns import ColumnMapping
from pretix_secrets_import.importing.files import FileFormat
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.models import ImportRun

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5


NOT_STARTED = gettext_lazy(
    "No background worker started this import in time, so it was cancelled. Nothing was imported. Please try again; "
    "if this keeps happening, ask your pretix administrator to check the task workers (Celery)."
)
LOST = gettext_lazy(
    "The import stopped before it finished because the background worker running it ended (for example, it was "
    "restarted or ran out of memory). Nothing was imported. You can start the import again below."
)


def lost_reason(run, result):
    """
    Why the task of ``run`` counts as lost, or ``None`` while it may still finish. ``result`` is its Celery
    ``AsyncResult``. A queued task that no worker starts in time, or a started one whose heartbeat stopped, is marked
    lost, so that the task, should it still start, does nothing. So is one whose worker process died, as the
    out-of-memory killer ends it: Celery's main process, still alive, stores a ``WorkerLostError`` as its result.
    """
    if result.ready():
        if result.state == "FAILURE" and isinstance(result.info, WorkerLostError):
            if run.move([ImportRun.QUEUED, ImportRun.RUNNING], ImportRun.LOST):
                logger.error("Secrets import %s for %s/%s lost: its worker process ended (%s; a SIGKILL is often the "
                             "kernel's out-of-memory killer); nothing was imported", run.pk,
                             run.event.organizer.slug, run.event.slug, result.info)
            # the task may have failed the run itself before its process died: nothing was imported either way
            return LOST if run.state in (ImportRun.LOST, ImportRun.FAILED) else None
        # an unexpected error can end the task before it updated the run; a retry must be possible
        run.move([ImportRun.QUEUED, ImportRun.RUNNING], ImportRun.FAILED)
        return None
    if run.state == ImportRun.QUEUED and (now() - run.created).total_seconds() > config.start_within():
        if run.move([ImportRun.QUEUED], ImportRun.LOST):
            logger.warning("Secrets import %s for %s/%s was not started by a worker within %s s; given up", run.pk,
                           run.event.organizer.slug, run.event.slug, config.start_within())
    elif run.state == ImportRun.RUNNING:
        info = result.info if result.state == "PROGRESS" and isinstance(result.info, dict) else {}
        last_sign = info.get("beat") or run.started.timestamp()
        if time.time() - last_sign > config.lost_after() and run.move([ImportRun.RUNNING], ImportRun.LOST):
            logger.error("Secrets import %s for %s/%s lost: no heartbeat for %.0f s (worker gone); nothing was "
                         "imported", run.pk, run.event.organizer.slug, run.event.slug, time.time() - last_sign)
    if run.state == ImportRun.LOST:
        return LOST if run.started else NOT_STARTED
    return None


class _Heartbeat(threading.Thread):
    """
    Publishes the progress with a timestamp every few seconds while the import runs, from a thread of its own, so
    that a long database statement does not look like a dead worker. The import page takes a missing beat for a lost
    task. It writes to Celery's result backend, not the database, which the import holds in one transaction.
    """

    def __init__(self, task, task_id):
        super().__init__(daemon=True, name="secrets-import-heartbeat")
        self.task, self.task_id, self.value = task, task_id, 0
        self.last = 0.0  # monotonic time of the last beat
        self.stopped = threading.Event()

    def beat(self):
        self.last = time.monotonic()
        self.task.backend.store_result(self.task_id, {"value": self.value, "beat": time.time()}, "PROGRESS")

    def advance(self, value):
        """A new progress value, published at once if the last beat is a second old: a fast import shows it."""
        if value != self.value:
            self.value = value
            if time.monotonic() - self.last >= 1:
                self.publish()

    def publish(self):
        try:
            self.beat()
        except Exception:  # a passing broker problem must not end the import; the next beat may get through
            logger.warning("Could not publish the progress of secrets import %s", self.task_id, exc_info=True)

    def run(self):
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            self.publish()


@contextmanager
def _heartbeat(task):
    if task.request.called_directly or task.request.is_eager:
        yield None  # inside the request: nobody polls
        return
    heartbeat = _Heartbeat(task, task.request.id)
    heartbeat.beat()
    heartbeat.start()
    try:
        yield heartbeat
    finally:
        heartbeat.stopped.set()
        heartbeat.join()


def _finish(run, state, **fields):
    if run is not None:
        run.move([ImportRun.RUNNING], state, **fields)


def _outcome(result, report_id=None) -> dict:
    """What the task returns, and what the import page shows."""
    return {"lines": result.lines, "imported": result.imported, "passed_over": result.passed_over,
            "error_count": result.error_count, "report": report_id, "warnings": result.warnings}


class ImportTask(ProfiledEventTask):
    """Runs under its run's ID, with the operator's time limit, on the operator's queue if they configured one."""

    def apply_async(self, args=None, kwargs=None, **options):
        if kwargs and kwargs.get("run_id"):
            options.setdefault("task_id", kwargs["run_id"])
        limit = config.import_time_limit()
        options.setdefault("soft_time_limit", limit)
        options.setdefault("time_limit", limit + 60)  # if the soft limit cannot interrupt it
        if config.import_queue():
            options.setdefault("queue", config.import_queue())
        return super().apply_async(args, kwargs, **options)


# The name from before the module moved into importing/: tasks queued by an older release still find it.
@app.task(base=ImportTask, bind=True, throws=(DataImportError,), name="pretix_secrets_import.tasks.import_secrets")
def import_secrets(self, event: Event, file_id: str, fmt: dict, mapping: dict, locale: str, user_id: int,
                   session_key: str, run_id: str = None, skip_existing: bool = False) -> dict:
    run = ImportRun.objects.filter(pk=run_id).first() if run_id else None
    with language(locale, event.settings.region), _heartbeat(self) as heartbeat:
        if run is not None and not run.move([ImportRun.QUEUED], ImportRun.RUNNING, started=now()):
            # The page gave up waiting for a worker and told the user nothing was imported: keep it that way.
            raise DataImportError(NOT_STARTED)
        try:
            result = _run_import(event, run, file_id, fmt, mapping, user_id, session_key, heartbeat, skip_existing)
        except SoftTimeLimitExceeded:
            _finish(run, ImportRun.FAILED)
            logger.warning("Secrets import for %s/%s stopped by its time limit; nothing was imported",
                           event.organizer.slug, event.slug)
            raise DataImportError(_("The import took too long and was stopped. Nothing was imported. Please split "
                                    "the file or use the import_secrets command on the server."))
        except DatabaseError:
            logger.exception("Secrets import for %s/%s failed with a database error; nothing was imported",
                             event.organizer.slug, event.slug)
            close_old_connections()  # the connection may be gone (e.g. the session was terminated)
            _finish(run, ImportRun.FAILED)
            raise DataImportError(_("The import was interrupted by a database error. Nothing was imported. "
                                    "Please try again."))
        except DataImportError:
            _finish(run, ImportRun.FAILED)
            raise
    return result


def _run_import(event, run, file_id, fmt, mapping, user_id, session_key, heartbeat, skip_existing):
    upload = CachedFile.objects.get(id=file_id)
    user = User.objects.get(pk=user_id)

    def progress(fraction):
        if heartbeat is not None:
            heartbeat.advance(round(fraction * 100))

    with tempfile.TemporaryFile() as raw:
        with report.writing(raw) as write_error, transaction.atomic(), upload.file.open("rb") as f:
            result = import_file(
                event, f, FileFormat(**fmt), ColumnMapping.from_dict(mapping), on_error=write_error, progress=progress,
                keep_errors=0, skip_existing=skip_existing, user=user, filename=upload.filename,
            )
            if not result.error_count:
                # In the import's transaction: once the secrets are stored, the run says so, even if the worker dies
                # before Celery stores the task's result. A file whose secrets were all passed over is done as well.
                _finish(run, ImportRun.IMPORTED, outcome=_outcome(result))
        report_id = None
        if result.error_count:
            _finish(run, ImportRun.FAILED)
            raw.seek(0)
            report_file = CachedFile.objects.create(
                expires=now() + timedelta(days=1), date=now(), filename=report.filename(upload.filename),
                type=report.TYPE, session_key=session_key, web_download=False,
            )
            report_file.file.save("secrets-import-errors.csv", File(raw))
            report_id = str(report_file.id)
    if not result.error_count:
        upload.delete()
    return _outcome(result, report_id)
