"""
A full sync a gate can afford: the feed's compact entries, its pages of up to 5,000 and its gzip carry the same
information as the whole answer, in both scopes, for full syncs and polls.
"""
import gzip
import json

import pytest
from django_scopes import scopes_disabled

from pretix_secrets_import.models import GateState, ImportedSecret
from tests.gate.test_feed import feed_url, read_all
from tests.gate.test_list_feed import change, every_situation
from tests.gate.test_states import place, post
from tests.sales import test_generator

pytestmark = pytest.mark.django_db
shop = test_generator.shop

# The keys of an entry as docs/api/gate_feed.rst lists them: a compact entry leaves out the ones whose value is null.
POOL_KEYS = ("id", "secret", "state", "reason", "changed", "item", "variation", "subevent", "order", "positionid")
LIST_KEYS = POOL_KEYS + ("admit", "refusal", "valid_from", "valid_until")


def whole(entry, keys):
    """A compact entry read as the documentation says: a key left out is null."""
    assert set(entry) <= set(keys) and None not in entry.values(), entry
    return {key: entry.get(key) for key in keys}


def same_information(client, event, keys, **params):
    """The feed read whole and compact from the same parameters: the entries, which must say the same."""
    full, _cursor = read_all(client, feed_url(event, **params))
    compact, _cursor = read_all(client, feed_url(event, **params, compact="true"))
    assert [whole(entry, keys) for entry in compact] == full
    assert len(json.dumps(compact)) < len(json.dumps(full))
    return full


def gzipped(client, link):
    resp = client.get(link, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert resp.status_code == 200, resp.content
    return resp


@pytest.mark.django_db(transaction=True)  # polls read what committed transactions wrote (tests/gate/test_feed.py)
def test_compact_entries_say_what_the_whole_ones_say(token_client, shop, committed):
    every_situation(token_client, shop, committed)
    event = shop.event
    with scopes_disabled():
        checkinlist = event.checkin_lists.create(name="Tickets", all_products=False)
        checkinlist.limit_products.add(shop.ticket)
    pool = same_information(token_client, event, POOL_KEYS, page_size=3)
    assert {entry["state"] for entry in pool} == set(GateState.STATES)
    listed = same_information(token_client, event, LIST_KEYS, checkinlist=checkinlist.pk, page_size=3)
    refusals = {entry["refusal"] for entry in listed}
    assert refusals >= {None, "invalid", "canceled", "blocked", "product", "unpaid"}
    assert any(entry["id"] is None for entry in listed) and any(entry["valid_until"] for entry in listed)
    pool_cursor = token_client.get(feed_url(event)).data["cursor"]
    list_cursor = token_client.get(feed_url(event, checkinlist=checkinlist.pk)).data["cursor"]
    paid = place(token_client, shop, committed)
    pending = place(token_client, shop, committed, status="n")
    post(token_client, committed, event, paid, "mark_canceled")
    with committed():
        change(event, pending, lambda ocm, ps: ocm.add_block(ps[0], "admin"))
    polled = same_information(token_client, event, POOL_KEYS, cursor=pool_cursor, page_size=2)
    assert {entry["state"] for entry in polled} >= {"void", "pending"}
    polled = same_information(token_client, event, LIST_KEYS, checkinlist=checkinlist.pk, cursor=list_cursor,
                              page_size=2)
    assert {entry["refusal"] for entry in polled} >= {"canceled", "blocked"}


def test_compact_is_carried_by_the_next_link(token_client, shop):
    for i in range(3):
        ImportedSecret.objects.create(event=shop.event, organizer=shop.event.organizer, secret=f"N-{i}")
    first = token_client.get(feed_url(shop.event, compact="true", page_size=2)).data
    assert first["results"][0] == {"id": first["results"][0]["id"], "secret": "N-0", "state": "unsold"}
    assert "compact=true" in first["next"]
    assert token_client.get(first["next"]).data["results"][0].keys() == {"id", "secret", "state"}


def test_pages_of_up_to_5000(token_client, shop, committed):
    with scopes_disabled():
        ImportedSecret.objects.bulk_create([ImportedSecret(event=shop.event, organizer=shop.event.organizer,
                                                           secret=f"BIG-{i:05d}") for i in range(5001)])
        checkinlist = shop.event.checkin_lists.create(name="All")
    code = place(token_client, shop, committed)  # one of them on a ticket, and one more ticket beside the pool
    place(token_client, shop, committed, shop.shirt)
    for scope in ({}, {"checkinlist": checkinlist.pk}):
        first = token_client.get(feed_url(shop.event, page_size=5000, compact="true", **scope)).data
        assert first["count"] == 5001 + len(scope) and len(first["results"]) == 5000
        assert any(entry.get("order") == code for entry in first["results"])
        last = token_client.get(first["next"]).data
        assert len(last["results"]) == 1 + len(scope) and last["next"] is None
        resp = token_client.get(feed_url(shop.event, page_size=5001, **scope))
        assert resp.status_code == 400 and resp.data["page_size"] == ["Must be between 1 and 5000."]


def test_gzip_answers_decode_to_the_same_json(token_client, shop, committed):
    with scopes_disabled():
        ImportedSecret.objects.bulk_create([ImportedSecret(event=shop.event, organizer=shop.event.organizer,
                                                           secret=f"GZ-{i:03d}") for i in range(100)])
    place(token_client, shop, committed)
    with scopes_disabled():
        checkinlist = shop.event.checkin_lists.create(name="All")
    for params in ({}, {"compact": "true"}, {"checkinlist": checkinlist.pk}, {"checkinlist": checkinlist.pk,
                                                                              "compact": "true"}):
        # the second page: its link carries the cursor, so that both answers are the same
        link = token_client.get(feed_url(shop.event, page_size=40, **params)).data["next"]
        plain = token_client.get(link)
        packed = gzipped(token_client, link)
        assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
        assert json.loads(gzip.decompress(packed.content)) == json.loads(plain.content)
        assert len(packed.content) < len(plain.content) / 2  # with Django's padding of up to 100 bytes
        assert "Content-Encoding" not in plain


def test_no_gzip_for_a_browsers_session(backend_client, shop):
    """BREACH: a page on another site could have a logged-in browser ask for the feed with text of its choice."""
    for i in range(30):
        ImportedSecret.objects.create(event=shop.event, organizer=shop.event.organizer, secret=f"S-{i:03d}")
    resp = gzipped(backend_client, feed_url(shop.event, page_size=30))
    assert "Content-Encoding" not in resp and len(json.loads(resp.content)["results"]) == 30
