"""
Changing an event's code format: refused while unused secrets of the pool do not fit the new one. The check reads the
whole pool within a deadline, and the secrets that do not fit are listed on a page (``misfits``) that a signed link
leads to, where they can be deleted; the same signed format fills the settings in again afterwards.
"""
from time import monotonic

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _, ngettext

from pretix.base.models import LogEntry
from pretix.helpers import OF_SELF

from pretix_secrets_import import paging
from pretix_secrets_import.links import event_url
from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import store as pool
from pretix_secrets_import.pool.codeformat import (
    FORMAT, LENGTH_MAX, LENGTH_MIN, PATTERN, REGEX, CodeFormat,
)
from pretix_secrets_import.tickets import barcodes

MISFITS_SHOWN = 5
CHECK_SECONDS = 20  # for checking the pool's unused secrets against a new format, within a web request


class TooSlow(Exception):
    """Checking the pool against a format passed its deadline; ``after``: the ID of the last secret checked."""

    def __init__(self, after: int):
        super().__init__(after)
        self.after = after


def misfits(event, code_format: CodeFormat, after: int = 0, deadline: float = None):
    """
    Yield ``(id, secret, message)`` of the event's unused secrets with IDs above ``after`` that do not fit
    ``code_format``, by ID. Raises ``TooSlow`` once ``monotonic()`` passes ``deadline``.
    """
    if code_format.is_free:
        return
    check = code_format.checker()
    rows = (paging.in_pool_order(event).filter(used=False, pk__gt=after)
            .values_list("pk", "secret").iterator(chunk_size=5000))
    try:
        for pk, secret in rows:
            message = check(secret)
            if message is not None:
                yield pk, secret, message
            if deadline is not None and monotonic() > deadline:  # after a secret, so that each call gets on
                raise TooSlow(pk)
    finally:
        # PostgreSQL's server-side cursor is closed now, not when it is collected: by then, the rollback of a
        # transaction that TooSlow ends may have dropped it, and closing it would fail
        rows.close()


def misfit_page(event, code_format: CodeFormat, after: int = 0, size: int = 50, deadline: float = None):
    """
    The first ``size`` misfits (as ``misfits`` yields them) with IDs above ``after``, and how many there are from there
    on: ``(rows, count, stopped)``. ``stopped`` is ``None`` once the count reached the end of the pool, else the ID of
    the last secret checked when ``deadline`` passed: ``count`` then counts the misfits up to it.
    """
    rows, count = [], 0
    try:
        for misfit in misfits(event, code_format, after=after, deadline=deadline):
            count += 1
            if len(rows) < size:
                rows.append(misfit)
    except TooSlow as e:
        return rows, count, e.after
    return rows, count, None


@transaction.atomic
def delete_misfits(event, code_format: CodeFormat, deadline: float = None) -> list:
    """
    Delete the event's unused secrets that do not fit ``code_format`` in one transaction and return them (the secrets,
    by ID). Finding them raises ``TooSlow`` once ``deadline`` passes, before anything is deleted. Each one found is
    locked and checked again first: one that a sale took or that was changed to fit meanwhile stays.
    """
    found = [pk for pk, _secret, _message in misfits(event, code_format, deadline=deadline)]
    check = code_format.checker()
    deleted = []
    for start in range(0, len(found), 1000):
        rows = (ImportedSecret.of_event(event).filter(pk__in=found[start:start + 1000], used=False)
                .select_for_update(of=OF_SELF).order_by("pk").values_list("pk", "secret"))
        gone = [(pk, secret) for pk, secret in rows if check(secret) is not None]
        ImportedSecret.of_event(event).filter(pk__in=[pk for pk, _secret in gone]).delete()
        deleted += [secret for _pk, secret in gone]
    return deleted


def _pool_version(event):
    """
    What changes when secrets are added to the pool, removed or changed, but not when sales use them: the count, the
    newest ID, and the newest log entry of such a change (every way to change a secret logs it).
    """
    last = paging.in_pool_order(event).reverse().values_list("pk", flat=True).first()
    logged = (LogEntry.objects.filter(event_id=event.pk, action_type__startswith="pretix_secrets_import.secret")
              .order_by("-pk").values_list("pk", flat=True).first())
    return pool.count(event), last, logged


def misfits_url(event, code_format: CodeFormat, after: int = 0, offset: int = 0) -> str:
    """The page of misfits after the ID ``after``; ``offset``: how many misfits the pages before it showed."""
    query = {"format": code_format.sign(event), **({"after": after, "offset": offset} if after else {})}
    return event_url(event, "misfits", absolute=True) + "?" + urlencode(query)


def settings_url(event, code_format: CodeFormat) -> str:
    """The settings page with ``code_format`` filled in again (``wanted_settings``), for after its misfits are gone."""
    return event_url(event, "settings") + "?" + urlencode({"format": code_format.sign(event)})


def wanted_settings(event, signed: str) -> dict:
    """The settings of a format that ``settings_url`` signed, to fill in; empty if ``signed`` is not such a format."""
    try:
        code_format = CodeFormat.unsign(event, signed or "")
    except signing.BadSignature:
        return {}
    return {FORMAT: code_format.kind, LENGTH_MIN: code_format.length_min, LENGTH_MAX: code_format.length_max,
            barcodes.SETTING: code_format.symbology,
            # a stored expression stays in its field while another format is chosen, as the form keeps it
            **({REGEX: code_format.pattern} if code_format.kind == PATTERN else {})}


def check_change(event, values, html=False):
    """
    Raise a ValidationError if the code format in the settings ``values`` (all of the event's settings, the changed
    ones merged in) differs from the event's current one and is wrong in itself, or unused secrets of the pool do
    not fit it: the message counts them and links to them (``html``: as a link, else as the address). Also if
    checking takes longer than ``CHECK_SECONDS``, or the pool changed meanwhile: then the format stays as it is too.
    """
    new, old = CodeFormat.of(values), CodeFormat.of_event(event)
    if new == old:  # saving other settings neither checks the format again nor the pool
        return
    errors = new.problems()
    if errors:
        raise ValidationError({key: [message] for key, message in errors.items()})
    if new.is_free:
        return
    field = barcodes.SETTING if new.symbology != old.symbology else FORMAT
    count, examples = 0, []
    before = _pool_version(event)
    try:
        for _pk, secret, _message in misfits(event, new, deadline=monotonic() + CHECK_SECONDS):
            count += 1
            if len(examples) < MISFITS_SHOWN:
                examples.append(secret)
    except TooSlow:
        raise ValidationError({field: [_(
            "Checking the unused secrets of the pool against the format \"{format}\" took longer than {seconds} "
            "seconds, so the settings were not changed.").format(format=new.describe(), seconds=CHECK_SECONDS)]})
    if not count and _pool_version(event) != before:
        # secrets that a file import or an API client committed while the pool was read may not have been seen
        raise ValidationError({field: [_("Secrets were added to the pool or removed while it was checked against "
                                         "the new format. Please save again.")]})
    if not count:
        return
    message = ngettext(
        "{count} unused secret in the pool does not fit the format \"{format}\" ({examples}). Delete it before you "
        "change the format.",
        "{count} unused secrets in the pool do not fit the format \"{format}\" ({examples}). Delete them before you "
        "change the format.",
        count,
    ).format(count=count, format=new.describe(),
             examples=", ".join(examples) + (", …" if count > len(examples) else ""))
    url = misfits_url(event, new)
    if html:
        message = format_html('{} <a href="{}">{}</a>', message, url, _("Show them"))
    else:
        message = "{} {}".format(message, _("They are listed at {url}").format(url=url))
    raise ValidationError({field: [message]})
