"""
The backend import of a file: the upload, the choice of columns with a preview, the import in a background task,
the error report.
"""
from dataclasses import asdict
from datetime import timedelta
from uuid import UUID, uuid4

from celery.result import AsyncResult
from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.utils import translation
from django.utils.functional import cached_property
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _, ngettext
from django.views.generic import FormView, TemplateView

from pretix.base.modelimport import DataImportError
from pretix.base.models import CachedFile
from pretix.base.views.tasks import AsyncAction

from pretix_secrets_import import config
from pretix_secrets_import.control.forms import ImportForm, UploadForm
from pretix_secrets_import.control.views.base import PoolWriteMixin
from pretix_secrets_import.importing import numbers, report
from pretix_secrets_import.importing.columns import (
    HEADER_SAMPLE, ColumnMapping, first_line_is_header, guess_mapping,
)
from pretix_secrets_import.importing.files import (
    DELIMITERS, ENCODINGS, MAX_UPLOAD_SIZE, FileFormat, count_lines,
    counts_exactly, preview, sniff,
)
from pretix_secrets_import.importing.pipeline import NO_SECRETS
from pretix_secrets_import.importing.tasks import import_secrets, lost_reason
from pretix_secrets_import.links import event_url
from pretix_secrets_import.models import ImportRun
from pretix_secrets_import.pool.codeformat import CodeFormat

TOO_LARGE_FOR_REQUEST = _(
    "This file has about {lines} lines. This pretix runs without a background task queue (Celery), so an import runs "
    "inside the web request, and files of more than {limit} lines could be cut off by the web server's time limit. "
    "Please split the file, or import it on the server with: python -m pretix import_secrets {organizer} {event} FILE"
)


SESSION_SALT = "pretix_secrets_import"
UPLOAD_TYPE = "application/x-pretix-secrets-import"  # marks our uploads among pretix' cached files


PREVIEW_LINES = 10


ERRORS_SHOWN = 500


class ImportUploadView(PoolWriteMixin, FormView):
    template_name = "pretix_secrets_import/import_upload.html"
    form_class = UploadForm

    def form_valid(self, form):
        upload = form.cleaned_data["file"]
        cf = CachedFile.objects.create(
            expires=now() + timedelta(days=1), date=now(), filename=upload.name[-200:], type=UPLOAD_TYPE,
            web_download=False,
        )
        cf.bind_to_session(self.request, SESSION_SALT)
        cf.file.save("secrets-import", upload)
        return redirect(event_url(self.request.event, "import.process", file=cf.id))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["max_size"] = MAX_UPLOAD_SIZE // 1024 // 1024
        code_format = CodeFormat.of_event(self.request.event)
        ctx["code_format"] = None if code_format.is_free else code_format.describe()
        return ctx


class ImportProcessView(PoolWriteMixin, AsyncAction, FormView):
    """Preview of the uploaded file, column mapping, then the import as a (possibly background) task."""
    template_name = "pretix_secrets_import/import_process.html"
    form_class = ImportForm
    task = import_secrets
    known_errortypes = ["DataImportError"]

    @cached_property
    def file(self):
        # Only our own uploads, and only in the session that uploaded them (pretix' check alone lets files pass
        # that are bound to no session, such as API export results).
        cf = CachedFile.objects.filter(pk=self.kwargs["file"], type=UPLOAD_TYPE, session_key__isnull=False).first()
        if cf is None or not cf.file or not cf.allowed_for_session(self.request, SESSION_SALT):
            raise Http404(_("This upload has expired. Please upload the file again."))
        return cf

    @cached_property
    def _last_run(self):
        return self._runs().first()

    @property
    def _last_options(self):
        return self._last_run.options if self._last_run else None

    def _runs(self):
        return ImportRun.objects.filter(event=self.request.event, upload=self.kwargs["file"]).order_by("-created")

    def _follow(self, run):
        """Show what became of ``run``, the import of this upload that is already under way or done."""
        if settings.HAS_CELERY:
            ajax = "ajax" in self.request.POST or "ajax" in self.request.GET
            url = self.get_check_url(run.pk, ajax)
            if ajax:
                return JsonResponse({"ready": False, "async_id": str(run.pk), "check_url": url})
            return redirect(url)
        messages.info(self.request, _("This file has already been imported.") if run.state == ImportRun.IMPORTED
                      else _("This file is being imported already."))
        return redirect(self.pool_url)

    def _open(self):
        # a handle of its own for every read: reads may nest (the preview needs the format, which is sniffed)
        return self.file.file.storage.open(self.file.file.name, "rb")

    @cached_property
    def fmt(self) -> FileFormat:
        with self._open() as f:
            fmt = sniff(f, self.file.filename)
        source = self.request.POST if self.request.method == "POST" else self.request.GET
        if fmt.kind == "csv":
            if source.get("encoding") in ENCODINGS:
                fmt.encoding = source["encoding"]
            if source.get("delimiter") in tuple(DELIMITERS):
                fmt.delimiter = source["delimiter"]
        if "has_header" in source or source.get("format_set"):
            fmt.has_header = bool(source.get("has_header"))
        elif self._last_options and self.request.method == "GET":
            fmt = FileFormat(**self._last_options["fmt"])
        return fmt

    @cached_property
    def preview(self):
        """
        The header (or ``None``) and the first lines of the file: one more than shown (are there more?), and at least
        those that header detection compares the first line with.
        """
        with self._open() as f:
            return preview(f, self.fmt, lines=max(PREVIEW_LINES, HEADER_SAMPLE) + 1)

    def dispatch(self, request, *args, **kwargs):
        if "async_id" in request.GET and settings.HAS_CELERY:
            return self.get_result(request)
        try:
            self.file
        except Http404:
            # A successful import deletes its upload; a second submit or a return to the page shows that import.
            imported = self._runs().filter(state=ImportRun.IMPORTED).first()
            if imported is None:
                raise
            return self._follow(imported)
        return super().dispatch(request, *args, **kwargs)

    def get_result(self, request):
        try:
            run = ImportRun.objects.filter(pk=UUID(request.GET.get("async_id", "")), event=request.event).first()
        except ValueError:
            run = None  # pretix' own check answers that
        if run is not None and run.state == ImportRun.IMPORTED:
            return self.success(run.outcome)  # stored for good, whatever became of the task afterwards
        reason = run and lost_reason(run, AsyncResult(str(run.pk)))
        if reason:
            return self.error(DataImportError(reason))
        return super().get_result(request)

    def _readable(self):
        """``None`` if the file can be previewed, otherwise a redirect back to the upload with the reason."""
        try:
            self.preview
        except DataImportError as e:
            messages.error(self.request, str(e))
            return redirect(event_url(self.request.event, "import"))

    def get(self, request, *args, **kwargs):
        return self._readable() or FormView.get(self, request, *args, **kwargs)

    def columns(self):
        header, rows = self.preview
        width = max([len(header or [])] + [len(cells) for _line, cells in rows[:PREVIEW_LINES]])
        return [
            header[i] if header and i < len(header) and header[i].strip()
            else _("Column {number}").format(number=i + 1)
            for i in range(width)
        ]

    def get_form_kwargs(self):
        kwargs = {**super().get_form_kwargs(), "event": self.request.event, "fmt": self.fmt,
                  "columns": self.columns()}
        if self.request.method == "POST" and "refresh" in self.request.POST:
            # only the file format changed: show the preview again, no errors yet (an unbound form: no files either)
            kwargs.pop("data", None)
            kwargs.pop("files", None)
        kwargs["initial"] = {"encoding": self.fmt.encoding, "delimiter": self.fmt.delimiter,
                             "has_header": self.fmt.has_header}
        # a retry starts with the choices of the last try, a new import with what the column names suggest
        retry = self._last_options and self.request.method == "GET"
        mapping = ColumnMapping.from_dict(self._last_options["mapping"]) if retry else guess_mapping(
            self.columns(), self.request.event.has_subevents)
        kwargs["initial"].update(ImportForm.initial_from(mapping))
        kwargs["initial"]["skip_existing"] = bool(retry and self._last_options.get("skip_existing"))
        return kwargs

    def post(self, request, *args, **kwargs):
        return self._readable() or super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["header"], rows = self.preview
        ctx["rows"], ctx["more"] = rows[:PREVIEW_LINES], len(rows) > PREVIEW_LINES
        if ctx["more"]:
            # data lines, as shown: without the header
            with self._open() as f:
                ctx["line_count"] = max(count_lines(f, self.fmt) - (1 if ctx["header"] is not None else 0), len(rows))
            ctx["lines_exact"] = counts_exactly(self.fmt)
        ctx["columns"] = self.columns()
        ctx["fmt"] = self.fmt
        # the first number that the import would refuse as a code, already with the preview: its message says what to do
        ctx["number_refused"] = next(((line, ctx["columns"][i], refusal) for line, cells in ctx["rows"]
                                      for i, refusal in numbers.refusals(cells).items()), None)
        # the preview holds the first line and the HEADER_SAMPLE lines below it that detection compares it with
        ctx["header_as_data"] = not self.fmt.has_header and first_line_is_header(
            [cells for _line, cells in rows[:HEADER_SAMPLE + 1]])
        ctx["file"] = self.file
        ctx["empty"] = not rows  # only a line of column names, or blank lines: nothing to import
        # the last try of this upload ended without importing (lost, cancelled, refused): the button retries it
        ctx["retry"] = self._last_run is not None and self._last_run.state in (ImportRun.LOST, ImportRun.FAILED)
        return ctx

    def form_valid(self, form):
        if "refresh" in self.request.POST:
            return self.form_invalid(form)
        if not self.preview[1]:  # the page offers no import then; a form sent all the same gets the reason
            form.add_error(None, NO_SECRETS)
            return self.form_invalid(form)
        fmt = self.fmt
        if fmt.kind == "csv":
            fmt.encoding, fmt.delimiter = form.cleaned_data["encoding"], form.cleaned_data["delimiter"]
        fmt.has_header = form.cleaned_data["has_header"]
        if not settings.HAS_CELERY:
            with self._open() as f:
                lines = count_lines(f, fmt)
            if lines > config.max_lines_in_request():
                form.add_error(None, TOO_LARGE_FOR_REQUEST.format(
                    lines=lines, limit=config.max_lines_in_request(), organizer=self.request.event.organizer.slug,
                    event=self.request.event.slug,
                ))
                return self.form_invalid(form)
        options = {"fmt": asdict(fmt), "mapping": form.mapping().as_dict(),
                   "skip_existing": form.cleaned_data["skip_existing"]}
        try:
            with transaction.atomic():
                run = ImportRun.objects.create(id=uuid4(), event=self.request.event, upload=self.file.id,
                                               options=options)
        except IntegrityError:  # this upload is being imported already: a double submit
            active = self._runs().filter(state__in=ImportRun.ACTIVE).first()
            return self._follow(active) if active else redirect(self.request.path)  # it has just ended: look again
        return self.do(
            self.request.event.pk, str(self.file.id), options["fmt"], options["mapping"],
            translation.get_language(), self.request.user.pk, self.file.session_key, run_id=str(run.pk),
            skip_existing=options["skip_existing"],
        )

    def get_success_message(self, value):
        if value["error_count"]:
            return None
        message = ngettext("{count} secret has been imported.", "{count} secrets have been imported.",
                           value["imported"]).format(count=value["imported"])
        passed_over = value.get("passed_over", 0)  # not in the outcome of an import by an older release
        if passed_over:
            message += " " + ngettext(
                "{count} secret was in the pool already and has been passed over.",
                "{count} secrets were in the pool already and have been passed over.", passed_over,
            ).format(count=passed_over)
        return message

    def get_success_url(self, value):
        # pretix asks for this once on every way an import ends (the page, its polling, a return to the upload), and
        # shows the messages on the page it leads to: the pool, or the report of a refused import. Like pretix' own
        # success message, not when the polling page says it will not follow the link.
        if "ajax_dont_redirect" not in self.request.GET and "ajax_dont_redirect" not in self.request.POST:
            for warning in value.get("warnings", ()):
                messages.warning(self.request, warning)
        if value["error_count"]:
            return event_url(self.request.event, "import.report", file=self.kwargs["file"], report=value["report"])
        return self.pool_url

    def get_error_url(self):
        return self.request.path


class ImportReportView(PoolWriteMixin, TemplateView):
    """Every invalid line of a failed import; the first ones on the page, all of them as a CSV download."""
    template_name = "pretix_secrets_import/import_report.html"

    @cached_property
    def report(self):
        cf = CachedFile.objects.filter(pk=self.kwargs["report"], type=report.TYPE, session_key__isnull=False).first()
        if cf is None or not cf.file or not cf.allowed_for_session(self.request, SESSION_SALT):
            raise Http404(_("This report has expired."))
        return cf

    def get(self, request, *args, **kwargs):
        if "download" in request.GET:
            response = FileResponse(self.report.file.open("rb"), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{self.report.filename}"'
            return response
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        with self.report.file.open("rb") as raw:
            errors, count = report.read(raw, ERRORS_SHOWN)
        ctx.update(errors=errors, error_count=count, shown=len(errors),
                   retry_url=event_url(self.request.event, "import.process", file=self.kwargs["file"]),
                   upload_url=event_url(self.request.event, "import"))
        return ctx
