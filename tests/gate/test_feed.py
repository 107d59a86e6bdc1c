"""The gate feed: full sync, polls with a cursor, filters, errors and who may read it."""
from urllib.parse import parse_qs, urlsplit

import pytest
from django_scopes import scopes_disabled

from pretix.base.models import LogEntry

from pretix_secrets_import.gate import feed
from tests.gate.test_states import place, post, subscribe
from tests.helpers import (
    add_secret, device_client_for, make_team, token_client_for, url,
)
from tests.sales import test_generator

pytestmark = pytest.mark.django_db
# On PostgreSQL a test's own transaction stays open until its end, and the feed delivers what open transactions
# wrote in every poll (they may still commit): tests that expect a poll to be empty commit for real.
committing = pytest.mark.django_db(transaction=True)
shop, series_shop = test_generator.shop, test_generator.series_shop


def feed_url(event, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return url(event, suffix="gate_feed/") + (f"?{query}" if query else "")


def read_all(client, start):
    """Follow the next links from ``start``; every page's secrets and the last page's cursor."""
    results, cursor, link = [], None, start
    while link:
        resp = client.get(link)
        assert resp.status_code == 200, resp.content
        assert set(resp.data) - {"rules"} == {"count", "next", "previous", "results", "cursor"}
        assert ("rules" in resp.data) == ("checkinlist=" in link)
        results += resp.data["results"]
        cursor, link = resp.data["cursor"], resp.data["next"]
    return results, cursor


@committing
def test_full_sync_lists_every_secret_in_pages(token_client, shop, committed):
    for i in range(5):
        add_secret(shop.event, f"S-{i}", item=shop.ticket if i == 4 else None)
    with scopes_disabled():
        code = place(token_client, shop, committed)
    first = token_client.get(feed_url(shop.event, page_size=2)).data
    assert first["count"] == 5 and first["previous"] is None and len(first["results"]) == 2
    results, cursor = read_all(token_client, feed_url(shop.event, page_size=2))
    assert [r["secret"] for r in results] == [f"S-{i}" for i in range(5)]
    # the ticket took S-4, restricted to its product: the most specific fit
    assert results[4] == {"id": results[4]["id"], "secret": "S-4", "state": "valid", "reason": "paid",
                          "changed": results[4]["changed"], "item": shop.ticket.pk, "variation": None,
                          "subevent": None, "order": code, "positionid": 1}
    assert results[4]["changed"].endswith("Z")
    assert results[0] == {"id": results[0]["id"], "secret": "S-0", "state": "unsold", "reason": None,
                          "changed": None, "item": None, "variation": None, "subevent": None,
                          "order": None, "positionid": None}
    pages = [first]
    while pages[-1]["next"]:
        pages.append(token_client.get(pages[-1]["next"]).data)
    assert {page["cursor"] for page in pages} == {first["cursor"]}  # the first page's cursor travels along
    # nothing changed since: the poll is empty
    assert token_client.get(feed_url(shop.event, cursor=cursor)).data["results"] == []


@committing
def test_a_poll_returns_what_changed_after_the_cursor(token_client, shop, committed):
    subscribe(shop.event.organizer)
    add_secret(shop.event, "A")
    add_secret(shop.event, "B")
    code = place(token_client, shop, committed, status="n")
    _results, cursor = read_all(token_client, feed_url(shop.event))
    post(token_client, committed, shop.event, code, "mark_paid")
    changed, next_cursor = read_all(token_client, feed_url(shop.event, cursor=cursor))
    assert [(r["secret"], r["state"], r["reason"]) for r in changed] == [("A", "valid", "paid")]
    assert read_all(token_client, feed_url(shop.event, cursor=next_cursor))[0] == []
    # the cursor of a webhook's payload finds the same change
    with scopes_disabled():
        hook_cursor = LogEntry.objects.filter(action_type="pretix_secrets_import.gate.changed").last().parsed_data
    assert [r["secret"] for r in read_all(token_client, feed_url(shop.event, cursor=hook_cursor["cursor"]))[0]] \
        == ["A"]


@committing
def test_a_change_behind_a_page_already_read_is_in_the_next_poll(token_client, shop, committed):
    add_secret(shop.event, "A")
    add_secret(shop.event, "B")
    add_secret(shop.event, "C")
    code = place(token_client, shop, committed, status="n")  # takes A
    first = token_client.get(feed_url(shop.event, page_size=2)).data
    post(token_client, committed, shop.event, code, "mark_paid")  # A, on the page read, changes
    rest, cursor = read_all(token_client, first["next"])
    assert [r["secret"] for r in rest] == ["C"]
    changed, _cursor = read_all(token_client, feed_url(shop.event, cursor=cursor))
    assert [(r["secret"], r["state"]) for r in changed] == [("A", "valid")]


@committing  # a poll reads what committed transactions wrote, as a gate does
def test_poll_pages_and_filters(token_client, series_shop, committed):
    event = series_shop.event
    for i in range(3):
        add_secret(event, f"D1-{i}", subevent=series_shop.day1)
    add_secret(event, "D2", subevent=series_shop.day2)
    cursor = token_client.get(feed_url(event)).data["cursor"]
    with committed():
        for _ in range(3):
            test_generator.api_order(token_client, event, {"item": series_shop.ticket.pk,
                                                           "subevent": series_shop.day1.pk})
    polled, _c = read_all(token_client, feed_url(event, cursor=cursor, page_size=2))
    assert sorted(r["secret"] for r in polled) == ["D1-0", "D1-1", "D1-2"]
    assert read_all(token_client, feed_url(event, cursor=cursor, subevent=series_shop.day2.pk))[0] == []
    unsold, _c = read_all(token_client, feed_url(event, state="unsold"))
    assert [r["secret"] for r in unsold] == ["D2"]
    on_day2, _c = read_all(token_client, feed_url(event, subevent=series_shop.day2.pk))
    assert [r["secret"] for r in on_day2] == ["D2"]
    valid, _c = read_all(token_client, feed_url(event, state="valid", cursor=cursor))
    assert len(valid) == 3


@pytest.mark.parametrize("params,field", [
    ({"cursor": "abc"}, "cursor"), ({"cursor": "-1"}, "cursor"), ({"state": "sold"}, "state"),
    ({"subevent": "x"}, "subevent"), ({"page_size": "0"}, "page_size"), ({"page_size": "5001"}, "page_size"),
    ({"after": "1-2"}, "after"), ({"cursor": "1", "after": "7"}, "after"), ({"horizon": "x"}, "horizon"),
    ({"compact": "yes"}, "compact"),
])
def test_bad_parameters_get_a_400(token_client, shop, params, field):
    resp = token_client.get(feed_url(shop.event, **params))
    assert resp.status_code == 400 and field in resp.data


def test_next_link_keeps_the_filters(token_client, shop):
    for i in range(3):
        add_secret(shop.event, f"S-{i}")
    link = token_client.get(feed_url(shop.event, page_size=1, state="unsold")).data["next"]
    query = parse_qs(urlsplit(link).query)
    assert query["state"] == ["unsold"] and query["page_size"] == ["1"] and "horizon" in query


def test_who_may_read_the_feed(organizer, shop, disabled_event):
    add_secret(shop.event, "S")
    readers = token_client_for(make_team(organizer, ["event.orders:read"]))
    others = token_client_for(make_team(organizer, ["event.vouchers:read"]))
    assert readers.get(feed_url(shop.event)).status_code == 200
    assert others.get(feed_url(shop.event)).status_code == 403
    assert readers.get(feed_url(disabled_event)).status_code == 404
    # devices: where pretix lets them sync the orders for offline scanning
    assert device_client_for(organizer, "pretixscan").get(feed_url(shop.event)).status_code == 200
    assert device_client_for(organizer, "full").get(feed_url(shop.event)).status_code == 200
    for profile in ("pretixscan_online_kiosk", "pretixscan_online_noorders"):
        assert device_client_for(organizer, profile).get(feed_url(shop.event)).status_code == 403


def test_scanner_profiles_that_sync_orders_or_read_a_lists_tickets_list_the_feed():
    from pretix.api.auth.devicesecurity import get_all_security_profiles
    for profile in get_all_security_profiles().values():
        allowed = getattr(profile, "allowlist", None)
        if allowed is not None:
            may = feed.OFFLINE_SYNC_ROUTE in allowed or all(route in allowed for route in feed.CHECKIN_ROUTES)
            assert (feed.FEED_ROUTE in allowed) == may, profile.identifier
