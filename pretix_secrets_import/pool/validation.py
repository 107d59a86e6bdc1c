"""
The pool's rules applied to rows on every way in: the API, the backend forms, the file import and the command all
call ``clean_rows``. The rules for one secret are in ``rules``; this adds the lookups in the pool and the tickets.
"""
import functools
from operator import methodcaller

from pretix.base.models import Event

from pretix_secrets_import.pool import rules, store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat


def _unless_kept(fits, kept, secret):
    return None if secret == kept else fits(secret)


def clean_rows(event: Event, rows, instance=None, labels=None, check_pool=True, code_format=None, pass_over=False,
               check_tickets=True, restrictions=None):
    """
    Validate rows to be stored in ``event``'s pool, set-based: a fixed number of queries for any number of rows.
    This is the one place of the pool's rules; the API, the backend forms and the file import all call it.

    A row is a dict with ``secret`` and optionally ``used``, ``item``, ``variation``, ``subevent`` (an ID, an
    instance or ``None``). ``instance`` is the secret being changed, if any; ``labels`` names each row in messages
    (default: "entry 1", ...). ``check_pool=False`` leaves the check against the pool to
    ``pool.insert_rows(..., skip_existing=True)``, which a file import does: the unique index answers it.
    ``code_format`` is the event's (``CodeFormat.of_event``) unless given. ``check_tickets=False`` leaves the check
    against the tickets to the caller (the file import's ``COPY``, ``pool.on_tickets_after``); ``restrictions`` is a
    ``rules.Restrictions`` that holds every product, variation and date the rows name. Without both, and with
    ``check_pool=False`` and without ``pass_over``, this reads nothing from the database.

    With ``pass_over``, a row whose secret this event's pool holds with the same restriction (``pool.Group``) is not
    refused: its cleaned dict has ``"known"``, the pool secret's ID, for the caller to pass it over. Such a secret is
    checked neither against the code format (it was when it was stored, and a new format must fit only unused
    secrets) nor against the tickets (a sold pool secret is on one).

    Returns ``(cleaned, errors)``: per row a dict with instances in place of IDs (``None`` if invalid), and a
    dict of field names to lists of messages (empty if valid). Cleaned secrets are trimmed (``rules.trim_secrets``).
    """
    rows = list(rows)
    errors = [{} for _ in rows]
    secrets = rules.trim_secrets(row.get("secret") for row in rows)
    code_format = code_format or CodeFormat.of_event(event)
    fits = None if code_format.is_free else code_format.checker()
    if fits is not None and instance is not None:  # a secret the pool holds already may keep its value
        fits = functools.partial(_unless_kept, fits, instance.secret)
    distinct = rules.check_secrets(secrets, errors, labels, None if pass_over else fits)
    in_pool, on_tickets, held = _lookups(event, distinct, errors, secrets, instance, check_pool, fits, pass_over,
                                         check_tickets)
    # in C: a file import cleans millions of rows, nearly always without any restriction or with the same one
    restricted = any(not set(map(methodcaller("get", name), rows)) <= {None} for name in rules.RESTRICTIONS)
    restrictions = (restrictions or rules.Restrictions(event, rows)) if restricted else None
    if not (restrictions or held or in_pool or on_tickets or any(errors)):
        # a file's usual chunk, all valid and none restricted: what the loop below makes, in a third of its time
        return [{"secret": secret, "used": bool(row.get("used", False)), "item": None, "variation": None,
                 "subevent": None} for secret, row in zip(secrets, rows)], errors
    cleaned = []
    for secret, row, row_errors in zip(secrets, rows, errors):
        restriction_errors = {} if restrictions else ()
        item, variation, subevent = restrictions.clean(row, restriction_errors) if restrictions else (None, None, None)
        clean = {"secret": secret, "used": bool(row.get("used", False)), "item": item, "variation": variation,
                 "subevent": subevent}
        known = held.get(secret) if held else None
        if known and not row_errors and not restriction_errors and known[2:] == (
                rules.pk_of(item), rules.pk_of(variation), rules.pk_of(subevent)):
            clean["known"] = known[0]
        elif in_pool and secret in in_pool:
            row_errors.setdefault("secret", []).append(rules.ALREADY_IMPORTED)
        elif on_tickets and secret in on_tickets:
            row_errors.setdefault("secret", []).append(rules.ON_TICKET)
        if restriction_errors:
            row_errors.update(restriction_errors)  # after the secret's, in the order of the fields
        cleaned.append(None if row_errors else clean)
    return cleaned, errors


def all_clean(event: Event, secrets, restriction: dict, code_format=None, restrictions=None):
    """
    Whether ``clean_rows(..., check_pool=False, check_tickets=False)`` takes the rows of the (trimmed) ``secrets``
    with the same ``restriction`` (``item``, ``variation``, ``subevent``) without an error: if so the cleaned
    restriction, else ``None``. For the file import's ``COPY`` of a file without restriction columns, which checks a
    million secrets without a dict for each; ``restrictions`` as for ``clean_rows``.
    """
    if not rules.all_valid_and_distinct(secrets):
        return None
    code_format = code_format or CodeFormat.of_event(event)
    if not code_format.is_free and any(map(code_format.checker(), secrets)):
        return None
    if all(value is None for value in restriction.values()):
        return {"used": False, "item": None, "variation": None, "subevent": None}
    errors = {}
    item, variation, subevent = (restrictions or rules.Restrictions(event, [restriction])).clean(restriction, errors)
    return None if errors else {"used": False, "item": item, "variation": variation, "subevent": subevent}


def _lookups(event, distinct, errors, secrets, instance, check_pool, fits, pass_over, check_tickets):
    """
    Which of the ``distinct`` valid secrets the pool holds (if ``check_pool``) and tickets carry, and, with
    ``pass_over``, those that this event's pool holds (as ``pool.holders`` gives them); then the code format is
    checked here, passing over the latter.
    """
    if not pass_over:
        in_pool = pool.in_pool(event.organizer_id, distinct, but=instance) if check_pool else set()
        return in_pool, pool.on_tickets(event.organizer_id, distinct) if check_tickets else set(), {}
    holders = pool.holders(event.organizer_id, distinct)
    held = {secret: holder for secret, holder in holders.items() if holder[1] == event.pk}
    if fits is not None:
        distinct = rules.check_fit(secrets, errors, fits, exempt=held)
    in_pool = {secret for secret in distinct if secret in holders and (
        instance is None or holders[secret][0] != instance.pk)} if check_pool else set()
    # the pool's own check comes first: a secret it holds is refused as imported already, even if sold
    on_tickets = pool.on_tickets(event.organizer_id, [secret for secret in distinct if secret not in holders])
    return in_pool, on_tickets, held
