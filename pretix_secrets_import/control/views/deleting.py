"""
Deleting secrets from the backend: the selected ones, all that match the list's search and filters, or all unused
ones, each after a confirmation. Used secrets are on tickets and never deleted. Every deletion, however many secrets it
takes, is one log entry.
"""
from functools import partial
from typing import Callable, NamedTuple

from django.contrib import messages
from django.core import signing
from django.db import transaction
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _, ngettext
from django.views import View
from django.views.generic import TemplateView

from pretix.helpers import OF_SELF

from pretix_secrets_import.control.forms import PoolFilterForm
from pretix_secrets_import.control.views.base import PoolWriteMixin, id_param
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat
from pretix_secrets_import.pool.format_change import misfits_url

LOGGED_CODES = 1000  # a deletion's log entry lists this many of the secrets it deleted, so that it stays small


def delete_unused(request, qs) -> int:
    """Delete the unused secrets of ``qs`` and log that once; how many it deleted."""
    doomed = qs.filter(used=False)
    # Those named in the log are locked first, so that no sale takes one of them before the DELETE. The DELETE waits
    # for rows that a sale is handing out right now and skips the ones that became used: a ticket's is never deleted.
    codes = list(doomed.select_for_update(of=OF_SELF).order_by("pk").values_list("secret", flat=True)[:LOGGED_CODES])
    count, _details = doomed.delete()
    log_deleted(request, codes, count)
    return count


def log_deleted(request, codes, count):
    """
    The one log entry of a deletion: the count and the first ``LOGGED_CODES`` secrets, under "codes" because
    ``log_action`` masks every key with "secret" in its name (as it should for any other secret).
    """
    if count:
        request.event.log_action("pretix_secrets_import.secrets.deleted", user=request.user,
                                 data={"count": count, "codes": list(codes[:LOGGED_CODES])})


class _Chosen(NamedTuple):
    """The secrets a deletion chose: ``counts()`` gives how many of them are unused and how many used."""
    qs: object
    counts: Callable
    ids: tuple = ()
    filtered: bool = False


def _counts_of(qs):
    return qs.filter(used=False).count(), qs.filter(used=True).count()


def _counted(event, filters):
    """The unused and the used secrets that the arguments ``filters`` of ``pool.count`` choose, from its counters."""
    return tuple(0 if filters["used"] not in (None, used) else pool.count(event, **{**filters, "used": used})
                 for used in (False, True))


class DeleteSecretsView(PoolWriteMixin, View):
    """
    Delete the selected secrets, or with ``__ALL`` (pretix' name for "all that match, on every page") the ones that
    match the list's search and filters, after a confirmation. Used ones are on tickets and are kept. Deleting leads
    to the whole pool with the result, cancelling back to the list as it was.
    """

    @transaction.atomic
    def post(self, request, *args, **kwargs):
        # the list as it was: the pool page's search, filters and page (re-encoded, so only a query string), or the
        # page of secrets that do not fit a code format (``format``, signed) they were selected on
        query = QueryDict(request.POST.get("query", "")).urlencode()
        code_format = self._misfits_format()
        if code_format:
            back = done = misfits_url(request.event, code_format)
        else:
            back, done = (f"{self.pool_url}?{query}" if query else self.pool_url), self.pool_url
        every = "__ALL" in request.POST
        chosen = self._matching(query) if every else self._selected()
        if chosen is None:
            messages.error(request, _("The filters of the list are not valid any more. Please filter it again."))
            return redirect(self.pool_url)
        if "confirm" in request.POST:
            deleted = delete_unused(request, chosen.qs)
        else:
            count, kept = chosen.counts()
            if count:
                return render(request, "pretix_secrets_import/pool_delete.html", {
                    "ids": chosen.ids, "all": every, "filtered": chosen.filtered, "count": count, "kept": kept,
                    "query": query, "back": back, "format": request.POST["format"] if code_format else "",
                })
            deleted = 0
        self._report(deleted, chosen.counts()[1])
        return redirect(done if deleted else back)

    def _selected(self):
        ids = tuple(pk for pk in map(id_param, self.request.POST.getlist("secret")) if pk is not None)
        qs = ImportedSecret.of_event(self.request.event).filter(pk__in=ids)
        return _Chosen(qs, partial(_counts_of, qs), ids=ids)

    def _matching(self, query):
        """The secrets that match the list's search and filters; ``None`` if these are not valid (any more)."""
        event = self.request.event
        form = PoolFilterForm(QueryDict(query), event=event)
        if not form.is_valid():
            return None
        qs = form.filter(ImportedSecret.of_event(event))
        filters = form.count_filters()
        # a search is counted through the (event, secret) index, everything else from the pool's counters
        counts = partial(_counts_of, qs) if filters is None else partial(_counted, event, filters)
        return _Chosen(qs, counts, filtered=any(form.cleaned_data.values()))

    def _misfits_format(self):
        try:
            return CodeFormat.unsign(self.request.event, self.request.POST["format"])
        except (KeyError, signing.BadSignature):
            return None

    def _report(self, deleted, kept):
        if deleted:
            messages.success(self.request, ngettext(
                "{count} secret has been deleted.", "{count} secrets have been deleted.", deleted,
            ).format(count=deleted))
        if kept:
            messages.warning(self.request, ngettext(
                "{count} selected secret is already on a ticket and was kept.",
                "{count} selected secrets are already on tickets and were kept.", kept,
            ).format(count=kept))
        if not deleted and not kept:
            messages.error(self.request, _("You did not select any secrets."))


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
        count = delete_unused(request, ImportedSecret.of_event(request.event))
        if not count:  # sold or deleted since the confirmation was shown
            return self._nothing_to_delete()
        messages.success(request, ngettext(
            "{count} unused secret has been deleted.", "{count} unused secrets have been deleted.", count,
        ).format(count=count))
        return redirect(self.pool_url)
