"""
Make pretix' backend cope with a generator that can refuse.

pretix 2026.8's "Invalidate secrets" option on the order's contact form renews the ticket secrets position by
position without a transaction and does not expect the generator to fail. When the pool runs dry halfway, that
would commit half of the order and answer with a server error. We run that form in a transaction and show the
refusal as an error message instead; for every other use of the form nothing changes.
"""
import functools

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect

from .generator import OrderError


def install():
    from pretix.control.views.orders import OrderContactChange

    original = OrderContactChange.post
    if getattr(original, "secrets_import_safe", False):
        return

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
