"""
The whole loop, committed for real: tickets sold in the shop and through the API, paid, canceled, regenerated and
expired; then the feed, the webhooks that pretix delivered to a local receiver and the two gate lists must agree
with pretix' own order data.
"""
import csv
import io
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils.timezone import now
from django_scopes import scope, scopes_disabled

from pretix.api.models import WebHook
from pretix.base.models import Event, Order, OrderPosition
from pretix.base.services.orders import (
    OrderChangeManager, cancel_order, expire_orders,
)

from pretix_secrets_import import exporters
from pretix_secrets_import.gate import states as gate
from pretix_secrets_import.models import ImportedSecret
from tests.gate.test_states import place, post
from tests.helpers import add_secret, url
from tests.sales import test_generator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.heavy]
shop = test_generator.shop


@pytest.fixture
def receiver(settings):
    """A local HTTP server that records the JSON bodies posted to it."""
    settings.ALLOW_HTTP_TO_PRIVATE_NETWORKS = True  # pretix refuses webhooks to local addresses otherwise
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def expected_states(event):
    """Each pool secret's state as pretix' own order data says: the ticket it is on, or void when on none."""
    with scopes_disabled():
        tickets = {p.secret: p for p in OrderPosition.all.filter(order__event=event).select_related("order")}
        states = {}
        for secret in ImportedSecret.objects.filter(event=event):
            p = tickets.get(secret.secret)
            if p is None:
                states[secret.secret] = "void" if secret.used else "unsold"
            elif p.order.status in (Order.STATUS_CANCELED, Order.STATUS_EXPIRED) or p.canceled:
                states[secret.secret] = "void"
            else:
                states[secret.secret] = "valid" if p.order.status == Order.STATUS_PAID else "pending"
        return states


def gate_list(exporter_class, event):
    with scope(organizer=event.organizer):
        exporter = exporter_class(event=Event.objects.get(pk=event.pk), organizer=event.organizer)
        _name, _type, data = exporter.render({"_format": "default"})
    return {row[0] for row in list(csv.reader(io.StringIO(data.decode())))[1:]}


def report(feed, expected, admitted, refused, received):
    """What ``make gate-loop`` shows (pytest -s): per secret, pretix' order data beside what the gate gets."""
    hooks = {}
    for payload in received:
        hooks[payload["code"]] = hooks.get(payload["code"], 0) + 1
    print("\nsecret  pretix   feed     reason       order   webhooks  gate list")
    for entry in feed:
        listed = "admitted" if entry["secret"] in admitted else "refused" if entry["secret"] in refused else "-"
        print(f"{entry['secret']:<7} {expected[entry['secret']]:<8} {entry['state']:<8} {entry['reason'] or '-':<12} "
              f"{entry['order'] or '-':<7} {hooks.get(entry['order'], 0):<9} {listed}")


def test_sell_pay_cancel_regenerate_expire_and_the_gate_agrees(token_client, organizer, shop, committed, receiver):
    target, received = receiver
    with scopes_disabled():
        hook = WebHook.objects.create(organizer=organizer, target_url=target)
        hook.listeners.create(action_type=gate.CHANGED_ACTION)
    for i in range(8):
        add_secret(shop.event, f"GATE-{i}")
    event = shop.event

    with committed():
        _cart, result = test_generator.checkout(event, shop.ticket)  # the shop's checkout task
    assert result.successful(), result.result
    paid_in_api = place(token_client, shop, committed)
    to_pay = place(token_client, shop, committed, status="n")
    to_expire = place(token_client, shop, committed, status="n")
    to_regenerate = place(token_client, shop, committed)
    post(token_client, committed, event, to_pay, "mark_paid")
    with committed(), scopes_disabled():
        cancel_order(Order.objects.get(code=paid_in_api).pk)  # what the backend's "cancel order" runs
    post(token_client, committed, event, to_regenerate, "regenerate_secrets")
    with committed(), scope(organizer=organizer):
        order = Order.objects.get(code=to_pay)
        ocm = OrderChangeManager(order)  # the backend's order change form
        ocm.regenerate_secret(order.positions.first())
        ocm.commit()
    with scopes_disabled():
        Order.objects.filter(code=to_expire).update(expires=now() - timedelta(days=1))
    with committed():
        expire_orders(None)

    expected = expected_states(event)
    assert sorted(expected.values()) == sorted(
        ["valid", "valid", "valid", "void", "void", "void", "void", "unsold"])
    feed = token_client.get(url(event, suffix="gate_feed/")).data
    admitted, refused = (gate_list(exporters.AdmittedSecretsExporter, event),
                         gate_list(exporters.RefusedSecretsExporter, event))
    report(feed["results"], expected, admitted, refused, received)
    assert {entry["secret"]: entry["state"] for entry in feed["results"]} == expected
    assert admitted == {s for s, st in expected.items() if st == "valid"}
    assert refused == {s for s, st in expected.items() if st == "void"}

    # every order whose secrets changed got webhooks, and each one's cursor leads to the order's changes
    with scopes_disabled():
        codes = set(Order.objects.filter(event=event).values_list("code", flat=True))
    assert {payload["code"] for payload in received} == codes
    for payload in received:
        assert payload["action"] == gate.CHANGED_ACTION and payload["event"] == event.slug
        changed = token_client.get(url(event, suffix="gate_feed/"), {"cursor": payload["cursor"]}).data["results"]
        assert payload["code"] in {entry["order"] for entry in changed}
