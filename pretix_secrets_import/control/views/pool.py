"""
The pool pages: the list with its filters and what is still sellable, adding secrets, the secrets that do not fit a
code format and deleting them all (``deleting`` deletes the others).
"""
from time import monotonic

from django.contrib import messages
from django.core import signing
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import redirect
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _, ngettext
from django.views.generic import FormView, TemplateView

from pretix.base.models import OrderPosition

from pretix_secrets_import import paging
from pretix_secrets_import.control.forms import AddSecretForm, PoolFilterForm
from pretix_secrets_import.control.views.base import (
    PoolMixin, PoolWriteMixin, id_param, stylesheet_url,
)
from pretix_secrets_import.control.views.deleting import log_deleted
from pretix_secrets_import.links import event_url
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.pool.format_change import (
    CHECK_SECONDS, TooSlow, delete_misfits, misfit_page, misfits_url,
    settings_url,
)
from pretix_secrets_import.pool.rules import (
    ALREADY_IMPORTED, SECRET_MAX_LENGTH,
)
from pretix_secrets_import.sales import alerts
from pretix_secrets_import.sales.alerts import group_names, labels
from pretix_secrets_import.sales.generator import uses_pool
from pretix_secrets_import.sales.sellable import restriction_warnings, sellable

MISFITS_SECONDS = 10  # a page of secrets that do not fit stops looking after this and offers to go on


POOL_PAGE_SIZE = 50


SELLABLE_PAGE_SIZE = 25


class PoolView(PoolMixin, TemplateView):
    template_name = "pretix_secrets_import/pool.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event = self.request.event
        ctx["filter_form"] = form = PoolFilterForm(self.request.GET or None, event=event)
        filtered = form.is_valid() and any(form.cleaned_data.values())
        # A search and the product and date filters have indexes of their own; the whole pool and the status filter
        # are read along the (event, ID) indexes.
        narrowed = filtered and any(form.cleaned_data.get(name) for name in ("search", "item", "subevent"))
        qs = paging.pool_for_list(event, narrowed)
        if filtered:
            qs = form.filter(qs)
        groups = pool.summary(event)
        # the counters and the table per restriction count what the product and date filters choose, from the
        # pool's counters; a search and the status filter apply to the list
        chosen = form.group_filters() if form.is_valid() else {}
        ctx["summary"], ctx["totals"] = self._summary(event, pool.matching(groups, **chosen))
        ctx["counted_for"] = form.group_labels() if form.is_valid() else []
        ctx["stylesheet"] = stylesheet_url()
        ctx["sellable"] = self._sellable(event, groups, form.sellable_filters() if form.is_valid() else {})
        ctx["filtered"] = filtered
        count_filters = form.count_filters() if filtered else {}
        ctx["count"] = qs.count() if count_filters is None else pool.count(
            event, groups=groups, **count_filters)
        # A search reads the (event, secret) index in secret order; everything else is listed in import order.
        order = "secret" if filtered and form.cleaned_data.get("search") else "id" if narrowed else paging.POOL_ORDER
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
        return max(2, min(id_param(self.request.GET.get("page")) or 2, pages - 1))

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
        """Keyset pages by ``order``: "secret" or the ID ("id", ``paging.POOL_ORDER``), both unique within the event."""
        get = self.request.GET
        parse = id_param if order != "secret" else (lambda value: (value or "")[:SECRET_MAX_LENGTH] or None)
        return paging.keyset(qs, order, POOL_PAGE_SIZE, before=parse(get.get("before")), after=parse(get.get("after")),
                             last=bool(get.get("last")))

    def _tickets(self, event, secrets):
        used = [s.secret for s in secrets if s.used]
        if not used:
            return {}
        positions = OrderPosition.all.filter(
            order__event=event, secret__in=used,
        ).select_related("order")
        return {p.secret: p for p in positions}


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
            return redirect(event_url(self.request.event, "pool.add"))
        return redirect(self.pool_url)


class SignedFormatMixin(PoolMixin):
    """A page about the code format that ``format_change.check_change`` signed into its link (``?format=``)."""

    @cached_property
    def code_format(self) -> CodeFormat:
        try:
            return CodeFormat.unsign(self.request.event, self.request.GET.get("format", ""))
        except signing.BadSignature:
            raise Http404(_("This link to secrets that do not fit a code format is not valid. Change the settings "
                            "again to get a new one."))

    def settings_url(self):
        """Back to the settings change with the format filled in again, for those who may change the settings."""
        event = self.request.event
        if self.request.user.has_event_permission(event.organizer, event, "event.settings.general:write",
                                                  request=self.request):
            return settings_url(event, self.code_format)
        return None


class MisfitsView(SignedFormatMixin, TemplateView):
    """
    The unused secrets that do not fit a code format (``format_change.check_change`` links here with the format the
    organizer wanted), a page at a time in import order, how many there are, and the way to delete them all.
    """
    template_name = "pretix_secrets_import/pool_misfits.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        event, code_format = self.request.event, self.code_format
        after = id_param(self.request.GET.get("after")) or 0
        offset = (id_param(self.request.GET.get("offset")) or 0) if after else 0
        problems = code_format.problems()  # a format signed before a rule for formats was added
        rows, count, stopped = ([], 0, None) if problems else misfit_page(
            event, code_format, after=after, size=POOL_PAGE_SIZE, deadline=monotonic() + MISFITS_SECONDS)
        ctx.update({
            "format_problems": list(problems.values()), "first_page": not after, "format": code_format.describe(),
            "misfits": rows, "first": offset + 1, "last": offset + len(rows), "counted": offset + count,
            # the count reached the end of the pool; else it says "at least"
            "total": offset + count if stopped is None else None,
            # the deadline came before the page was full
            "stopped": stopped is not None and len(rows) < POOL_PAGE_SIZE,
            "can_write": self.request.user.has_event_permission(
                event.organizer, event, "event.orders:write", request=self.request),
            "back": self.pool_url, "settings_url": self.settings_url(), "signed_format": code_format.sign(event),
        })
        ctx["delete_url"] = event_url(event, "misfits.delete") + "?" + urlencode({"format": ctx["signed_format"]})
        if len(rows) == POOL_PAGE_SIZE and (count > len(rows) or stopped is not None):
            ctx["next_url"] = misfits_url(event, code_format, rows[-1][0], offset + len(rows))
        elif stopped is not None and stopped > after:
            ctx["next_url"] = misfits_url(event, code_format, stopped, offset + count)
        return ctx


class DeleteMisfitsView(SignedFormatMixin, PoolWriteMixin, TemplateView):
    """
    Delete all unused secrets that do not fit the format, after one confirmation, in one transaction; then back to the
    settings with the format filled in again. Finding them has the deadline of the settings' own check.
    """
    template_name = "pretix_secrets_import/pool_delete_misfits.html"

    def get(self, request, *args, **kwargs):
        if self.code_format.problems():
            return self._back()
        _rows, count, stopped = misfit_page(request.event, self.code_format, size=0,
                                            deadline=monotonic() + CHECK_SECONDS)
        if stopped is not None:
            return self._too_slow()
        if not count:
            messages.info(request, _("All unused secrets of the pool fit."))
            return redirect(self._done_url())
        return self.render_to_response(self.get_context_data(
            count=count, format=self.code_format.describe(), back=misfits_url(request.event, self.code_format)))

    @transaction.atomic
    def post(self, request, *args, **kwargs):
        if self.code_format.problems():
            return self._back()
        try:
            deleted = delete_misfits(request.event, self.code_format, deadline=monotonic() + CHECK_SECONDS)
        except TooSlow:
            return self._too_slow()
        log_deleted(request, deleted, len(deleted))
        if deleted:
            messages.success(request, ngettext(
                "{count} secret that did not fit has been deleted.", "{count} secrets that did not fit have been "
                "deleted.", len(deleted),
            ).format(count=len(deleted)))
        else:  # sold, changed or deleted since the confirmation was shown
            messages.info(request, _("All unused secrets of the pool fit."))
        return redirect(self._done_url())

    def _done_url(self):
        return self.settings_url() or misfits_url(self.request.event, self.code_format)

    def _too_slow(self):
        messages.error(self.request, _(
            "Finding all unused secrets that do not fit the format \"{format}\" took longer than {seconds} seconds, "
            "so none were deleted. Please delete them page by page.",
        ).format(format=self.code_format.describe(), seconds=CHECK_SECONDS))
        return self._back()

    def _back(self):
        """To the page of misfits, which also says what is wrong with a format signed before a rule was added."""
        return redirect(misfits_url(self.request.event, self.code_format))
