"""The gate state of every pool secret, through pretix' own order paths (API, order changes, deletion)."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils.timezone import now
from django_scopes import scope, scopes_disabled

from pretix.base.models import LogEntry, Order
from pretix.base.services.cancelevent import cancel_event
from pretix.base.services.orders import OrderChangeManager

from pretix_secrets_import.gate import states as gate
from pretix_secrets_import.models import GateState
from tests.helpers import add_secret, url
from tests.sales import test_generator
from tests.sales.test_generator import api_order, orders_url

pytestmark = pytest.mark.django_db
shop, series_shop = test_generator.shop, test_generator.series_shop


def states(event):
    with scopes_disabled():
        return {g.secret.secret: (g.state, g.reason, g.order_code) for g in
                GateState.objects.filter(event=event).select_related("secret")}


def order_of(event, code):
    with scopes_disabled():
        return Order.objects.get(event=event, code=code)


def place(client, shop, committed, *items, **extra):
    """An order through pretix' order API; ``status="n"`` makes it await payment (a priced ticket)."""
    price = {"price": "10.00"} if extra.get("status") == "n" else {}
    if price:
        extra.setdefault("payment_provider", "manual")
    with committed():
        resp = api_order(client, shop.event, *[{"item": item.pk, **price} for item in items or [shop.ticket]],
                         **extra)
    assert resp.status_code == 201, resp.content
    return resp.data["code"]


def post(client, committed, event, code, action, **data):
    with committed():
        resp = client.post(orders_url(event, f"{code}/{action}/"), data, format="json")
    assert resp.status_code in (200, 204), resp.content
    return resp


def subscribe(organizer, target="https://gate.example.com/hook", **kwargs):
    from pretix.api.models import WebHook
    with scopes_disabled():
        hook = WebHook.objects.create(organizer=organizer, target_url=target, **kwargs)
        hook.listeners.create(action_type=gate.CHANGED_ACTION)
    return hook


def test_a_paid_order_makes_its_secret_valid(token_client, shop, committed):
    add_secret(shop.event, "GATE-1")
    add_secret(shop.event, "GATE-2")
    code = place(token_client, shop, committed)
    assert states(shop.event) == {"GATE-1": ("valid", "paid", code)}
    assert not LogEntry.objects.filter(action_type=gate.CHANGED_ACTION).exists()  # no webhook listens
    hook = subscribe(shop.event.organizer, all_events=False)
    assert place(token_client, shop, committed) and not LogEntry.objects.filter(
        action_type=gate.CHANGED_ACTION).exists()  # a webhook for other events only
    hook.limit_events.add(shop.event)
    add_secret(shop.event, "GATE-3")
    code = place(token_client, shop, committed)
    [log] = LogEntry.objects.filter(action_type=gate.CHANGED_ACTION)
    assert log.parsed_data["code"] == code and log.parsed_data["changes"] == 1


def test_pending_paid_unpaid_canceled_reactivated(token_client, shop, committed):
    add_secret(shop.event, "GATE-1")
    code = place(token_client, shop, committed, status="n")
    assert states(shop.event) == {"GATE-1": ("pending", "sold", code)}
    post(token_client, committed, shop.event, code, "mark_paid")
    assert states(shop.event) == {"GATE-1": ("valid", "paid", code)}
    post(token_client, committed, shop.event, code, "mark_pending")
    assert states(shop.event) == {"GATE-1": ("pending", "unpaid", code)}
    post(token_client, committed, shop.event, code, "mark_canceled")
    assert states(shop.event) == {"GATE-1": ("void", "canceled", code)}
    post(token_client, committed, shop.event, code, "reactivate")  # pretix finds the payment: paid again
    assert states(shop.event) == {"GATE-1": ("valid", "reactivated", code)}


def test_expired_then_paid(token_client, shop, committed):
    add_secret(shop.event, "GATE-1")
    code = place(token_client, shop, committed, status="n")
    post(token_client, committed, shop.event, code, "mark_expired")
    assert states(shop.event) == {"GATE-1": ("void", "expired", code)}
    post(token_client, committed, shop.event, code, "mark_paid")
    assert states(shop.event) == {"GATE-1": ("valid", "paid", code)}


def test_approval_and_denial(token_client, shop, committed):
    shop.ticket.require_approval = True
    shop.ticket.save()
    add_secret(shop.event, "A")
    add_secret(shop.event, "B")
    first = place(token_client, shop, committed, status="n", require_approval=True)
    second = place(token_client, shop, committed, status="n", require_approval=True)
    assert states(shop.event) == {"A": ("pending", "sold", first), "B": ("pending", "sold", second)}
    post(token_client, committed, shop.event, first, "approve")
    post(token_client, committed, shop.event, second, "deny")
    assert states(shop.event)["B"] == ("void", "denied", second)
    assert states(shop.event)["A"][0] in ("pending", "valid")  # a free order is paid on approval


def test_regenerated_secret_is_void_as_replaced(token_client, shop, committed):
    add_secret(shop.event, "OLD")
    add_secret(shop.event, "NEW")
    code = place(token_client, shop, committed)
    post(token_client, committed, shop.event, code, "regenerate_secrets")
    assert states(shop.event) == {"OLD": ("void", "replaced", code), "NEW": ("valid", "paid", code)}


def test_canceled_position_and_changed_product(token_client, shop, committed):
    add_secret(shop.event, "ONE")
    add_secret(shop.event, "TWO")
    code = place(token_client, shop, committed, shop.ticket, shop.ticket)
    with committed(), scope(organizer=shop.event.organizer):
        order = order_of(shop.event, code)
        ocm = OrderChangeManager(order)
        ocm.cancel(order.positions.last())
        ocm.commit()
    assert states(shop.event) == {"ONE": ("valid", "paid", code), "TWO": ("void", "canceled", code)}


def test_split_moves_the_ticket_to_a_new_order(token_client, shop, committed):
    for secret in ("A", "B", "SPLIT"):
        add_secret(shop.event, secret)
    code = place(token_client, shop, committed, shop.ticket, shop.ticket)
    with committed(), scope(organizer=shop.event.organizer):
        order = order_of(shop.event, code)
        ocm = OrderChangeManager(order)
        ocm.split(order.positions.last())
        ocm.commit()
    with scopes_disabled():
        new_code = Order.objects.exclude(code=code).get(event=shop.event).code
    # pretix gives the moved ticket a new secret: the one it had is void
    assert states(shop.event) == {"A": ("valid", "paid", code), "B": ("void", "replaced", code),
                                  "SPLIT": ("valid", "paid", new_code)}


def test_deleted_test_order_voids_its_secret(token_client, shop, committed):
    add_secret(shop.event, "ONCE")
    code = place(token_client, shop, committed, testmode=True)
    with committed():
        assert token_client.delete(orders_url(shop.event, f"{code}/")).status_code == 204
    assert states(shop.event) == {"ONCE": ("void", "deleted", code)}


def test_canceling_an_event_date_voids_its_tickets(token_client, series_shop, committed):
    event = series_shop.event
    add_secret(event, "DAY1")
    add_secret(event, "DAY2")
    with committed():
        day1 = api_order(token_client, event, {"item": series_shop.ticket.pk, "subevent": series_shop.day1.pk}).data
        day2 = api_order(token_client, event, {"item": series_shop.ticket.pk, "subevent": series_shop.day2.pk}).data
    with committed():
        cancel_event.apply(kwargs=dict(
            event=event.pk, subevent=series_shop.day1.pk, auto_refund=False, keep_fee_fixed="0.00",
            keep_fee_per_ticket="0.00", keep_fee_percentage="0.00", keep_fees=[], manual_refund=False,
            send=False, send_subject={}, send_message={}, user=None,
        ))
    assert states(event) == {"DAY1": ("void", "canceled", day1["code"]), "DAY2": ("valid", "paid", day2["code"])}


def test_secret_marked_used_through_the_api_is_reserved(token_client, shop, committed):
    resp = token_client.post(url(shop.event), {"secret": "ELSEWHERE", "used": True}, format="json")
    assert resp.status_code == 201
    token_client.post(url(shop.event, suffix="bulk_create/"), [{"secret": "FREE"}, {"secret": "BOX", "used": True}],
                      format="json")
    assert states(shop.event) == {"ELSEWHERE": ("reserved", "marked_used", None),
                                  "BOX": ("reserved", "marked_used", None)}


def test_a_rolled_back_change_writes_nothing(shop, committed):
    add_secret(shop.event, "KEPT")
    with committed():
        gate.schedule_order(shop.event.pk, 999999)  # no such order: nothing to derive
    assert states(shop.event) == {}


def test_orders_of_events_without_a_pool_are_not_read(event2, committed):
    with scopes_disabled():
        order = Order.objects.create(event=event2, total=0, status=Order.STATUS_PAID, datetime=now(),
                                     expires=now() + timedelta(days=1),
                                     sales_channel=event2.organizer.sales_channels.get(identifier="web"))
    with committed():
        order.log_action("pretix.event.order.comment", data={"new_comment": "hi"})
    assert not GateState.objects.exists()


# Committed for real: a cursor read inside the transaction that wrote it can be ahead of the horizon while another
# connection's transaction is running (as on a parallel test worker), which a gate never sees.
@pytest.mark.django_db(transaction=True)
def test_one_webhook_per_order_change_with_the_cursor(token_client, organizer, shop, committed, monkeypatch):
    from pretix.api import webhooks

    sent = []

    class Answer:
        status_code = 200
        text = ""

    monkeypatch.setattr(webhooks.requests, "post", lambda url, json, **kwargs: sent.append(json) or Answer())
    subscribe(organizer)
    add_secret(shop.event, "A")
    add_secret(shop.event, "B")
    code = place(token_client, shop, committed, shop.ticket, shop.ticket)  # two secrets, one order
    assert [(p["action"], p["code"], p["organizer"], p["event"]) for p in sent] == [
        (gate.CHANGED_ACTION, code, organizer.slug, shop.event.slug)]
    feed = token_client.get(url(shop.event, suffix="gate_feed/"), {"cursor": sent[0]["cursor"]}).data
    assert sorted(r["secret"] for r in feed["results"]) == ["A", "B"]
    assert set(sent[0]) == {"notification_id", "organizer", "event", "code", "action", "cursor"}  # no secrets


def test_pretix_expiring_unpaid_orders(token_client, shop, committed):
    from pretix.base.services.orders import expire_orders
    add_secret(shop.event, "LATE")
    code = place(token_client, shop, committed, status="n")
    with scopes_disabled():
        Order.objects.filter(code=code).update(expires=now() - timedelta(days=1))
    with committed():
        expire_orders(None)  # pretix' periodic task
    assert states(shop.event) == {"LATE": ("void", "expired", code)}


def test_a_changed_product_keeps_a_fitting_secret(token_client, shop, committed):
    add_secret(shop.event, "ANY")
    code = place(token_client, shop, committed)
    with committed(), scope(organizer=shop.event.organizer):
        order = order_of(shop.event, code)
        ocm = OrderChangeManager(order)
        ocm.change_item(order.positions.first(), shop.workshop, shop.morning)
        ocm.commit()
    assert states(shop.event) == {"ANY": ("valid", "changed", code)}
    with scopes_disabled():
        assert (GateState.objects.get().item_id, GateState.objects.get().variation_id) == (shop.workshop.pk,
                                                                                           shop.morning.pk)


def test_deriving_an_order_costs_the_same_queries_for_one_ticket_or_many(token_client, shop, committed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    for i in range(4):
        add_secret(shop.event, f"S-{i}")
    orders = [order_of(shop.event, place(token_client, shop, committed, *[shop.ticket] * n)) for n in (1, 3)]
    counts = []
    with scopes_disabled():
        for order in orders:
            Order.objects.filter(pk=order.pk).update(status=Order.STATUS_CANCELED)
            with CaptureQueriesContext(connection) as queries:
                gate.sync_orders(shop.event.pk, [order.pk])
            counts.append(len(queries))
    assert states(shop.event) == {f"S-{i}": ("void", "canceled", orders[min(i, 1)].code) for i in range(4)}
    assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=True)  # really outside a transaction
def test_an_order_logged_outside_a_transaction_is_derived_at_once(token_client, shop, committed):
    add_secret(shop.event, "A")
    code = place(token_client, shop, committed, status="n")
    with scopes_disabled():
        Order.objects.filter(code=code).update(status=Order.STATUS_PAID)
        order_of(shop.event, code).log_action("pretix.event.order.paid")  # no transaction: on_commit runs at once
    assert states(shop.event) == {"A": ("valid", "paid", code)}


def test_writing_more_states_than_fit_one_statement(shop):
    """``write`` sends rows in chunks (SQLite's limit of parameters): every row of every chunk lands, also NULLs."""
    secrets = [add_secret(shop.event, f"MANY-{i:03d}") for i in range(120)]
    ticket = {"order_code": None, "positionid": None, "item_id": None, "variation_id": None, "subevent_id": None}
    with scopes_disabled():
        gate.write(shop.event.pk, {}, {s.pk: (gate.RESERVED, gate.MARKED_USED, ticket) for s in secrets})
        known = {g.secret_id: g for g in GateState.objects.filter(event=shop.event)}
        sold = [{**ticket, "order_code": f"O{i % 7}", "positionid": i, "item_id": shop.ticket.pk}
                for i in range(len(secrets))]
        changed = gate.write(shop.event.pk, known, {s.pk: (gate.VALID, gate.PAID, t) for s, t in zip(secrets, sold)})
        rows = {g.secret_id: g for g in GateState.objects.filter(event=shop.event)}
    assert sum(changed.values()) == 120
    assert [(rows[s.pk].state, rows[s.pk].positionid, rows[s.pk].item_id, rows[s.pk].variation_id)
            for s in secrets] == [("valid", i, shop.ticket.pk, None) for i in range(120)]
    assert len({rows[s.pk].tx for s in secrets}) == 1


@pytest.mark.django_db(transaction=True)
def test_a_check_in_costs_no_query_more_than_without_the_plugin(token_client, shop, disabled_event, committed):
    """A check-in changes nothing a gate is told (order_actions.py): the plugin adds no query to pretix' check-in."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pretix.base.services.checkin import perform_checkin

    add_secret(shop.event, "CHECKIN-1")
    code = place(token_client, shop, committed)
    with scopes_disabled():
        plain_item = disabled_event.items.create(name="Ticket", default_price=0, admission=True)
        disabled_event.quotas.create(name="All", size=None).items.add(plain_item)
    plain = place(token_client, SimpleNamespace(event=disabled_event, ticket=plain_item), committed)
    counts = []
    for event, order_code in ((shop.event, code), (disabled_event, plain)):
        with scopes_disabled():
            clist = event.checkin_lists.create(name="Entry")
            position = order_of(event, order_code).positions.get()
        with scope(organizer=event.organizer), CaptureQueriesContext(connection) as queries, committed():
            perform_checkin(position, clist, {})
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert states(shop.event) == {"CHECKIN-1": ("valid", "paid", code)}
