import csv
import io
import tempfile
from datetime import timedelta

from django.core.files import File
from django.utils.timezone import now

from pretix.base.i18n import language
from pretix.base.models import CachedFile, Event, User
from pretix.base.services.tasks import ProfiledEventTask
from pretix.celery_app import app

from .importer import DataImportError, FileFormat, Mapping, import_file

REPORT_FILENAME = "secrets-import-errors.csv"


def neutralize(value: str) -> str:
    """Spreadsheet programs run cells starting with these characters as formulas; make them plain text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


@app.task(base=ProfiledEventTask, bind=True, throws=(DataImportError,))
def import_secrets(self, event: Event, file_id: str, fmt: dict, mapping: dict, locale: str, user_id: int,
                   session_key: str) -> dict:
    upload = CachedFile.objects.get(id=file_id)
    user = User.objects.get(pk=user_id)

    def progress(fraction):
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"value": round(fraction * 100)})

    with language(locale, event.settings.region), tempfile.TemporaryFile() as raw:
        report = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        writer = csv.writer(report)

        def write_error(error):
            writer.writerow([error.line, error.column, neutralize(error.value), error.message])

        with upload.file.open("rb") as f:
            result = import_file(
                event, f, FileFormat(**fmt), Mapping(**mapping), on_error=write_error, progress=progress,
                keep_errors=0, user=user, filename=upload.filename,
            )
        report_id = None
        if result.error_count:
            report.flush()
            raw.seek(0)
            report_file = CachedFile.objects.create(
                expires=now() + timedelta(days=1), date=now(), filename=REPORT_FILENAME, type="text/csv",
                session_key=session_key, web_download=False,
            )
            report_file.file.save(REPORT_FILENAME, File(raw))
            report_id = str(report_file.id)
        report.detach()
    if not result.error_count:
        upload.delete()
    return {
        "lines": result.lines,
        "imported": result.imported,
        "error_count": result.error_count,
        "report": report_id,
    }
