"""The patch of pretix' order contact form: installed, still matching the pretix it was reviewed for, and working."""
import inspect
import logging

import pytest
from django_scopes import scopes_disabled

import pretix
from pretix.base.models import Order
from pretix.control.views.orders import OrderContactChange

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.sales import safeguards
from tests.helpers import add_secret


def test_patched_code_is_the_reviewed_one():
    assert safeguards.fingerprint(OrderContactChange.post) == safeguards.REVIEWED_FINGERPRINT, (
        "pretix changed OrderContactChange.post, which pretix_secrets_import/safeguards.py patches. Review "
        "safeguards.py against the new code (does 'Invalidate secrets' still renew the secrets through the generator "
        "without a transaction of its own, and does the generator's OrderError still reach the wrapper?), adapt it, "
        f"then set REVIEWED_FINGERPRINT to {safeguards.fingerprint(OrderContactChange.post)!r}."
    )


def test_installed_pretix_is_the_reviewed_release():
    assert pretix.__version__.startswith(safeguards.REVIEWED_PRETIX + "."), (
        f"pretix {pretix.__version__} is installed, but pretix_secrets_import/safeguards.py was reviewed for pretix "
        f"{safeguards.REVIEWED_PRETIX}. Review it against this release, then set REVIEWED_PRETIX."
    )


def test_patch_is_installed_once():
    post = OrderContactChange.post
    assert post.secrets_import_safe
    safeguards.install()
    assert OrderContactChange.post is post


def no_sources(obj):
    raise OSError("could not get source code")


@pytest.mark.parametrize("target, name, value, logged", [
    (pretix, "__version__", "2026.9.0", "this is pretix 2026.9.0"),
    (safeguards, "REVIEWED_FINGERPRINT", "0" * 64, "the source of OrderContactChange.post is not the reviewed one"),
    (inspect, "getsource", no_sources, "the source of OrderContactChange.post is not the reviewed one"),
], ids=["other release", "changed code", "no sources"])
def test_unreviewed_pretix_gets_the_patch_and_a_warning(monkeypatch, caplog, target, name, value, logged):
    monkeypatch.setattr(OrderContactChange, "post", inspect.unwrap(OrderContactChange.post))
    monkeypatch.setattr(target, name, value)
    with caplog.at_level(logging.WARNING, logger=safeguards.__name__):
        safeguards.install()
    assert OrderContactChange.post.secrets_import_safe
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "was written for pretix 2026.8 and needs a review (" + logged in record.getMessage()


# --- the contact form in pretix' backend ----------------------------------------------------------------------------


@pytest.fixture
def ticket(event):
    event.live = True
    event.save()
    event.settings.ticket_secret_generator = "imported_secrets"
    ticket = event.items.create(name="Ticket", default_price=0, admission=True)
    event.quotas.create(name="All", size=None).items.add(ticket)
    return ticket


def order_two_tickets(token_client, event, ticket):
    resp = token_client.post(f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/orders/", {
        "email": "buyer@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
        "positions": [{"item": ticket.pk, "price": "0.00"}] * 2,
    }, format="json")
    assert resp.status_code == 201, resp.content
    return resp.data["code"]


def invalidate_in_backend(client, event, code, email="buyer@example.org"):
    return client.post(f"/control/event/{event.organizer.slug}/{event.slug}/orders/{code}/contact", {
        "email": email, "regenerate_secrets": "on",
    })


def pool_state(event):
    with scopes_disabled():
        return {s.secret: s.used for s in ImportedSecret.objects.filter(event=event)}


def order_state(event, code):
    """Everything the contact form can change, and the log it writes."""
    with scopes_disabled():
        order = Order.objects.get(event=event, code=code)
        positions = sorted(order.all_positions.values_list("secret", "web_secret"))
        return order.email, order.secret, positions, list(order.all_logentries().values_list("action_type", flat=True))


@pytest.mark.django_db
def test_invalidate_secrets_draws_new_secrets(backend_client, token_client, event, ticket):
    for s in ("A", "B", "NEW-A", "NEW-B"):
        add_secret(event, s)
    code = order_two_tickets(token_client, event, ticket)
    resp = invalidate_in_backend(backend_client, event, code)
    assert resp.status_code == 302
    assert [secret for secret, _ in order_state(event, code)[2]] == ["NEW-A", "NEW-B"]


@pytest.mark.django_db
def test_invalidate_secrets_with_too_small_pool_changes_nothing(backend_client, token_client, event, ticket):
    for s in ("A", "B", "SPARE"):
        add_secret(event, s)
    code = order_two_tickets(token_client, event, ticket)
    before = order_state(event, code)
    resp = invalidate_in_backend(backend_client, event, code, email="new@example.org")
    assert resp.status_code == 302
    assert order_state(event, code) == before
    assert [secret for secret, _ in before[2]] == ["A", "B"]
    assert pool_state(event) == {"A": True, "B": True, "SPARE": False}
    page = backend_client.get(resp["Location"])
    assert "no ticket code left" in page.content.decode()
