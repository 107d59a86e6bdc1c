"""
Make pretix' backend cope with a generator that can refuse.

pretix 2026.8's "Invalidate secrets" option on the order's contact form renews the ticket secrets position by
position without a transaction and does not expect the generator to fail. When the pool runs dry halfway, that
would commit half of the order and answer with a server error. We run that form in a transaction and show the
refusal as an error message instead; for every other use of the form nothing changes.
"""
import functools
import hashlib
import inspect
import logging

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect

import pretix

from pretix_secrets_import.sales.generator import OrderError

logger = logging.getLogger(__name__)

# The pretix release and the code of OrderContactChange.post this patch was reviewed against;
# tests/sales/test_safeguards.py fails when the installed pretix differs, so that an upgrade gets a review instead of
# silently losing the patch.
REVIEWED_PRETIX = "2026.8"
REVIEWED_FINGERPRINT = "1e32110fb3db1c300cbb09a0dab576c88a2fc25c9f21e0a577f1fc7a950eaff0"


def fingerprint(view_post):
    """The SHA-256 of the source of ``view_post`` before any patch; None if pretix was installed without sources."""
    try:
        return hashlib.sha256(inspect.getsource(inspect.unwrap(view_post)).encode()).hexdigest()
    except OSError:
        return None


def unreviewed_changes(view_post):
    """What differs from the pretix this patch was reviewed against, as words for the log; empty if nothing does."""
    changes = []
    if not pretix.__version__.startswith(REVIEWED_PRETIX + "."):
        changes.append(f"this is pretix {pretix.__version__}")
    if fingerprint(view_post) != REVIEWED_FINGERPRINT:
        changes.append("the source of OrderContactChange.post is not the reviewed one")
    return changes


def install():
    from pretix.control.views.orders import OrderContactChange

    original = OrderContactChange.post
    if getattr(original, "secrets_import_safe", False):
        return

    # On an unreviewed pretix we still patch: the transaction and catching only our own OrderError cannot harm a view
    # that never raises it, whereas leaving the patch off would let a refusal commit half an order again.
    changes = unreviewed_changes(original)
    if changes:
        logger.warning(
            "pretix_secrets_import: the safeguard for 'Invalidate secrets' on the order contact form was written for "
            "pretix %s and needs a review (%s; see safeguards.py). It is installed anyway.",
            REVIEWED_PRETIX, "; ".join(changes),
        )

    @functools.wraps(original)
    def post(self, *args, **kwargs):
        try:
            with transaction.atomic():
                return original(self, *args, **kwargs)
        except OrderError as e:
            messages.error(self.request, str(e))
            return redirect(self.get_order_url())

    post.secrets_import_safe = True
    OrderContactChange.post = post
