"""
The gate feed of a check-in list against pretix' own answer: for every secret of the feed, pretix' simulated
check-in (``checkinrpc/redeem`` with ``simulate``) says what the feed's entry says.
"""
from datetime import timedelta

import pytest
from dateutil.parser import isoparse
from django.utils.timezone import now
from django_scopes import scope, scopes_disabled

from pretix.base.services.orders import OrderChangeManager

from tests.gate.test_feed import feed_url, read_all
from tests.gate.test_states import order_of, place, post
from tests.helpers import (
    add_secret, device_client_for, make_team, token_client_for,
)
from tests.sales import test_generator
from tests.sales.test_generator import api_order, orders_url

pytestmark = pytest.mark.django_db
shop, series_shop = test_generator.shop, test_generator.series_shop
# Refused before pretix looks at the validity window; "product" and "unpaid" after it (perform_checkin's order).
BEFORE_THE_WINDOW = ("invalid", "canceled", "blocked", "unapproved")


def pretix_says(client, event, checkinlist, secret, ignore_unpaid):
    resp = client.post(f"/api/v1/organizers/{event.organizer.slug}/checkinrpc/redeem/", {
        "secret": secret, "lists": [checkinlist.pk], "simulate": True, "ignore_unpaid": ignore_unpaid,
        "type": "entry"}, format="json")
    return "ok" if resp.data["status"] == "ok" else resp.data["reason"]


def gate_says(entry, at):
    """What a gate does with a feed entry at the moment ``at``, as the manual tells it (docs/gate/checkin-lists.rst)."""
    if entry["refusal"] in BEFORE_THE_WINDOW:
        return entry["refusal"]
    valid_from, valid_until = (isoparse(entry[k]) if entry[k] else None for k in ("valid_from", "valid_until"))
    if (valid_from and valid_from > at) or (valid_until and valid_until < at):
        return "invalid_time"
    return entry["refusal"] or "ok"


def compare(client, event, checkinlist, ignore_unpaid=False, link=None):
    """Every entry of the list's feed beside pretix' answer: the differences, and the answers seen."""
    link = link or feed_url(event, checkinlist=checkinlist.pk, ignore_unpaid=str(ignore_unpaid).lower(),
                            page_size=3)
    results, cursor = read_all(client, link)
    differences, seen = [], {}
    for entry in results:
        assert entry["admit"] == (entry["refusal"] is None)
        pretix, gate = pretix_says(client, event, checkinlist, entry["secret"], ignore_unpaid), gate_says(entry, now())
        seen[entry["secret"]] = pretix
        if pretix != gate:
            differences.append((entry["secret"], pretix, gate))
    return differences, seen, cursor


def order(client, committed, event, *positions, **extra):
    with committed():
        resp = api_order(client, event, *positions, **extra)
    assert resp.status_code == 201, resp.content
    return resp.data["code"]


def change(event, code, apply):
    with scope(organizer=event.organizer):
        ocm = OrderChangeManager(order_of(event, code))
        apply(ocm, list(order_of(event, code).positions.all()))
        ocm.commit()


def every_situation(client, shop, committed):
    """Tickets in every state pretix' check-in tells apart, in one event."""
    for i in range(20):
        add_secret(shop.event, f"POOL-{i:02d}")
    add_secret(shop.event, "UNSOLD")
    ev, ticket, pending = shop.event, {"item": shop.ticket.pk}, {"price": "10.00"}
    place(client, shop, committed)  # paid
    place(client, shop, committed, status="n")  # awaiting payment
    place(client, shop, committed, status="n", valid_if_pending=True)
    order(client, committed, ev, {"item": shop.workshop.pk, "variation": shop.afternoon.pk})  # paid
    shop.workshop.require_approval = True
    shop.workshop.save()
    order(client, committed, ev, {"item": shop.workshop.pk, "variation": shop.morning.pk, **pending},
          status="n", require_approval=True, payment_provider="manual")
    blocked = place(client, shop, committed)
    canceled = place(client, shop, committed)
    post(client, committed, ev, canceled, "mark_canceled")
    expired = place(client, shop, committed, status="n")
    post(client, committed, ev, expired, "mark_expired")
    regenerated = place(client, shop, committed)
    post(client, committed, ev, regenerated, "regenerate_secrets")
    order(client, committed, ev, {**ticket, "secret": "EXPLICIT-1"})  # a pool product, a secret of its own
    order(client, committed, ev, {"item": shop.shirt.pk})  # a product that does not draw from the pool
    two = place(client, shop, committed, shop.ticket, shop.ticket)
    late, early = place(client, shop, committed), place(client, shop, committed)
    with committed():
        change(ev, blocked, lambda ocm, ps: ocm.add_block(ps[0], "admin"))
        change(ev, two, lambda ocm, ps: ocm.cancel(ps[1]))
        change(ev, late, lambda ocm, ps: ocm.change_valid_until(ps[0], now() - timedelta(days=1)))
        change(ev, early, lambda ocm, ps: ocm.change_valid_from(ps[0], now() + timedelta(days=1)))
    with scopes_disabled():
        resp = client.post(feed_url(ev).replace("gate_feed/", ""), {"secret": "RESERVED", "used": True},
                           format="json")
    assert resp.status_code == 201, resp.content


@pytest.mark.parametrize("ignore_unpaid", [False, True])
def test_every_answer_is_pretix_answer(token_client, shop, committed, ignore_unpaid):
    every_situation(token_client, shop, committed)
    with scopes_disabled():
        everything = shop.event.checkin_lists.create(name="All")
        tickets_only = shop.event.checkin_lists.create(name="Tickets", all_products=False)
        tickets_only.limit_products.add(shop.ticket)
        pending_too = shop.event.checkin_lists.create(name="Pending too", include_pending=True)
    answers = set()
    for checkinlist in (everything, tickets_only, pending_too):
        differences, seen, _cursor = compare(token_client, shop.event, checkinlist, ignore_unpaid)
        assert differences == []
        answers |= set(seen.values())
    assert answers >= {"ok", "invalid", "canceled", "blocked", "unapproved", "product", "unpaid", "invalid_time"}
    # the other tickets are in it: a secret given through the order API, and the shirt's random one
    results, _cursor = read_all(token_client, feed_url(shop.event, checkinlist=everything.pk))
    assert {"EXPLICIT-1"} < {r["secret"] for r in results if r["id"] is None}
    assert len([r for r in results if r["id"] is None]) == 2
    assert {r["secret"] for r in results if r["id"] is not None} >= {"UNSOLD", "RESERVED"}


def test_a_list_of_one_date(token_client, series_shop, committed):
    for i in range(4):
        add_secret(series_shop.event, f"DAY-{i}")
    for day in (series_shop.day1, series_shop.day2):
        order(token_client, committed, series_shop.event, {"item": series_shop.ticket.pk, "subevent": day.pk})
    with scopes_disabled():
        day1 = series_shop.event.checkin_lists.create(name="Day 1", subevent=series_shop.day1)
    differences, seen, _cursor = compare(token_client, series_shop.event, day1)
    # pretix looks a secret up among the list's date only: another date's ticket is unknown there
    assert differences == [] and sorted(seen.values()) == ["invalid", "invalid", "invalid", "ok"]


@pytest.mark.django_db(transaction=True)
def test_polls_bring_every_change_of_an_answer(token_client, shop, committed):
    for i in range(6):
        add_secret(shop.event, f"P-{i}")
    paid, pending = place(token_client, shop, committed), place(token_client, shop, committed, status="n")
    with scopes_disabled():
        checkinlist = shop.event.checkin_lists.create(name="All")
    link = feed_url(shop.event, checkinlist=checkinlist.pk)
    _results, cursor = read_all(token_client, link)
    with committed():
        change(shop.event, paid, lambda ocm, ps: ocm.add_block(ps[0], "admin"))
    with committed():
        resp = token_client.patch(orders_url(shop.event, f"{pending}/"), {"valid_if_pending": True}, format="json")
    assert resp.status_code == 200, resp.content
    polled, cursor = read_all(token_client, f"{link}&cursor={cursor}")
    assert {(r["order"], r["refusal"]) for r in polled} == {(paid, "blocked"), (pending, None)}
    with committed():
        change(shop.event, paid, lambda ocm, ps: ocm.remove_block(ps[0], "admin"))
        change(shop.event, pending, lambda ocm, ps: ocm.change_valid_until(ps[0], now() - timedelta(hours=1)))
    polled, cursor = read_all(token_client, f"{link}&cursor={cursor}")
    assert {(r["order"], r["refusal"], r["valid_until"] is not None) for r in polled} == {
        (paid, None, False), (pending, None, True)}
    for entry in polled:
        assert gate_says(entry, now()) == pretix_says(token_client, shop.event, checkinlist, entry["secret"], False)
    # another product, on a list of tickets only
    with scopes_disabled():
        checkinlist.all_products = False
        checkinlist.save()
        checkinlist.limit_products.add(shop.ticket)
    _results, cursor = read_all(token_client, link)
    with committed():
        change(shop.event, paid, lambda ocm, ps: ocm.change_item(ps[0], shop.workshop, shop.morning))
    polled, cursor = read_all(token_client, f"{link}&cursor={cursor}")
    assert [(r["order"], r["refusal"]) for r in polled if r["order"] == paid] == [(paid, "product")]
    for entry in polled:
        assert gate_says(entry, now()) == pretix_says(token_client, shop.event, checkinlist, entry["secret"], False)
    # a change of the list itself: the cursor is from before it, sync again
    with scopes_disabled():
        checkinlist.include_pending = True
        checkinlist.save()
    resp = token_client.get(f"{link}&cursor={cursor}")
    assert resp.status_code == 409 and resp.data["code"] == "sync_again"
    _results, cursor = read_all(token_client, link)
    assert token_client.get(f"{link}&cursor={cursor}").status_code == 200


def test_pages_go_on_from_the_pool_to_the_other_tickets(token_client, shop, committed):
    for i in range(3):
        add_secret(shop.event, f"PAGE-{i}")
    order(token_client, committed, shop.event, {"item": shop.shirt.pk})
    order(token_client, committed, shop.event, {"item": shop.ticket.pk, "secret": "OWN-1"})
    with scopes_disabled():
        checkinlist = shop.event.checkin_lists.create(name="All")
    for size in (1, 2, 3, 4, 5, 6):
        first = token_client.get(feed_url(shop.event, checkinlist=checkinlist.pk, page_size=size)).data
        results, _cursor = read_all(token_client, feed_url(shop.event, checkinlist=checkinlist.pk, page_size=size))
        assert first["count"] == len(results) == 5, size
        assert [r["secret"] for r in results][:3] == ["PAGE-0", "PAGE-1", "PAGE-2"]
        assert "OWN-1" in {r["secret"] for r in results}


def test_rules_are_named_in_every_page(token_client, shop):
    add_secret(shop.event, "R-1")
    with scopes_disabled():
        ruled = shop.event.checkin_lists.create(name="Ruled", rules={"and": [{"isAfter": [{"var": "now"}, {
            "buildTime": ["date_admission"]}, None]}]})
        plain = shop.event.checkin_lists.create(name="Plain")
    assert token_client.get(feed_url(shop.event, checkinlist=ruled.pk)).data["rules"] is True
    assert token_client.get(feed_url(shop.event, checkinlist=plain.pk)).data["rules"] is False
    assert "rules" not in token_client.get(feed_url(shop.event)).data


def test_cursors_the_server_never_issued(token_client, shop):
    add_secret(shop.event, "C-1")
    with scopes_disabled():
        checkinlist = shop.event.checkin_lists.create(name="All")
    cursor = token_client.get(feed_url(shop.event)).data["cursor"]
    ahead = str(int(cursor.split(".")[0]) + 1000)
    for params in ({}, {"checkinlist": checkinlist.pk}):
        resp = token_client.get(feed_url(shop.event, cursor=ahead, **params))
        assert resp.status_code == 409 and resp.data["code"] == "sync_again", resp.data
        resp = token_client.get(feed_url(shop.event, cursor="1.2.3", **params))
        assert resp.status_code == 400 and resp.data["code"] == "sync_again" and "cursor" in resp.data
    for bad in ("x", "999999", "-1"):
        resp = token_client.get(feed_url(shop.event, checkinlist=bad))
        assert resp.status_code == 400 and "checkinlist" in resp.data
    assert token_client.get(feed_url(shop.event, checkinlist=checkinlist.pk, state="valid")).status_code == 400


def test_item_filters_the_feed(token_client, shop, committed):
    add_secret(shop.event, "ANY")
    add_secret(shop.event, "WORKSHOP", item=shop.workshop)
    results, _cursor = read_all(token_client, feed_url(shop.event, item=shop.workshop.pk))
    assert [r["secret"] for r in results] == ["WORKSHOP"]
    assert token_client.get(feed_url(shop.event, item="x")).status_code == 400


def test_who_may_read_a_lists_feed(organizer, shop):
    add_secret(shop.event, "W-1")
    with scopes_disabled():
        checkinlist = shop.event.checkin_lists.create(name="All")
    scoped, unscoped = feed_url(shop.event, checkinlist=checkinlist.pk), feed_url(shop.event)
    checkin_only = token_client_for(make_team(organizer, permissions=["event.orders:checkin"]))
    assert checkin_only.get(scoped).status_code == 200
    assert checkin_only.get(unscoped).status_code == 403
    nothing = token_client_for(make_team(organizer, permissions=["event.vouchers:read"]))
    assert nothing.get(scoped).status_code == 403
    expected = {"full": (200, 200), "pretixscan": (200, 200), "pretixscan_online_noorders": (200, 403),
                "pretixscan_online_kiosk": (403, 403)}
    for profile, (list_status, pool_status) in expected.items():
        device = device_client_for(organizer, security_profile=profile)
        assert (device.get(scoped).status_code, device.get(unscoped).status_code) == (list_status, pool_status), \
            profile
