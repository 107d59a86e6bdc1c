"""
The pool's rules applied to rows on every way in: the API, the backend forms, the file import and the command all
call ``clean_rows``. The rules for one secret are in ``rules``; this adds the lookups in the pool and the tickets.
"""
import functools

from pretix.base.models import Event

from pretix_secrets_import.pool import rules, store as pool
from pretix_secrets_import.pool.codeformat import CodeFormat


def _unless_kept(fits, kept, secret):
    return None if secret == kept else fits(secret)


def clean_rows(event: Event, rows, instance=None, labels=None, check_pool=True, code_format=None):
    """
    Validate rows to be stored in ``event``'s pool, set-based: a fixed number of queries for any number of rows.
    This is the one place of the pool's rules; the API, the backend forms and the file import all call it.

    A row is a dict with ``secret`` and optionally ``used``, ``item``, ``variation``, ``subevent`` (an ID, an
    instance or ``None``). ``instance`` is the secret being changed, if any; ``labels`` names each row in messages
    (default: "entry 1", ...). ``check_pool=False`` leaves the check against the pool to
    ``pool.insert_rows(..., skip_existing=True)``, which a file import does: the unique index answers it.
    ``code_format`` is the event's (``CodeFormat.of_event``) unless given.

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
    distinct = rules.check_secrets(secrets, errors, labels, fits)
    in_pool = pool.in_pool(event.organizer_id, distinct, but=instance) if check_pool else set()
    on_tickets = pool.on_tickets(event.organizer_id, distinct)
    restricted = any(row.get(name) is not None for row in rows for name in rules.RESTRICTIONS)
    restrictions = rules.Restrictions(event, rows) if restricted else None
    cleaned = []
    for secret, row, row_errors in zip(secrets, rows, errors):
        if in_pool and secret in in_pool:
            row_errors.setdefault("secret", []).append(rules.ALREADY_IMPORTED)
        elif on_tickets and secret in on_tickets:
            row_errors.setdefault("secret", []).append(rules.ON_TICKET)
        item, variation, subevent = restrictions.clean(row, row_errors) if restrictions else (None, None, None)
        cleaned.append(None if row_errors else {
            "secret": secret, "used": bool(row.get("used", False)), "item": item, "variation": variation,
            "subevent": subevent,
        })
    return cleaned, errors
