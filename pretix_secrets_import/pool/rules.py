"""
The rules for a secret of a pool: its format, uniqueness within the input, and the product, variation and date it may
be restricted to. ``validation.clean_rows`` applies them together with the lookups in the pool and the tickets;
the API, the backend forms, the file import and the command all go through it.

Whitespace around a secret is removed on every way in (API, backend form, file import, command); whitespace inside it
is refused. A scanner never reads whitespace as part of a code, so removing it cannot turn one valid secret into
another, and it is what comes along with copy and paste, padded spreadsheet cells and CSV files written as "A-1, B".
DRF's and Django's text fields trim the same way by default, so API clients that send padded values keep working.
"""
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from pretix.base.models import Item, ItemVariation, SubEvent

SECRET_MAX_LENGTH = 255  # pretix' OrderPosition.secret column
DB_ID_MAX = 2 ** 63 - 1  # pretix uses BigAutoField; larger numbers would overflow database lookups
ALREADY_IMPORTED = _("This secret has already been imported for this organizer.")
REPEATED = _("This secret appears more than once in your input (first in {label}).")
ON_TICKET = _("This secret is already used by a ticket of this organizer.")
INVALID_PK = _('Invalid pk "{pk}" - object does not exist.')
RESTRICTIONS = ("item", "variation", "subevent")


WHITESPACE = re.compile(r"\s")  # the same characters as str.isspace(), checked in C: a file import checks millions


def trim_secrets(secrets) -> list:
    """
    The secrets as stored: without surrounding whitespace (the characters ``validate_secret`` refuses); anything that
    is not text is left to ``validate_secret``.
    """
    return [secret.strip() if isinstance(secret, str) else secret for secret in secrets]


def validate_secret(value):
    """The format rule for one secret; uniqueness is checked set-based in validation.clean_rows."""
    if not isinstance(value, str) or not value:
        raise ValidationError(_("The secret must not be empty."), code="blank")
    if len(value) > SECRET_MAX_LENGTH:
        raise ValidationError(
            _("The secret must not be longer than %(max)s characters."),
            code="max_length", params={"max": SECRET_MAX_LENGTH},
        )
    if WHITESPACE.search(value):
        raise ValidationError(_("The secret must not contain whitespace."), code="whitespace")
    if not value.isprintable():
        raise ValidationError(_("The secret must only contain printable characters."), code="unprintable")


def all_valid_and_distinct(secrets) -> bool:
    """
    Whether every one of ``secrets`` passes ``validate_secret`` and none repeats, checked for all at once in C (a file
    import checks millions); when not, the caller checks each secret to say which ones fail.
    """
    if not secrets or not all(type(s) is str for s in secrets):
        return False
    joined = "".join(secrets)
    return (
        min(map(len, secrets)) > 0 and max(map(len, secrets)) <= SECRET_MAX_LENGTH
        and joined.isprintable() and not WHITESPACE.search(joined) and len(set(secrets)) == len(secrets)
    )


def pk_of(value):
    """The ID of a model instance, or the value itself (an ID or ``None``)."""
    return getattr(value, "pk", value)


def check_secrets(secrets, errors, labels, fits=None) -> list:
    """
    Adds the format errors and repeats of ``secrets`` to ``errors``; returns the valid secrets, each once. ``fits``
    checks the event's code format (``codeformat.CodeFormat.checker``), ``None`` if it takes any secret.
    """
    if all_valid_and_distinct(secrets):
        if fits is None:
            return secrets
        problems = list(map(fits, secrets))
        if not any(problems):
            return secrets
        for index, problem in enumerate(problems):
            if problem is not None:
                errors[index].setdefault("secret", []).append(problem)
        return [secret for secret, problem in zip(secrets, problems) if problem is None]
    first = {}
    for index, secret in enumerate(secrets):
        try:
            validate_secret(secret)
        except ValidationError as e:
            errors[index].setdefault("secret", []).append(e.messages[0])
            continue
        problem = fits(secret) if fits is not None else None
        if problem is not None:
            errors[index].setdefault("secret", []).append(problem)
            continue
        if secret not in first:
            first[secret] = index
            continue
        label = labels[first[secret]] if labels is not None else _("entry {number}").format(number=first[secret] + 1)
        errors[index].setdefault("secret", []).append(REPEATED.format(label=label))
    return list(first)


def check_fit(secrets, errors, fits, exempt=()) -> list:
    """
    Adds the code format's errors (``fits``, as for ``check_secrets``) of those ``secrets`` that have no error yet
    and are not in ``exempt``; returns the secrets without error, each once (a repeat has an error already).
    """
    fitting = []
    for secret, secret_errors in zip(secrets, errors):
        if secret_errors:
            continue
        problem = None if secret in exempt else fits(secret)
        if problem is None:
            fitting.append(secret)
        else:
            secret_errors.setdefault("secret", []).append(problem)
    return fitting


class Restrictions:
    """The products, variations and dates that rows name, each read once, and the rule for one row's restriction."""

    def __init__(self, event, rows):
        self.event = event
        ids = {name: {pk_of(row[name]) for row in rows if row.get(name) is not None} for name in RESTRICTIONS}
        self.items = Item.objects.filter(event=event).in_bulk(ids["item"]) if ids["item"] else {}
        self.variations = ItemVariation.objects.filter(item__event=event).select_related("item").in_bulk(
            ids["variation"]) if ids["variation"] else {}
        self.subevents = SubEvent.objects.filter(event=event).in_bulk(ids["subevent"]) \
            if ids["subevent"] and event.has_subevents else {}

    def clean(self, row, errors) -> tuple:
        """The row's product, variation and date as instances; adds what is wrong to ``errors``."""
        def error(field, message):
            errors.setdefault(field, []).append(message)

        item_id, variation_id, subevent_id = (pk_of(row.get(name)) for name in RESTRICTIONS)
        item = None if item_id is None else self.items.get(item_id)
        variation = None if variation_id is None else self.variations.get(variation_id)
        subevent = None if subevent_id is None else self.subevents.get(subevent_id)
        for field, pk, found in (("item", item_id, item), ("variation", variation_id, variation)):
            if pk is not None and found is None:
                error(field, INVALID_PK.format(pk=pk))
        if variation is not None and item is None and "item" not in errors:
            item = variation.item
        elif variation is not None and item is not None and variation.item_id != item.pk:
            error("variation", _("The variation does not belong to the selected product."))
        if subevent_id is not None and not self.event.has_subevents:
            error("subevent", _("This event is not an event series, so secrets cannot be restricted to a date."))
        elif subevent_id is not None and subevent is None:
            error("subevent", INVALID_PK.format(pk=subevent_id))
        return item, variation, subevent
