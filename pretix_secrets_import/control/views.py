import csv
import io
import logging
import re
from dataclasses import asdict
from datetime import timedelta
from time import monotonic
from uuid import UUID, uuid4

from celery.result import AsyncResult
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import FileResponse, Http404, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.functional import cached_property
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _, ngettext
from django.views import View
from django.views.generic import FormView, TemplateView

from pretix.base.modelimport import DataImportError
from pretix.base.models import CachedFile, Event, OrderPosition
from pretix.base.views.tasks import AsyncAction
from pretix.control.permissions import EventPermissionRequiredMixin
from pretix.control.views.event import (
    EventSettingsFormView, EventSettingsViewMixin,
)
from pretix.helpers import OF_SELF

from pretix_secrets_import import config
from pretix_secrets_import.control.forms import (
    AddSecretForm, ImportForm, PoolFilterForm, SecretsImportSettingsForm,
    UploadForm,
)
from pretix_secrets_import.importing.columns import (
    HEADER_SAMPLE, ColumnMapping, first_line_is_header, guess_mapping,
)
from pretix_secrets_import.importing.files import (
    DELIMITERS, ENCODINGS, MAX_UPLOAD_SIZE, FileFormat, count_lines, preview,
    sniff,
)
from pretix_secrets_import.importing.tasks import (
    REPORT_TYPE, import_secrets, lost_reason,
)
from pretix_secrets_import.models import ImportedSecret, ImportRun
from pretix_secrets_import.plugin import enabled_for
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.pool.codeformat import (
    CodeFormat, TooSlow, misfits, misfits_url,
)
from pretix_secrets_import.pool.rules import (
    ALREADY_IMPORTED, DB_ID_MAX, SECRET_MAX_LENGTH,
)
from pretix_secrets_import.sales import alerts
from pretix_secrets_import.sales.alerts import group_names, labels
from pretix_secrets_import.sales.generator import uses_pool
from pretix_secrets_import.sales.sellable import restriction_warnings, sellable

SESSION_SALT = "pretix_secrets_import"
MISFITS_SECONDS = 10  # a page of secrets that do not fit stops looking after this and offers to go on
TOO_LARGE_FOR_REQUEST = _(
    "This file has about {lines} lines. This pretix runs without a background task queue (Celery), so an import runs "
    "inside the web request, and files of more than {limit} lines could be cut off by the web server's time limit. "
    "Please split the file, or import it on the server with: python -m pretix import_secrets {organizer} {event} FILE"
)
UPLOAD_TYPE = "application/x-pretix-secrets-import"  # marks our uploads among pretix' cached files
logger = logging.getLogger(__name__)


class SecretsImportSettings(EventSettingsViewMixin, EventSettingsFormView):
    model = Event
    form_class = SecretsImportSettingsForm
    template_name = "pretix_secrets_import/settings.html"
    permission = "event.settings.general:write"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        ctx["unused_count"] = pool.count(event, used=False)
        ctx["generator_active"] = uses_pool(event)
        ctx["ticket_settings_url"] = reverse("control:event.settings.tickets", kwargs={
            "organizer": event.organizer.slug, "event": event.slug,
        })
        return ctx

    def get_success_url(self) -> str:
        return reverse("plugins:pretix_secrets_import:settings", kwargs={
            "organizer": self.request.event.organizer.slug,
            "event": self.request.event.slug,
        })


POOL_PAGE_SIZE = 50
SELLABLE_PAGE_SIZE = 25
PREVIEW_LINES = 10
ERRORS_SHOWN = 500


def _id_param(value):
    """A database ID from a query or form parameter, or ``None`` for anything else."""
    if value and re.fullmatch(r"[0-9]{1,19}", value) and int(value) <= DB_ID_MAX:
        return int(value)
    return None


def _url(event, name, **kwargs):
    return reverse(f"plugins:pretix_secrets_import:{name}", kwargs={
        "organizer": event.organizer.slug, "event": event.slug, **kwargs,
    })


class PoolMixin(EventPermissionRequiredMixin):
    """Pool pages exist only while the plugin is enabled for the event (pretix does not check that itself)."""
    permission = "event.orders:read"

    def dispatch(self, request, *args, **kwargs):
        if not enabled_for(request.event):
            raise Http404(_("The Secrets Import plugin is not enabled for this event."))
        return super().dispatch(request, *args, **kwargs)

    @cached_property
    def pool_url(self):
        return _url(self.request.event, "pool")


def stylesheet_url():
    """
    The URL of the pool page's stylesheet, ``None`` while it is not collected: after an upgrade without
    ``python -m pretix rebuild``, pretix' manifest of static files does not know it, and the page is better shown
    without it than not at all.
    """
    try:
        return static("pretix_secrets_import/pool.css")
    except ValueError:
        logger.warning("pretix_secrets_import/pool.css is missing from the static files: run python -m pretix rebuild")
        return None


class PoolView(PoolMixin, TemplateView):
    template_name = "pretix_secrets_import/pool.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        ctx["filter_form"] = form = PoolFilterForm(self.request.GET or None, event=event)
        qs = ImportedSecret.of_event(event)
        filtered = form.is_valid() and any(form.cleaned_data.values())
        if filtered:
            qs = form.filter(qs)
        groups = pool.summary(event)
        ctx["summary"], ctx["totals"] = self._summary(event, groups)
        ctx["stylesheet"] = stylesheet_url()
        ctx["sellable"] = self._sellable(event, groups, form.sellable_filters() if form.is_valid() else {})
        ctx["filtered"] = filtered
        count_filters = form.count_filters() if filtered else {}
        ctx["count"] = qs.count() if count_filters is None else pool.count(
            event, groups=groups, **count_filters)
        # A search reads the (event, secret) index in secret order; everything else is listed in import order.
        order = "secret" if filtered and form.cleaned_data.get("search") else "id"
        ctx["secrets"], ctx["prev_cursor"], ctx["next_cursor"] = self._page(qs, order)
        ctx["pages"] = max(1, -(-ctx["count"] // POOL_PAGE_SIZE))
        ctx["page"] = self._page_number(ctx["pages"], ctx["prev_cursor"], ctx["next_cursor"])
        ctx["tickets"] = self._tickets(event, ctx["secrets"])
        ctx["generator_active"] = uses_pool(event)
        ctx["can_write"] = self.request.user.has_event_permission(
            event.organizer, event, "event.orders:write", request=self.request)
        # used secrets cannot be deleted: no checkboxes and no delete button on a page without unused ones
        ctx["selectable"] = ctx["can_write"] and any(not s.used for s in ctx["secrets"])
        return ctx

    def _page_number(self, pages, prev_cursor, next_cursor):
        """
        The number of the page shown. Counting the rows before a cursor would read them all, so the links carry the
        number along (``page``); the first and the last page know theirs.
        """
        if not prev_cursor:
            return 1
        if not next_cursor:
            return pages
        return max(2, min(_id_param(self.request.GET.get("page")) or 2, pages - 1))

    def _sellable(self, event, groups, filters):
        """A page of the products (variations, dates) that draw from the pool, fewest secrets left first."""
        rows = sellable(event, on_sale=True, groups=groups, **filters)
        page = Paginator(rows, SELLABLE_PAGE_SIZE).get_page(self.request.GET.get("sellable_page"))
        shown = list(page)
        names = labels(event, [s.target for s in shown])
        page.rows = [{**s.as_dict(), "label": label} for s, label in zip(shown, names)]
        return page

    def _summary(self, event, groups):
        names = group_names(event, [counted.group for counted in groups])
        totals = {key: sum(getattr(counted, key) for counted in groups) for key in ("total", "used", "unused")}
        return [{**counted.as_dict(), **n} for counted, n in zip(groups, names)], totals

    def _page(self, qs, order):
        """
        Keyset pagination by ``order`` ("id" or "secret", both unique within the event): every page, the last one
        included, is one index range scan, however large the pool is (an OFFSET would read all rows before the page).
        """
        get = self.request.GET
        parse = _id_param if order == "id" else (lambda value: (value or "")[:SECRET_MAX_LENGTH] or None)
        before, after = parse(get.get("before")), parse(get.get("after"))
        if before is not None:
            rows = list(qs.filter(**{f"{order}__lt": before}).order_by(f"-{order}")[:POOL_PAGE_SIZE + 1])[::-1]
            has_prev, rows = len(rows) > POOL_PAGE_SIZE, rows[-POOL_PAGE_SIZE:]
            has_next = True
        elif get.get("last"):
            rows = list(qs.order_by(f"-{order}")[:POOL_PAGE_SIZE + 1])[::-1]
            has_prev, rows, has_next = len(rows) > POOL_PAGE_SIZE, rows[-POOL_PAGE_SIZE:], False
        else:
            page_qs = qs.filter(**{f"{order}__gt": after}) if after is not None else qs
            rows = list(page_qs.order_by(order)[:POOL_PAGE_SIZE + 1])
            has_next, rows = len(rows) > POOL_PAGE_SIZE, rows[:POOL_PAGE_SIZE]
            has_prev = after is not None and bool(rows) and qs.filter(
                **{f"{order}__lt": getattr(rows[0], order)}).exists()
        return (rows, getattr(rows[0], order) if rows and has_prev else None,
                getattr(rows[-1], order) if rows and has_next else None)

    def _tickets(self, event, secrets):
        used = [s.secret for s in secrets if s.used]
        if not used:
            return {}
        positions = OrderPosition.all.filter(
            order__event=event, secret__in=used,
        ).select_related("order")
        return {p.secret: p for p in positions}


class PoolWriteMixin(PoolMixin):
    permission = "event.orders:write"


class AddSecretView(PoolWriteMixin, FormView):
    template_name = "pretix_secrets_import/pool_add.html"
    form_class = AddSecretForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "event": self.request.event}

    @transaction.atomic
    def form_valid(self, form):
        secret = ImportedSecret.build(self.request.event, form.row)
        try:
            with transaction.atomic():
                secret.save()
        except IntegrityError:  # stored concurrently after the check
            form.add_error("secret", ALREADY_IMPORTED)
            return self.form_invalid(form)
        secret.log_action("pretix_secrets_import.secret.added", user=self.request.user, data=secret.as_row())
        alerts.pool_grew(self.request.event, {pool.Group.of(secret)})
        messages.success(self.request, _("The secret has been added."))
        if form.trimmed:
            messages.info(self.request, _('The whitespace around it was removed: the secret is "{secret}".').format(
                secret=secret.secret))
        for warning in restriction_warnings(self.request.event, {secret.item: 1} if secret.item else {}):
            messages.warning(self.request, warning)
        if "add_another" in self.request.POST:
            return redirect(_url(self.request.event, "pool.add"))
        return redirect(self.pool_url)


class DeleteSecretsView(PoolWriteMixin, View):
    """Delete the selected secrets after a confirmation; used ones are on tickets and are kept."""

    @transaction.atomic
    def post(self, request, *args, **kwargs):
        # back to the list as it was: the pool page's search, filters and page (re-encoded, so only a query string)
        query = QueryDict(request.POST.get("query", "")).urlencode()
        back = f"{self.pool_url}?{query}" if query else self.pool_url
        ids = [pk for pk in map(_id_param, request.POST.getlist("secret")) if pk is not None]
        selected = ImportedSecret.of_event(request.event).filter(pk__in=ids)
        if "confirm" in request.POST:
            deleted = list(selected.filter(used=False).select_for_update(of=OF_SELF))
            for secret in deleted:
                secret.log_action("pretix_secrets_import.secret.deleted", user=request.user, data=secret.as_row())
            ImportedSecret.objects.filter(pk__in=[s.pk for s in deleted]).delete()
        else:
            count = selected.filter(used=False).count()
            if count:
                return render(request, "pretix_secrets_import/pool_delete.html", {
                    "ids": ids, "count": count, "kept": selected.count() - count, "query": query, "back": back,
                })
            deleted = []
        kept = selected.count()
        if deleted:
            messages.success(request, ngettext(
                "{count} secret has been deleted.", "{count} secrets have been deleted.", len(deleted),
            ).format(count=len(deleted)))
        if kept:
            messages.warning(request, ngettext(
                "{count} selected secret is already on a ticket and was kept.",
                "{count} selected secrets are already on tickets and were kept.", kept,
            ).format(count=kept))
        if not deleted and not kept:
            messages.error(request, _("You did not select any secrets."))
        return redirect(back)


class DeleteUnusedView(PoolWriteMixin, TemplateView):
    template_name = "pretix_secrets_import/pool_delete_unused.html"

    def _nothing_to_delete(self):
        messages.info(self.request, _("There are no unused secrets to delete."))
        return redirect(self.pool_url)

    def get(self, request, *args, **kwargs):
        count = pool.count(request.event, used=False)
        if not count:
            return self._nothing_to_delete()
        return self.render_to_response(self.get_context_data(count=count))

    @transaction.atomic
    def post(self, request, *args, **kwargs):
        # Rows being handed out right now are locked by the sale; DELETE waits for them and skips the ones that
        # became used, so a secret on a ticket is never deleted.
        count, _details = ImportedSecret.of_event(request.event).filter(used=False).delete()
        if not count:  # sold or deleted since the confirmation was shown
            return self._nothing_to_delete()
        request.event.log_action("pretix_secrets_import.secrets.deleted", user=request.user, data={"count": count})
        messages.success(request, ngettext(
            "{count} unused secret has been deleted.", "{count} unused secrets have been deleted.", count,
        ).format(count=count))
        return redirect(self.pool_url)


class MisfitsView(PoolMixin, TemplateView):
    """
    The unused secrets that do not fit a code format (``codeformat.check_change`` links here with the format the
    organizer wanted), a page at a time in import order, to delete or to compare with the vendor's list.
    """
    template_name = "pretix_secrets_import/pool_misfits.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        try:
            code_format = CodeFormat.unsign(event, self.request.GET.get("format", ""))
        except signing.BadSignature:
            raise Http404(_("This link to secrets that do not fit a code format is not valid. Change the settings "
                            "again to get a new one."))
        after = _id_param(self.request.GET.get("after")) or 0
        found, stopped = [], None
        problems = code_format.problems()  # a format signed before a rule for formats was added
        try:
            for misfit in [] if problems else misfits(event, code_format, after=after,
                                                      deadline=monotonic() + MISFITS_SECONDS):
                found.append(misfit)
                if len(found) > POOL_PAGE_SIZE:
                    break
        except TooSlow as e:
            stopped = e.after
        ctx["format_problems"] = list(problems.values())
        ctx["first_page"] = not after
        ctx["format"] = code_format.describe()
        ctx["misfits"] = found[:POOL_PAGE_SIZE]
        ctx["stopped"] = stopped is not None
        if len(found) > POOL_PAGE_SIZE or (stopped is not None and stopped > after):
            ctx["next_url"] = misfits_url(event, code_format, found[POOL_PAGE_SIZE - 1][0]
                                          if len(found) > POOL_PAGE_SIZE else stopped)
        ctx["can_write"] = self.request.user.has_event_permission(
            event.organizer, event, "event.orders:write", request=self.request)
        ctx["back"] = self.pool_url
        return ctx


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
        return redirect(_url(self.request.event, "import.process", file=cf.id))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["max_size"] = MAX_UPLOAD_SIZE // 1024 // 1024
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
            return redirect(_url(self.request.event, "import"))

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
        return kwargs

    def post(self, request, *args, **kwargs):
        return self._readable() or super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["header"], rows = self.preview
        ctx["rows"], ctx["more"] = rows[:PREVIEW_LINES], len(rows) > PREVIEW_LINES
        if ctx["more"]:
            # data lines, as shown: without the header; a last line without a line break is not counted
            with self._open() as f:
                ctx["about_lines"] = max(count_lines(f, self.fmt) - (1 if ctx["header"] is not None else 0), len(rows))
        ctx["columns"] = self.columns()
        ctx["fmt"] = self.fmt
        # the preview holds the first line and the HEADER_SAMPLE lines below it that detection compares it with
        ctx["header_as_data"] = not self.fmt.has_header and first_line_is_header(
            [cells for _line, cells in rows[:HEADER_SAMPLE + 1]])
        ctx["file"] = self.file
        # the last try of this upload ended without importing (lost, cancelled, refused): the button retries it
        ctx["retry"] = self._last_run is not None and self._last_run.state in (ImportRun.LOST, ImportRun.FAILED)
        return ctx

    def form_valid(self, form):
        if "refresh" in self.request.POST:
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
        options = {"fmt": asdict(fmt), "mapping": form.mapping().as_dict()}
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
        )

    def get_success_message(self, value):
        if value["error_count"]:
            return None
        return ngettext("{count} secret has been imported.", "{count} secrets have been imported.",
                        value["imported"]).format(count=value["imported"])

    def get_success_url(self, value):
        # pretix asks for this once on every way an import ends (the page, its polling, a return to the upload), and
        # shows the messages on the page it leads to: the pool, or the report of a refused import. Like pretix' own
        # success message, not when the polling page says it will not follow the link.
        if "ajax_dont_redirect" not in self.request.GET and "ajax_dont_redirect" not in self.request.POST:
            for warning in value.get("warnings", ()):
                messages.warning(self.request, warning)
        if value["error_count"]:
            return _url(self.request.event, "import.report", file=self.kwargs["file"], report=value["report"])
        return self.pool_url

    def get_error_url(self):
        return self.request.path


class ImportReportView(PoolWriteMixin, TemplateView):
    """Every invalid line of a failed import; the first ones on the page, all of them as a CSV download."""
    template_name = "pretix_secrets_import/import_report.html"

    @cached_property
    def report(self):
        cf = CachedFile.objects.filter(pk=self.kwargs["report"], type=REPORT_TYPE, session_key__isnull=False).first()
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
        errors, count = [], 0
        with self.report.file.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            rows = csv.reader(text)
            next(rows, None)  # the header
            for row in rows:
                count += 1
                if len(errors) < ERRORS_SHOWN:
                    errors.append(dict(zip(("line", "column", "value", "message"), row)))
            text.detach()
        ctx.update(errors=errors, error_count=count, shown=len(errors),
                   retry_url=_url(self.request.event, "import.process", file=self.kwargs["file"]),
                   upload_url=_url(self.request.event, "import"))
        return ctx
