import json
import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from pretix.base.models import LogEntry

from pretix_secrets_import.models import ImportedSecret
from tests.helpers import (
    add_secret, add_ticket, make_team, token_client_for, url,
)

pytestmark = pytest.mark.django_db


def as_json(secret):
    return {
        "id": secret.pk, "secret": secret.secret, "used": secret.used,
        "item": secret.item_id, "variation": secret.variation_id, "subevent": secret.subevent_id,
    }


def pool(event):
    with scopes_disabled():
        return list(ImportedSecret.objects.filter(event=event).order_by("id"))


# --- list -----------------------------------------------------------------------------------------------------------


def test_list_empty(token_client, event):
    resp = token_client.get(url(event))
    assert resp.status_code == 200
    assert resp.data == {"count": 0, "next": None, "previous": None, "results": []}


def test_list_returns_documented_fields(token_client, event, event2, item):
    s = add_secret(event, "foobar", item=item)
    add_secret(event2, "elsewhere")
    resp = token_client.get(url(event))
    assert resp.status_code == 200
    assert resp.json() == {"count": 1, "next": None, "previous": None, "results": [as_json(s)]}


def test_list_pagination(token_client, event):
    for i in range(55):
        add_secret(event, f"s{i:03d}")
    resp = token_client.get(url(event))
    assert resp.data["count"] == 55
    assert len(resp.data["results"]) == 50
    assert resp.data["next"].endswith("?page=2")
    resp = token_client.get(url(event) + "?page=2")
    assert [r["secret"] for r in resp.data["results"]] == [f"s{i:03d}" for i in range(50, 55)]
    assert resp.data["next"] is None
    assert resp.data["previous"] is not None
    assert token_client.get(url(event) + "?page=3").status_code == 404


@pytest.mark.parametrize("query", ["", "ordering=-id", "ordering=secret", "ordering=-used", "used=false",
                                   "used=true&ordering=-secret"])
def test_list_every_page_matches_the_full_ordering(token_client, event, item, query):
    # pages in the second half are read backwards from the end: they must still be the same slices
    for i in range(23):
        add_secret(event, f"s{(i * 7) % 23:02d}", used=i % 3 == 0, item=item if i % 2 else None)
    full = token_client.get(url(event) + "?page_size=50&" + query).data
    pages = [token_client.get(url(event) + f"?page_size=4&page={n}&" + query).data for n in range(1, 8)]
    pages = [p for p in pages if "results" in p]
    assert [r for p in pages for r in p["results"]] == full["results"]
    assert {p["count"] for p in pages} == {full["count"]} == {len(full["results"])}


@pytest.mark.parametrize("query,expected", [
    ("", 6), ("used=true", 2), ("used=false", 4), ("item={item}", 2), ("item={item}&used=false", 1),
    ("variation={variation}", 1), ("secret=free", 1), ("secret=nothing", 0),
])
def test_list_count_matches_filters(token_client, event, item, item2, variation, query, expected):
    add_secret(event, "free")
    add_secret(event, "free-used", used=True)
    add_secret(event, "item", item=item)
    add_secret(event, "item-used", item=item, used=True)
    add_secret(event, "var", item=item2, variation=variation)
    add_secret(event, "other", item=item2)
    resp = token_client.get(url(event) + "?" + query.format(item=item.pk, variation=variation.pk))
    assert resp.data["count"] == expected == len(resp.data["results"])


def test_list_does_not_count_the_pool(token_client, event):
    for i in range(5):
        add_secret(event, f"s{i}")
    with CaptureQueriesContext(connection) as ctx:
        resp = token_client.get(url(event) + "?page=3&page_size=2")
    assert resp.data["count"] == 5 and [r["secret"] for r in resp.data["results"]] == ["s4"]
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("poolcount" in sql for sql in counts)


@pytest.fixture
def mixed_pool(event, item, item2, variation):
    return {
        "plain": add_secret(event, "plain"),
        "used": add_secret(event, "used", used=True),
        "item": add_secret(event, "item", item=item),
        "variation": add_secret(event, "variation", item=item2, variation=variation),
    }


@pytest.mark.parametrize("query,expected", [
    ("used=true", ["used"]),
    ("used=false", ["plain", "item", "variation"]),
    ("secret=item", ["item"]),
    ("secret=ITEM", []),
    ("secret=nothing", []),
])
def test_list_filters(token_client, event, mixed_pool, query, expected):
    resp = token_client.get(url(event) + "?" + query)
    assert resp.status_code == 200
    assert [r["secret"] for r in resp.data["results"]] == expected


def test_list_filter_by_relations(token_client, event, item, item2, variation, mixed_pool):
    assert [r["secret"] for r in token_client.get(url(event) + f"?item={item.pk}").data["results"]] == ["item"]
    assert [r["secret"] for r in token_client.get(url(event) + f"?item={item2.pk}").data["results"]] == ["variation"]
    resp = token_client.get(url(event) + f"?variation={variation.pk}")
    assert [r["secret"] for r in resp.data["results"]] == ["variation"]


def test_list_filter_by_subevent(token_client, series, subevent, subevent2):
    add_secret(series, "day1", subevent=subevent)
    add_secret(series, "day2", subevent=subevent2)
    resp = token_client.get(url(series) + f"?subevent={subevent2.pk}")
    assert [r["secret"] for r in resp.data["results"]] == ["day2"]


@pytest.mark.parametrize("query", ["item=abc", "item=1.5", "variation=-1", "subevent=99999999999999999999999",
                                   "used=maybe"])
def test_list_invalid_filter_is_400(token_client, event, query):
    resp = token_client.get(url(event) + "?" + query)
    assert resp.status_code == 400
    assert list(resp.data) == [query.split("=")[0]]  # the error names the filter


def test_list_ordering(token_client, event, mixed_pool):
    assert [r["secret"] for r in token_client.get(url(event)).data["results"]] == ["plain", "used", "item", "variation"]
    resp = token_client.get(url(event) + "?ordering=-id")
    assert [r["secret"] for r in resp.data["results"]] == ["variation", "item", "used", "plain"]
    resp = token_client.get(url(event) + "?ordering=secret")
    assert [r["secret"] for r in resp.data["results"]] == ["item", "plain", "used", "variation"]


# --- retrieve -------------------------------------------------------------------------------------------------------


def test_retrieve(token_client, event, item2, variation):
    s = add_secret(event, "foobar", item=item2, variation=variation)
    resp = token_client.get(url(event, s.pk))
    assert resp.status_code == 200
    assert resp.json() == as_json(s)


def test_retrieve_unknown_or_foreign_id_is_404(token_client, event, event2):
    other = add_secret(event2, "other")
    for pk in (987654, other.pk, "abc"):
        resp = token_client.get(url(event, pk))
        assert resp.status_code == 404
        assert resp.data["detail"].code == "not_found" and "other" not in resp.content.decode()


# --- create ---------------------------------------------------------------------------------------------------------


def test_create_documented_example(token_client, event):
    resp = token_client.post(url(event), {
        "secret": "foobar", "used": False, "item": None, "variation": None, "subevent": None,
    }, format="json")
    assert resp.status_code == 201
    s = pool(event)[0]
    assert resp.json() == as_json(s)
    assert s.organizer == event.organizer
    assert not s.used and s.used_at is None


def test_create_minimal(token_client, event):
    resp = token_client.post(url(event), {"secret": "only-secret"}, format="json")
    assert resp.status_code == 201
    assert resp.data["used"] is False and resp.data["item"] is None


def test_create_used(token_client, event):
    resp = token_client.post(url(event), {"secret": "burnt", "used": True}, format="json")
    assert resp.status_code == 201
    s = pool(event)[0]
    assert s.used and s.used_at is not None


@pytest.fixture
def shirt_draws(event, item, item2):
    """The shirt's tickets get pool secrets too, so the API takes secrets restricted to it."""
    event.settings.secrets_import_products = [item.pk, item2.pk]


def test_create_with_item_and_variation(token_client, event, item2, variation, shirt_draws):
    resp = token_client.post(url(event), {"secret": "v", "item": item2.pk, "variation": variation.pk}, format="json")
    assert resp.status_code == 201
    assert (resp.data["item"], resp.data["variation"]) == (item2.pk, variation.pk)


def test_create_variation_fills_item(token_client, event, item2, variation, shirt_draws):
    resp = token_client.post(url(event), {"secret": "v", "variation": variation.pk}, format="json")
    assert resp.status_code == 201
    assert resp.data["item"] == item2.pk


def test_create_with_subevent(token_client, series, subevent, series_item):
    resp = token_client.post(url(series), {"secret": "d", "subevent": subevent.pk, "item": series_item.pk},
                             format="json")
    assert resp.status_code == 201
    assert resp.data["subevent"] == subevent.pk


@pytest.mark.parametrize("payload,field", [
    ({"secret": ""}, "secret"),
    ({"secret": None}, "secret"),
    ({"secret": ["a"]}, "secret"),
    ({"secret": {"a": 1}}, "secret"),
    ({"secret": True}, "secret"),
    ({"secret": "x" * 256}, "secret"),
    ({"secret": "has space"}, "secret"),
    ({"secret": "  "}, "secret"),
    ({"secret": " inner space "}, "secret"),
    ({"secret": "bell\x07"}, "secret"),
    ({}, "secret"),
    ({"secret": "ok", "used": "maybe"}, "used"),
    ({"secret": "ok", "used": None}, "used"),
    ({"secret": "ok", "item": "abc"}, "item"),
    ({"secret": "ok", "item": 1.5}, "item"),
    ({"secret": "ok", "item": [1]}, "item"),
    ({"secret": "ok", "item": -1}, "item"),
    ({"secret": "ok", "item": 0}, "item"),
    ({"secret": "ok", "item": 2 ** 64}, "item"),
    ({"secret": "ok", "item": 987654}, "item"),
    ({"secret": "ok", "variation": 987654}, "variation"),
    ({"secret": "ok", "subevent": 987654}, "subevent"),
])
def test_create_invalid_input(token_client, event, payload, field):
    resp = token_client.post(url(event), payload, format="json")
    assert resp.status_code == 400
    assert field in resp.data
    assert pool(event) == []


def test_create_255_characters(token_client, event):
    resp = token_client.post(url(event), {"secret": "x" * 255}, format="json")
    assert resp.status_code == 201
    assert [s.secret for s in pool(event)] == [resp.data["secret"]] == ["x" * 255]


def test_create_malformed_json(token_client, event):
    resp = token_client.post(url(event), '{"secret": "abc"', content_type="application/json")
    assert resp.status_code == 400
    assert "detail" in resp.data


@pytest.mark.parametrize("body", ['["abc"]', '"abc"', "42", "null"])
def test_create_non_object_body(token_client, event, body):
    resp = token_client.post(url(event), body, content_type="application/json")
    assert resp.status_code == 400
    assert pool(event) == []


def test_create_foreign_item(token_client, event, event2_item):
    resp = token_client.post(url(event), {"secret": "x", "item": event2_item.pk}, format="json")
    assert resp.status_code == 400
    assert "item" in resp.data


def test_create_variation_not_of_item(token_client, event, item, variation):
    resp = token_client.post(url(event), {"secret": "x", "item": item.pk, "variation": variation.pk}, format="json")
    assert resp.status_code == 400
    assert "variation" in resp.data


def test_create_subevent_on_single_event(token_client, event, subevent):
    resp = token_client.post(url(event), {"secret": "x", "subevent": subevent.pk}, format="json")
    assert resp.status_code == 400
    assert "event series" in resp.data["subevent"][0]


def test_create_foreign_subevent(token_client, series, other_organizer_event):
    other_organizer_event.has_subevents = True
    other_organizer_event.save()
    with scopes_disabled():
        foreign = other_organizer_event.subevents.create(name="x", date_from=other_organizer_event.date_from)
    resp = token_client.post(url(series), {"secret": "x", "subevent": foreign.pk}, format="json")
    assert resp.status_code == 400
    assert "subevent" in resp.data


def test_create_duplicate_in_same_event(token_client, event):
    add_secret(event, "dup")
    resp = token_client.post(url(event), {"secret": "dup"}, format="json")
    assert resp.status_code == 400
    assert "already been imported" in resp.data["secret"][0]


def test_create_duplicate_in_other_event_of_organizer(token_client, event, event2):
    add_secret(event2, "dup")
    resp = token_client.post(url(event), {"secret": "dup"}, format="json")
    assert resp.status_code == 400
    assert len(pool(event)) == 0


def test_create_same_secret_in_other_organizer_is_fine(token_client, event, other_organizer_event):
    add_secret(other_organizer_event, "dup")
    resp = token_client.post(url(event), {"secret": "dup"}, format="json")
    assert resp.status_code == 201
    assert [s.secret for s in pool(event)] == [s.secret for s in pool(other_organizer_event)] == ["dup"]


def test_create_secret_is_case_sensitive(token_client, event):
    add_secret(event, "abc")
    assert token_client.post(url(event), {"secret": "ABC"}, format="json").status_code == 201
    assert [s.secret for s in pool(event)] == ["abc", "ABC"]


def test_create_existing_ticket_secret(token_client, event, event2):
    add_ticket(event2, "ticket-secret")
    resp = token_client.post(url(event), {"secret": "ticket-secret"}, format="json")
    assert resp.status_code == 400
    assert "ticket" in resp.data["secret"][0]


def test_create_ignores_read_only_id(token_client, event):
    resp = token_client.post(url(event), {"secret": "x", "id": 4711}, format="json")
    assert resp.status_code == 201
    assert resp.data["id"] != 4711 or pool(event)[0].pk == 4711


# --- update ---------------------------------------------------------------------------------------------------------


def test_patch_documented_example(token_client, event, item):
    s = add_secret(event, "foobar")
    resp = token_client.patch(url(event, s.pk), {"item": item.pk}, format="json")
    assert resp.status_code == 200
    assert resp.json() == {"id": s.pk, "secret": "foobar", "used": False, "item": item.pk,
                           "variation": None, "subevent": None}


def test_patch_keeps_other_fields(token_client, event, item2, variation):
    s = add_secret(event, "foobar", item=item2, variation=variation)
    resp = token_client.patch(url(event, s.pk), {"secret": "renamed"}, format="json")
    assert resp.status_code == 200
    assert (resp.data["secret"], resp.data["item"], resp.data["variation"]) == ("renamed", item2.pk, variation.pk)


def test_patch_to_item_that_does_not_fit_variation(token_client, event, item, item2, variation):
    s = add_secret(event, "foobar", item=item2, variation=variation)
    resp = token_client.patch(url(event, s.pk), {"item": item.pk}, format="json")
    assert resp.status_code == 400
    assert "variation" in resp.data


def test_patch_same_secret_is_not_a_duplicate(token_client, event):
    s = add_secret(event, "foobar")
    resp = token_client.patch(url(event, s.pk), {"secret": "foobar"}, format="json")
    assert resp.status_code == 200
    assert resp.data == as_json(s)
    assert [as_json(secret) for secret in pool(event)] == [as_json(s)]


def test_patch_to_existing_secret(token_client, event):
    add_secret(event, "taken")
    s = add_secret(event, "foobar")
    resp = token_client.patch(url(event, s.pk), {"secret": "taken"}, format="json")
    assert resp.status_code == 400
    s.refresh_from_db()
    assert s.secret == "foobar"


def test_patch_mark_used(token_client, event):
    s = add_secret(event, "foobar")
    resp = token_client.patch(url(event, s.pk), {"used": True}, format="json")
    assert resp.status_code == 200
    s.refresh_from_db()
    assert s.used and s.used_at is not None


def test_put_resets_omitted_fields(token_client, event, item2, variation):
    s = add_secret(event, "foobar", item=item2, variation=variation)
    resp = token_client.put(url(event, s.pk), {"secret": "new"}, format="json")
    assert resp.status_code == 200
    assert resp.json() == {"id": s.pk, "secret": "new", "used": False, "item": None, "variation": None,
                           "subevent": None}


def test_put_requires_secret(token_client, event, item):
    s = add_secret(event, "foobar")
    resp = token_client.put(url(event, s.pk), {"item": item.pk}, format="json")
    assert resp.status_code == 400
    assert "secret" in resp.data


@pytest.mark.parametrize("method", ["put", "patch"])
def test_used_secret_cannot_be_changed(token_client, event, item, method):
    s = add_secret(event, "foobar", used=True)
    resp = getattr(token_client, method)(url(event, s.pk), {"secret": "foobar", "used": False, "item": item.pk},
                                         format="json")
    assert resp.status_code == 403
    s.refresh_from_db()
    assert s.used and s.item is None


def test_used_secret_answers_403_even_for_invalid_change(token_client, event):
    s = add_secret(event, "foobar", used=True)
    resp = token_client.patch(url(event, s.pk), {"item": "abc"}, format="json")
    assert resp.status_code == 403
    assert resp.data == {"detail": "This secret has already been used and can no longer be changed."}
    assert [as_json(secret) for secret in pool(event)] == [as_json(s)]


def test_update_unknown_id_is_404(token_client, event):
    resp = token_client.patch(url(event, 987654), {"secret": "x"}, format="json")
    assert resp.status_code == 404
    assert resp.data["detail"].code == "not_found"
    assert pool(event) == []


# --- delete ---------------------------------------------------------------------------------------------------------


def test_delete_unused(token_client, event):
    s = add_secret(event, "foobar")
    resp = token_client.delete(url(event, s.pk))
    assert resp.status_code == 204
    assert pool(event) == []


def test_delete_used_is_403(token_client, event):
    s = add_secret(event, "foobar", used=True)
    resp = token_client.delete(url(event, s.pk))
    assert resp.status_code == 403
    assert pool(event) == [s]


def test_delete_unknown_or_foreign_is_404(token_client, event, event2):
    other = add_secret(event2, "x")
    assert token_client.delete(url(event, 987654)).status_code == 404
    assert token_client.delete(url(event, other.pk)).status_code == 404
    assert pool(event2) == [other]


# --- bulk_create ----------------------------------------------------------------------------------------------------


def test_bulk_create_documented_example(token_client, event):
    resp = token_client.post(url(event, suffix="bulk_create/"), [
        {"secret": "foobar", "used": False, "item": None, "variation": None, "subevent": None},
        {"secret": "baz", "used": False, "item": None, "variation": None, "subevent": None},
    ], format="json")
    assert resp.status_code == 201
    created = pool(event)
    assert resp.json() == [as_json(s) for s in created]
    assert [s.secret for s in created] == ["foobar", "baz"]


def test_bulk_create_keeps_request_order(token_client, event, item, item2, variation, shirt_draws):
    payload = [
        {"secret": "z", "item": item.pk},
        {"secret": "a", "variation": variation.pk},
        {"secret": "m", "used": True},
    ]
    resp = token_client.post(url(event, suffix="bulk_create/"), payload, format="json")
    assert resp.status_code == 201
    assert [r["secret"] for r in resp.data] == ["z", "a", "m"]
    assert resp.data[1]["item"] == item2.pk
    assert resp.data[2]["used"] is True
    ids = [r["id"] for r in resp.data]
    assert ids == sorted(ids)


def test_bulk_create_invalid_entry_creates_nothing(token_client, event, event2_item):
    resp = token_client.post(url(event, suffix="bulk_create/"), [
        {"secret": "good"}, {"secret": "bad", "item": event2_item.pk}, {"secret": "also good"},
    ], format="json")
    assert resp.status_code == 400
    assert resp.data[0] == {}
    assert "item" in resp.data[1]
    assert "secret" in resp.data[2]
    assert pool(event) == []


def test_bulk_create_type_error_creates_nothing(token_client, event):
    resp = token_client.post(url(event, suffix="bulk_create/"), [{"secret": "good"}, {"secret": "x", "used": "?"}],
                             format="json")
    assert resp.status_code == 400
    assert resp.data[0] == {} and "used" in resp.data[1]
    assert pool(event) == []


def test_bulk_create_duplicate_in_batch(token_client, event):
    resp = token_client.post(url(event, suffix="bulk_create/"), [{"secret": "a"}, {"secret": "b"}, {"secret": "a"}],
                             format="json")
    assert resp.status_code == 400
    assert resp.data[:2] == [{}, {}]
    assert "more than once" in resp.data[2]["secret"][0]
    assert pool(event) == []


def test_bulk_create_duplicate_of_existing(token_client, event, event2):
    add_secret(event2, "old")
    resp = token_client.post(url(event, suffix="bulk_create/"), [{"secret": "new"}, {"secret": "old"}], format="json")
    assert resp.status_code == 400
    assert pool(event) == []


def test_bulk_create_500(token_client, event):
    resp = token_client.post(url(event, suffix="bulk_create/"), [{"secret": f"s{i}"} for i in range(500)],
                             format="json")
    assert resp.status_code == 201
    assert len(resp.data) == 500
    assert len(pool(event)) == 500


def test_bulk_create_more_than_500(token_client, event):
    resp = token_client.post(url(event, suffix="bulk_create/"), [{"secret": f"s{i}"} for i in range(501)],
                             format="json")
    assert resp.status_code == 400
    assert "500" in str(resp.data)
    assert pool(event) == []


@pytest.mark.parametrize("body", ["[]", '{"secret": "a"}', '"a"', "null", '[["a"]]', "[1, 2]", '{"secret": "a"'])
def test_bulk_create_malformed(token_client, event, body):
    resp = token_client.post(url(event, suffix="bulk_create/"), body, content_type="application/json")
    assert resp.status_code == 400
    assert pool(event) == []


def test_bulk_create_get_not_allowed(token_client, event):
    resp = token_client.get(url(event, suffix="bulk_create/"))
    assert resp.status_code == 405
    assert resp.data == {"detail": 'Method "GET" not allowed.'}


def count_queries(token_client, event, rows):
    with CaptureQueriesContext(connection) as ctx:
        resp = token_client.post(url(event, suffix="bulk_create/"), rows, format="json")
    assert resp.status_code == 201
    return len(ctx.captured_queries)


def test_bulk_create_runs_constant_number_of_queries(token_client, event, item, item2, variation, shirt_draws):
    def rows(prefix, n):
        return [{"secret": f"{prefix}{i}", "item": [item.pk, item2.pk][i % 2],
                 "variation": [None, variation.pk][i % 2]} for i in range(n)]

    count_queries(token_client, event, rows("warmup", 1))  # first request fills per-process caches
    few = count_queries(token_client, event, rows("a", 2))
    many = count_queries(token_client, event, rows("b", 500))
    # The only growth allowed is the database driver's split of one bulk INSERT into batches (SQLite: 999 params).
    fields = [f for f in ImportedSecret._meta.concrete_fields if not f.primary_key]
    batch = connection.ops.bulk_batch_size(fields, [ImportedSecret()] * 500)
    assert many == few + math.ceil(500 / batch) - 1
    assert many < 32  # two of them read the chosen products (event and organizer settings; cached in production)


# --- plugin not enabled ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,suffix,pk", [
    ("get", "", False), ("post", "", False), ("post", "bulk_create/", False),
    ("get", "", True), ("patch", "", True), ("put", "", True), ("delete", "", True),
])
def test_plugin_disabled_is_404(token_client, disabled_event, method, suffix, pk):
    s = add_secret(disabled_event, "hidden")
    target = url(disabled_event, s.pk if pk else None, suffix)
    resp = getattr(token_client, method)(target, {"secret": "x"} if method != "get" else None, format="json")
    assert resp.status_code == 404
    assert pool(disabled_event) == [s]
    assert "hidden" not in resp.content.decode()


# --- logging --------------------------------------------------------------------------------------------------------


def logs(event):
    with scopes_disabled():
        return list(LogEntry.objects.filter(event=event, action_type__startswith="pretix_secrets_import")
                    .order_by("id"))


def test_writes_are_logged_without_the_secret(token_client, event, item):
    resp = token_client.post(url(event), {"secret": "topsecret"}, format="json")
    pk = resp.data["id"]
    token_client.patch(url(event, pk), {"item": item.pk}, format="json")
    token_client.delete(url(event, pk))
    entries = logs(event)
    assert [e.action_type for e in entries] == [
        "pretix_secrets_import.secret.added",
        "pretix_secrets_import.secret.changed",
        "pretix_secrets_import.secret.deleted",
    ]
    for e in entries:
        # a deleted secret is named under "codes", as every deletion names what it deleted; never in the text
        assert "topsecret" not in e.data.replace('"codes": ["topsecret"]', "")
        assert e.api_token is not None
        assert e.display() and "topsecret" not in e.display()
    assert json.loads(entries[1].data)["item"] == item.pk
    assert json.loads(entries[2].data)["codes"] == ["topsecret"]


def test_bulk_create_is_one_log_entry(token_client, event):
    token_client.post(url(event, suffix="bulk_create/"), [{"secret": f"s{i}"} for i in range(20)], format="json")
    entries = logs(event)
    assert len(entries) == 1
    assert entries[0].action_type == "pretix_secrets_import.secrets.bulk_added"
    assert "20" in str(entries[0].display())


def test_rejected_writes_are_not_logged(token_client, event):
    token_client.post(url(event), {"secret": ""}, format="json")
    token_client.post(url(event, suffix="bulk_create/"), [{"secret": "a"}, {"secret": "a"}], format="json")
    assert logs(event) == []


# --- summary --------------------------------------------------------------------------------------------------------


def test_summary_empty_pool(token_client, event):
    resp = token_client.get(url(event, suffix="summary/"))
    assert resp.status_code == 200
    assert resp.json() == {"total": 0, "used": 0, "unused": 0, "groups": [],
                           "sellable": {"products": 0, "sold_out": 0, "lowest": None}}


def test_summary_counts_per_restriction_group(token_client, series, series_item, subevent, subevent2):
    with scopes_disabled():
        morning = series_item.variations.create(value="Morning")
        series.subevents.update(active=True)
    add_secret(series, "free-1")
    add_secret(series, "free-2", used=True)
    add_secret(series, "day1-1", item=series_item, subevent=subevent)
    add_secret(series, "day1-2", item=series_item, subevent=subevent, used=True)
    add_secret(series, "day1-3", item=series_item, subevent=subevent, used=True)
    add_secret(series, "morning", item=series_item, variation=morning, subevent=subevent2)
    resp = token_client.get(url(series, suffix="summary/"))
    assert resp.status_code == 200
    assert resp.json() == {"total": 6, "used": 3, "unused": 3, "groups": [
        {"item": None, "variation": None, "subevent": None, "total": 2, "used": 1, "unused": 1},
        {"item": series_item.pk, "variation": None, "subevent": subevent.pk, "total": 3, "used": 2, "unused": 1},
        {"item": series_item.pk, "variation": morning.pk, "subevent": subevent2.pk, "total": 1, "used": 0,
         "unused": 1},
    ], "sellable": {
        # the morning ticket of each day: its own secret and the unrestricted one it shares with the other day
        "products": 2, "sold_out": 0,
        "lowest": {"item": series_item.pk, "variation": morning.pk, "subevent": subevent.pk, "left": 2, "own": 1,
                   "shared": 1},
    }}


def test_summary_counts_only_this_event(token_client, event, event2):
    add_secret(event, "mine")
    add_secret(event2, "other", used=True)
    assert token_client.get(url(event, suffix="summary/")).json()["total"] == 1


def test_summary_is_not_taken_for_an_id(token_client, event):
    s = add_secret(event, "foobar")
    assert token_client.get(url(event, suffix="summary/")).data["total"] == 1
    assert token_client.get(url(event, s.pk)).json() == as_json(s)
    assert token_client.patch(url(event, suffix="summary/"), {"used": True}, format="json").status_code == 405
    assert token_client.delete(url(event, suffix="summary/")).status_code == 405
    assert pool(event) == [s]


def test_summary_runs_constant_number_of_queries(token_client, event, item, item2, variation):
    def summary_queries():
        with CaptureQueriesContext(connection) as ctx:
            assert token_client.get(url(event, suffix="summary/")).status_code == 200
        return len(ctx.captured_queries)

    add_secret(event, "plain")
    summary_queries()  # the first request fills per-process caches
    few = summary_queries()
    for i in range(20):
        add_secret(event, f"i{i}", item=item, used=bool(i % 2))
        add_secret(event, f"v{i}", item=item2, variation=variation)
    assert summary_queries() == few


@pytest.mark.parametrize("permissions,status", [
    (["event.orders:read"], 200),
    (["event.orders:checkin"], 403),
    (["event.vouchers:read", "event.items:write", "event.settings.general:write"], 403),
])
def test_summary_needs_permission_to_read_orders(organizer, event, permissions, status):
    add_secret(event, "hidden")
    resp = token_client_for(make_team(organizer, permissions)).get(url(event, suffix="summary/"))
    assert resp.status_code == status
    if status == 200:
        assert (resp.data["total"], resp.data["unused"]) == (1, 1)
    else:
        assert resp.data["detail"].code == "permission_denied"


def test_summary_plugin_disabled_is_404(token_client, disabled_event):
    add_secret(disabled_event, "hidden")
    resp = token_client.get(url(disabled_event, suffix="summary/"))
    assert resp.status_code == 404
    assert resp.data == {"detail": "The Secrets Import plugin is not enabled for this event."}


# --- whitespace around a secret (rules.trim_secrets) -----------------------------------------------------------------


def test_whitespace_around_a_secret_is_removed_on_every_write(token_client, event):
    add_secret(event, "TAKEN")
    resp = token_client.post(url(event), {"secret": " lead"}, format="json")
    assert resp.status_code == 201 and resp.data["secret"] == "lead"
    resp = token_client.patch(url(event, resp.data["id"]), {"secret": "\tpatched\n"}, format="json")
    assert resp.status_code == 200 and resp.data["secret"] == "patched"
    resp = token_client.put(url(event, resp.data["id"]), {"secret": "put\u00a0"}, format="json")
    assert resp.status_code == 200 and resp.data["secret"] == "put"
    bulk = url(event, suffix="bulk_create/")
    resp = token_client.post(bulk, [{"secret": " B-1 "}, {"secret": "B-2\r\n"}], format="json")
    assert resp.status_code == 201 and [row["secret"] for row in resp.data] == ["B-1", "B-2"]
    assert [s.secret for s in pool(event)] == ["TAKEN", "put", "B-1", "B-2"]
    resp = token_client.post(url(event), {"secret": " TAKEN "}, format="json")
    assert resp.status_code == 400 and "already been imported" in str(resp.data["secret"])
    resp = token_client.post(bulk, [{"secret": "X-1"}, {"secret": " X-1"}], format="json")
    assert resp.status_code == 400 and "more than once" in str(resp.data[1]["secret"])


NEVER_USED = 'Tickets of "Shirt" do not get pool secrets, so a secret restricted to it would never be used.'


def test_a_secret_for_a_product_without_pool_secrets_is_refused(token_client, event, item, item2, variation):
    """The backend and the file import store such a secret with a warning; the API has no place for one."""
    resp = token_client.post(url(event), {"secret": "SHIRT-1", "item": item2.pk}, format="json")
    assert resp.status_code == 400 and list(resp.data) == ["item"]
    assert resp.data["item"][0].startswith(NEVER_USED) and "plugin settings" in resp.data["item"][0]
    resp = token_client.post(url(event), {"secret": "SHIRT-1", "variation": variation.pk}, format="json")
    assert resp.status_code == 400 and resp.data["variation"][0].startswith(NEVER_USED)
    resp = token_client.post(url(event, suffix="bulk_create/"), [
        {"secret": "T-1", "item": item.pk}, {"secret": "SHIRT-2", "item": item2.pk, "variation": variation.pk},
    ], format="json")
    assert resp.status_code == 400 and resp.data[0] == {} and resp.data[1]["item"][0].startswith(NEVER_USED)
    secret = add_secret(event, "T-2", item=item)
    resp = token_client.patch(url(event, secret.pk), {"item": item2.pk}, format="json")
    assert resp.status_code == 400 and resp.data["item"][0].startswith(NEVER_USED)
    assert [(s.secret, s.item_id) for s in pool(event)] == [("T-2", item.pk)]
    event.settings.secrets_import_products = [item.pk, item2.pk]  # chosen in the settings: now it gets them
    assert token_client.post(url(event), {"secret": "SHIRT-1", "item": item2.pk}, format="json").status_code == 201


def test_a_secret_kept_on_a_product_without_pool_secrets_can_be_changed(token_client, event, item, item2, variation):
    """Stored through the backend (with a warning), or before the product was taken off the chosen ones."""
    secret = add_secret(event, "SHIRT-1", item=item2)
    resp = token_client.patch(url(event, secret.pk), {"secret": "SHIRT-2", "variation": variation.pk}, format="json")
    assert resp.status_code == 200 and (resp.data["item"], resp.data["variation"]) == (item2.pk, variation.pk)
    assert token_client.patch(url(event, secret.pk), {"item": item.pk, "variation": None},
                              format="json").status_code == 200
