"""
The pool pages: the list with its filters and what is still sellable, adding and deleting secrets, the secrets that
do not fit a code format.
"""
from time import monotonic

from django.contrib import messages
from django.core import signing
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _, ngettext
from django.views import View
from django.views.generic import FormView, TemplateView

from pretix.base.models import OrderPosition
from pretix.helpers import OF_SELF

from pretix_secrets_import import paging
from pretix_secrets_import.control.forms import AddSecretForm, PoolFilterForm
from pretix_secrets_import.control.views.base import (
    PoolMixin, PoolWriteMixin, id_param, stylesheet_url,
)
from pretix_secrets_import.links import event_url
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.pool.format_change import (
    TooSlow, misfits, misfits_url,
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
        """Keyset pages by ``order``: "id" or "secret", both unique within the event."""
        get = self.request.GET
        parse = id_param if order == "id" else (lambda value: (value or "")[:SECRET_MAX_LENGTH] or None)
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


class DeleteSecretsView(PoolWriteMixin, View):
    """Delete the selected secrets after a confirmation; used ones are on tickets and are kept."""

    @transaction.atomic
    def post(self, request, *args, **kwargs):
        # back to the list as it was: the pool page's search, filters and page (re-encoded, so only a query string)
        query = QueryDict(request.POST.get("query", "")).urlencode()
        back = f"{self.pool_url}?{query}" if query else self.pool_url
        ids = [pk for pk in map(id_param, request.POST.getlist("secret")) if pk is not None]
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
    The unused secrets that do not fit a code format (``format_change.check_change`` links here with the format the
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
        after = id_param(self.request.GET.get("after")) or 0
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
