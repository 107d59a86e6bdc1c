"""
Fuzzing: hypothesis generates the input of every endpoint of the plugin and of its file importer.

Covered: the REST API (list with query strings, retrieve and delete with generated IDs in the path, create, PUT,
PATCH, bulk_create, summary), the plugin's fields of pretix' event settings API, the backend pool page (filters and
paging), the add-secret form, the delete-selected form, and ``importer.sniff``/``read_rows``/``import_file`` with
random bytes, generated CSVs and damaged XLSX files. Payloads mix wrong types, nesting, strings of up to 100,000
characters, unicode (control characters, NUL, RTL marks, emoji, every kind of whitespace), nulls, zero, negative and
huge (> 2**63) numbers, IDs of other events and organizers, repeated JSON keys, lists where objects belong and the
other way round, empty and non-JSON bodies.

Every generated case must hold:

1. no server error: pretix' test settings raise the exception instead of answering 500, so any exception fails the
   case with its input; the importer may only raise ``DataImportError``;
2. a rejected request (status >= 400, a re-shown form, an importer error, a dry run) leaves the database unchanged:
   every column of every pool row of all events, the pool's counters per event, the number of log entries, the
   event settings and the running-low alerts;
3. after a successful one the pool's counters still match its rows, and only the addressed event's pool changed,
   the way the request says.

Each example runs in a savepoint that is rolled back afterwards, so every example starts from the same pool.
``FUZZ_EXAMPLES`` sets the number of examples per endpoint (default 40; ``FUZZ_EXAMPLES=2000`` is the full run).
"""
import codecs
import csv
import io
import json
import os
import string
import zipfile
from contextlib import contextmanager
from datetime import date, datetime
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import pytest
from django.db import transaction
from django_scopes import scopes_disabled
from hypothesis import (
    HealthCheck, event as outcome, given, note, settings, strategies as st,
)

from pretix.base.modelimport import DataImportError
from pretix.base.models import Event_SettingsStore, LogEntry

from pretix_secrets_import.api import ImportedSecretFilter
from pretix_secrets_import.importing.columns import ColumnMapping, Source
from pretix_secrets_import.importing.files import (
    DELIMITERS, ENCODINGS, FileFormat, read_rows, sniff,
)
from pretix_secrets_import.importing.pipeline import import_file
from pretix_secrets_import.models import ImportedSecret, PoolAlert
from pretix_secrets_import.pool.rules import DB_ID_MAX, validate_secret
from pretix_secrets_import.sales.sellable import sellable
from tests.helpers import (
    add_secret, add_ticket, counted_summary, pool_summary, url,
)
from tests.importing.test_importer import xlsx

pytestmark = [pytest.mark.django_db, pytest.mark.heavy]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 40))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=False, print_blob=True,
    # The fixtures' data is shared by all examples on purpose: every example runs in a rolled-back savepoint.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.filter_too_much],
)


# --- the shared pool ----------------------------------------------------------------------------------------------


@pytest.fixture
def world(organizer, event, event2, disabled_event, other_organizer_event, series, subevent, item, item2, variation,
          series_item, event2_item):
    """Pools in several events of two organizers, tickets, and objects of each kind in and outside of ``event``."""
    with scopes_disabled():
        event2_variation = event2_item.variations.create(value="L")
        foreign_item = other_organizer_event.items.create(name="Foreign", default_price=1)
        secrets = [
            add_secret(event, "FREE-1"), add_secret(event, "FREE-2"), add_secret(event, "USED-1", used=True),
            add_secret(event, "ITEM-1", item=item), add_secret(event, "VAR-1", item=item2, variation=variation),
            add_secret(event, "VAR-USED", item=item2, variation=variation, used=True),
            add_secret(event2, "E2-1"), add_secret(event2, "E2-USED", used=True, item=event2_item),
            add_secret(series, "S-1", subevent=subevent), add_secret(series, "S-2"),
            add_secret(series, "S-USED", used=True, subevent=subevent),
            add_secret(other_organizer_event, "F-1"), add_secret(other_organizer_event, "FREE-3"),
        ]
        add_ticket(event, "USED-1")
        add_ticket(event2, "TICKET-ONLY")  # a ticket secret that is in no pool
        add_ticket(other_organizer_event, "F-TICKET")
        items = {item.pk, item2.pk, series_item.pk, event2_item.pk, foreign_item.pk}
        items |= set(event.items.values_list("pk", flat=True))
        max_id = max(s.pk for s in secrets)
    return SimpleNamespace(
        organizer=organizer, event=event, event2=event2, series=series, disabled=disabled_event,
        foreign=other_organizer_event, item=item, item2=item2, variation=variation, subevent=subevent,
        events=[event, event2, series, disabled_event, other_organizer_event],
        secret_ids=[s.pk for s in secrets] + [max_id + 1, max_id + 1000],
        secrets=[s.secret for s in secrets] + ["TICKET-ONLY", "F-TICKET"],
        ids=sorted(items | {variation.pk, event2_variation.pk, subevent.pk} | set(s.pk for s in secrets)),
    )


def snapshot(world):
    """Everything a rejected request must leave as it is."""
    fields = [f.attname for f in ImportedSecret._meta.concrete_fields]
    with scopes_disabled():
        rows = {row[0]: row for row in ImportedSecret.objects.order_by("id").values_list(*fields)}
        return SimpleNamespace(
            rows=rows,
            counts={e.pk: pool_summary(e) for e in world.events},
            logs=LogEntry.objects.count(),
            settings=list(Event_SettingsStore.objects.order_by("object_id", "key").values_list(
                "object_id", "key", "value")),
            alerts=list(PoolAlert.objects.order_by("id").values_list("event_id", "item_id", "variation_id",
                                                                     "subevent_id")),
        )


def assert_unchanged(before, after, what):
    assert after.rows == before.rows, f"{what} changed the pool"
    assert after.counts == before.counts, f"{what} changed the pool's counters"
    assert after.logs == before.logs, f"{what} wrote a log entry"
    assert after.settings == before.settings, f"{what} changed the event settings"
    assert after.alerts == before.alerts, f"{what} changed the alerts"


def assert_counted(world):
    with scopes_disabled():
        for e in world.events:
            assert pool_summary(e) == counted_summary(e), f"the counters of {e.slug} are wrong"


def changes(before, after):
    """Pool rows added, removed and changed between two snapshots, by ID."""
    added = after.rows.keys() - before.rows.keys()
    removed = before.rows.keys() - after.rows.keys()
    changed = {pk for pk in before.rows.keys() & after.rows.keys() if before.rows[pk] != after.rows[pk]}
    return added, removed, changed


def event_of(snap, pk):
    return snap.rows[pk][2]  # id, organizer_id, event_id, ...


@contextmanager
def rolled_back():
    """One example: everything it writes is undone afterwards, also when it fails."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def short(value, limit=600):
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def call(client, method, path, **kwargs):
    """A request that must not fail with a server error; the exception pretix' test settings raise names the input."""
    note(f"{method.upper()} {short(path)} {short(kwargs)}")
    try:
        resp = getattr(client, method)(path, **kwargs)
    except Exception as e:
        raise AssertionError(f"{method.upper()} {short(path)} {short(kwargs)} raised {type(e).__name__}: {e}") from e
    assert resp.status_code < 500, f"{method.upper()} {short(path)} {short(kwargs)}: {resp.status_code}"
    outcome(f"{method.upper()} {resp.status_code}")  # --hypothesis-show-statistics shows how many cases got through
    return resp


def nul_in_query(resp):
    """pretix' middleware answers 400 to every request with NUL in a query parameter."""
    return any("\x00" in key + "".join(values) for key, values in resp.wsgi_request.GET.lists())


# --- strategies ---------------------------------------------------------------------------------------------------

# No surrogates: they are not valid JSON (nor UTF-8).
CHARS = st.characters(blacklist_categories=("Cs",))
ODD = ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\xa0", "\u00ad", "\u200b", "\u200e", "\u200f", "\u202e",
       "\u2028", "\u2029", "\u3000", "\ufeff", "\ufffd", "\uffff", "\U0010ffff", "\t", "\n", "\r", "\x0b", "\x0c",
       "\x1c", " ", "😀", "👨‍👩‍👧", "🇩🇪", "e\u0301", "ß", "İ", "ﬁ", "١", "１", "'", '"', "\\", "%", "_", "*", "<", ";",
       ",", "|", "=", "\u05d0", "\u0645"]
odd_chars = st.sampled_from(ODD)
PRINTABLE = "".join(c for c in string.printable if not c.isspace())
valid_secrets = st.text(st.sampled_from(PRINTABLE + "ÄÖÜäöüß€😀-_"), min_size=1, max_size=40) | st.builds(
    lambda c, n: c * n, st.sampled_from("Aé😀"), st.sampled_from([254, 255]))


def huge_texts(min_size=250, max_size=100_000):
    """Long strings without generating every character: a short unit repeated up to ``max_size`` characters."""
    return st.builds(
        lambda unit, n: (unit * (n // len(unit) + 1))[:n],
        st.text(CHARS, min_size=1, max_size=3) | odd_chars,
        st.sampled_from([255, 256, 1000, 65536, max_size]) | st.integers(min_size, max_size),
    )


texts = st.text(CHARS, max_size=40) | st.lists(odd_chars | st.text(CHARS, max_size=3), max_size=8).map("".join)


def secret_strategy(world):
    return st.one_of(
        valid_secrets, valid_secrets, st.sampled_from(world.secrets), texts,
        st.builds(lambda a, b, c: a + b + c, valid_secrets, odd_chars, valid_secrets | st.just("")),
        huge_texts(),
    )


numbers = st.one_of(
    st.integers(-10, 10), st.integers(-2 ** 70, 2 ** 70),
    st.sampled_from([0, -1, DB_ID_MAX, DB_ID_MAX + 1, -DB_ID_MAX - 2, 2 ** 64, 10 ** 30, -(10 ** 30)]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1.0, 1.5, -0.0, 1e20, 1e400]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    texts, inner, max_size=4), max_leaves=12)
number_strings = st.sampled_from([
    "1", " 1", "1 ", "01", "+1", "-1", "0", "1.0", "1.5", "1e3", "0x10", "１", "١", "²", "", "null", "true", "NaN",
    str(DB_ID_MAX), str(DB_ID_MAX + 1), "9" * 30, "-" + "9" * 30,
])


def id_strategy(world):
    """IDs of this and other events and organizers, and everything that is not an ID."""
    return st.one_of(
        st.sampled_from(world.ids), st.sampled_from(world.ids), st.sampled_from(world.ids).map(str), st.none(),
        numbers, number_strings, texts, st.lists(st.sampled_from(world.ids), max_size=2), st.dictionaries(
            st.sampled_from(["id", "pk"]), st.sampled_from(world.ids), max_size=1),
    )


used_values = st.one_of(
    st.booleans(), st.booleans(), st.none(), numbers, st.lists(st.booleans(), max_size=1),
    st.sampled_from(["true", "false", "True", "yes", "no", "on", "off", "1", "0", "", "maybe", "t"]),
)
FIELDS = ["secret", "used", "item", "variation", "subevent", "id"]


def row_strategy(world, valid_only=False):
    """One pool entry as the API takes it: plausible ones often, junk in every field otherwise."""
    ids = st.sampled_from(world.ids) | st.none()
    plausible = st.fixed_dictionaries({"secret": valid_secrets}, optional={
        "used": st.booleans(), "item": ids, "variation": ids, "subevent": ids,
    })
    if valid_only:
        return plausible
    junk = st.fixed_dictionaries({}, optional={
        "secret": secret_strategy(world) | json_values, "used": used_values, "item": id_strategy(world),
        "variation": id_strategy(world), "subevent": id_strategy(world), "id": id_strategy(world),
    })
    extra = st.dictionaries(texts, json_values, max_size=3)
    return plausible | st.builds(lambda row, more: {**more, **row}, junk, extra)


def repeated_keys(world):
    """A JSON object as raw text with a key given more than once, e.g. ``{"secret": "A", "secret": 1}``."""
    pair = st.tuples(st.sampled_from(FIELDS), secret_strategy(world) | id_strategy(world) | used_values)
    return st.lists(pair, min_size=2, max_size=6).filter(lambda pairs: len({k for k, _v in pairs}) < len(pairs)).map(
        lambda pairs: "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}")


CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
                 "application/json; charset=utf-16", "application/json; charset=nonsense", "text/plain",
                 "application/x-www-form-urlencoded", "text/json", "application/octet-stream",
                 "multipart/form-data; boundary=BoUnDaRy", "multipart/form-data"]


def bodies(world, payload):
    """``client.<method>`` keyword arguments for a body: ``payload`` as JSON mostly, otherwise every kind of junk."""

    def as_json(value, ascii_only):
        return {"data": json.dumps(value, ensure_ascii=ascii_only), "content_type": "application/json"}

    raw = st.one_of(
        st.just(""), st.text(CHARS, max_size=60), st.sampled_from([
            "{", "[", "}", "null", "[]", "{}", "[{}]", "[[]]", '"secret"', "{'secret': 'A'}", '{"secret": "A",}',
            "NaN", "Infinity", "-Infinity", '{"secret": NaN}', '{"item": 1e999}', "\ufeff{}", "\x00",
            '{"secret": "A"} {"secret": "B"}', "[" * 2000 + "]" * 2000, '{"a":' * 1100 + "1" + "}" * 1100,
        ]),
        huge_texts(max_size=20_000),
    )
    return st.one_of(
        st.builds(as_json, payload, st.booleans()),
        st.builds(as_json, payload, st.booleans()),
        st.builds(as_json, json_values, st.booleans()),
        repeated_keys(world).map(lambda text: {"data": text, "content_type": "application/json"}),
        st.builds(lambda text, ct: {"data": text, "content_type": ct}, raw, st.sampled_from(CONTENT_TYPES)),
        st.builds(lambda row: {"data": urlencode(row, doseq=True), "content_type": "application/x-www-form-urlencoded"},
                  st.dictionaries(st.sampled_from(FIELDS), texts | number_strings, max_size=5)),
        st.just({}),  # no body at all
    )


def path_ids(world):
    """What follows ``imported_secrets/`` in a detail URL: IDs of every event and organizer, and non-IDs."""
    return st.one_of(
        st.sampled_from(world.secret_ids), st.sampled_from(world.secret_ids), number_strings,
        st.integers(-2 ** 70, 2 ** 70), texts, st.sampled_from(["summary", "bulk_create", "..", ".", "1.json"]),
    ).map(lambda value: quote(str(value), safe="")).filter(bool)


def api_events(world):
    """Mostly the event with products and variations; sometimes a series, another event, organizer or no plugin."""
    return st.sampled_from([world.event] * 6 + [world.series, world.event2, world.disabled, world.foreign])


# --- REST API -------------------------------------------------------------------------------------------------------

QUERY_KEYS = ["used", "item", "variation", "subevent", "secret", "ordering", "page", "page_size"]
QUERY_VALUES = ["true", "false", "id", "-id", "secret", "-secret", "used", "-used", "id,-secret", "item", "created",
                "-", ""]


def query_strings(world):
    values = st.one_of(st.sampled_from(QUERY_VALUES), st.sampled_from(world.ids).map(str), st.sampled_from(
        world.secrets), number_strings, texts, huge_texts(max_size=5000))
    pairs = st.lists(st.tuples(st.sampled_from(QUERY_KEYS) | texts, values), max_size=6).map(urlencode)
    raw = st.text(st.sampled_from(string.ascii_letters + string.digits + "%&=+;?#/-_.~"), max_size=40)
    return pairs | pairs | raw


@FUZZ
@given(data=st.data())
def test_list(world, token_client, data):
    ev = data.draw(api_events(world), label="event")
    query = data.draw(query_strings(world), label="query")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, "get", url(ev) + "?" + query)
        assert_unchanged(before, snapshot(world), "GET")
        if resp.status_code == 200:
            with scopes_disabled():
                matching = ImportedSecretFilter(
                    resp.wsgi_request.GET, queryset=ImportedSecret.objects.filter(event=ev)).qs
                rows = {s.pk: s.as_row() for s in ImportedSecret.objects.filter(event=ev)}
                assert resp.data["count"] == matching.count(), "the count differs from the rows the filters match"
            assert len(resp.data["results"]) <= 50
            for result in resp.data["results"]:
                assert rows[result["id"]] == {k: v for k, v in result.items() if k != "id"}


@FUZZ
@given(data=st.data())
def test_summary(world, token_client, data):
    ev = data.draw(api_events(world), label="event")
    rows = data.draw(st.lists(row_strategy(world, valid_only=True), max_size=8), label="rows")
    query = data.draw(query_strings(world), label="query")
    with rolled_back():
        call(token_client, "post", url(ev, suffix="bulk_create/"), data=rows, format="json")  # may be refused
        before = snapshot(world)
        resp = call(token_client, "get", url(ev, suffix="summary/") + "?" + query)
        assert_unchanged(before, snapshot(world), "GET summary")
        if resp.status_code == 200:
            groups = counted_summary(ev)
            total, unused = sum(g["total"] for g in groups), sum(g["unused"] for g in groups)
            with scopes_disabled():
                rows = sellable(ev, on_sale=True)
            assert resp.json() == {"total": total, "used": total - unused, "unused": unused, "groups": groups,
                                   "sellable": {"products": len(rows), "sold_out": sum(1 for r in rows if not r.left),
                                                "lowest": rows[0].as_dict() if rows else None}}
        else:
            assert ev in (world.disabled, world.foreign) or nul_in_query(resp), resp.status_code


@FUZZ
@given(data=st.data())
def test_retrieve(world, token_client, data):
    ev = data.draw(api_events(world), label="event")
    pk = data.draw(path_ids(world), label="id")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, "get", url(ev, pk))
        assert_unchanged(before, snapshot(world), "GET")
        if resp.status_code == 200 and "id" in resp.data:
            assert event_of(before, resp.data["id"]) == ev.pk, "an entry of another event was shown"


@FUZZ
@given(data=st.data())
def test_delete(world, token_client, data):
    ev = data.draw(api_events(world), label="event")
    pk = data.draw(path_ids(world), label="id")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, "delete", url(ev, pk))
        after = snapshot(world)
        if resp.status_code >= 400:
            assert_unchanged(before, after, "a refused DELETE")
            return
        assert resp.status_code == 204
        added, removed, changed = changes(before, after)
        assert not added and not changed and len(removed) == 1, (added, removed, changed)
        gone = before.rows[removed.pop()]
        assert gone[2] == ev.pk and gone[4] is False, f"deleted {gone}"  # this event's, unused
        assert after.logs == before.logs + 1
        assert_counted(world)


def check_write(world, ev, before, resp, expected_status, what):
    """The common properties of a write; returns the rows added and changed on success."""
    after = snapshot(world)
    if resp.status_code >= 400:
        assert_unchanged(before, after, f"a refused {what}")
        return None
    assert resp.status_code == expected_status, (resp.status_code, resp.content[:500])
    added, removed, changed = changes(before, after)
    assert not removed, f"{what} deleted {removed}"
    for pk in added | changed:
        assert event_of(after, pk) == ev.pk, f"{what} wrote to another event: {after.rows[pk]}"
    assert after.settings == before.settings and after.alerts == before.alerts
    assert after.logs == before.logs + 1, f"{what} wrote {after.logs - before.logs} log entries"
    assert_counted(world)
    with scopes_disabled():
        for pk in added | changed:
            validate_secret(ImportedSecret.objects.get(pk=pk).secret)
    return added, changed


def as_api(pk):
    with scopes_disabled():
        return {"id": pk, **ImportedSecret.objects.get(pk=pk).as_row()}


@FUZZ
@given(data=st.data())
def test_create(world, token_client, data):
    ev = data.draw(api_events(world), label="event")
    body = data.draw(bodies(world, row_strategy(world)), label="body")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, "post", url(ev), **body)
        result = check_write(world, ev, before, resp, 201, "POST")
        if result:
            added, changed = result
            assert not changed and len(added) == 1
            assert resp.json() == as_api(added.pop())


@pytest.mark.parametrize("method", ["put", "patch"])
@FUZZ
@given(data=st.data())
def test_update(world, token_client, method, data):
    ev = data.draw(api_events(world), label="event")
    pk = data.draw(path_ids(world), label="id")
    body = data.draw(bodies(world, row_strategy(world)), label="body")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, method, url(ev, pk), **body)
        result = check_write(world, ev, before, resp, 200, method.upper())
        if result:
            added, changed = result
            assert not added and len(changed) <= 1
            assert before.rows[resp.data["id"]][4] is False, "a used secret was changed"
            assert resp.json() == as_api(resp.data["id"])


@FUZZ
@given(data=st.data())
def test_bulk_create(world, token_client, data):
    ev = data.draw(api_events(world), label="event")
    rows = st.lists(row_strategy(world), max_size=8) | st.lists(row_strategy(world, valid_only=True), max_size=8)
    # around the limit of 500 entries per request
    many = st.builds(lambda n, used: [{"secret": f"BULK-{i}", "used": used} for i in range(n)],
                     st.sampled_from([500, 501]), st.booleans())
    body = data.draw(bodies(world, rows | rows | many | row_strategy(world)), label="body")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, "post", url(ev, suffix="bulk_create/"), **body)
        result = check_write(world, ev, before, resp, 201, "bulk_create")
        if result:
            added, changed = result
            assert not changed and len(added) == len(resp.data) > 0
            assert resp.json() == [as_api(item["id"]) for item in resp.data]
            assert [item["id"] for item in resp.data] == sorted(added), "not in the order sent"


# --- event settings API -------------------------------------------------------------------------------------------

def settings_payloads(world):
    ids = st.sampled_from(world.ids)
    return st.fixed_dictionaries({}, optional={
        "secrets_import_products": st.lists(ids, max_size=4) | st.lists(id_strategy(world), max_size=3)
        | id_strategy(world),
        "secrets_import_when_empty": st.sampled_from(["refuse", "random", "REFUSE", " random", ""]) | scalars,
        "secrets_import_low_threshold": st.integers(-5, 10_005) | st.sampled_from([0, 10_000, 10_001]) | scalars,
        "ticket_secret_generator": st.sampled_from(["imported_secrets", "random", "pretix_sig1", ""]) | scalars,
    }) | st.dictionaries(texts, json_values, max_size=3)


def settings_url(ev):
    return f"/api/v1/organizers/{ev.organizer.slug}/events/{ev.slug}/settings/"


PLUGIN_SETTINGS = ("secrets_import_products", "secrets_import_when_empty", "secrets_import_low_threshold",
                   "ticket_secret_generator")


@FUZZ
@given(data=st.data())
def test_event_settings(world, token_client, data):
    ev = data.draw(st.sampled_from([world.event] * 4 + [world.series, world.disabled, world.foreign]), label="event")
    body = data.draw(bodies(world, settings_payloads(world)), label="body")
    with rolled_back():
        before = snapshot(world)
        resp = call(token_client, "patch", settings_url(ev), **body)
        after = snapshot(world)
        if resp.status_code >= 400:
            assert_unchanged(before, after, "a refused settings PATCH")
            return
        assert resp.status_code == 200
        assert after.rows == before.rows and after.counts == before.counts
        stored = call(token_client, "get", settings_url(ev)).json()
        for key in PLUGIN_SETTINGS:
            if key in resp.data:
                assert stored[key] == resp.json()[key], f"{key} reads back differently"
        with scopes_disabled():
            products = stored.get("secrets_import_products") or []
            assert set(products) <= set(ev.items.values_list("pk", flat=True)), "products of another event stored"


# --- backend pages ------------------------------------------------------------------------------------------------

def pool_page_url(ev, suffix=""):
    return f"/control/event/{ev.organizer.slug}/{ev.slug}/secrets_import/{suffix}"


def form_value(world):
    return st.one_of(st.sampled_from(world.ids).map(str), number_strings, texts, huge_texts(max_size=5000),
                     st.sampled_from(["none", "yes", "no", "", "1", "on"]))


def form_values(world):
    """A form field's value, or several values under the same name."""
    return form_value(world) | form_value(world) | st.lists(form_value(world), max_size=3)


@FUZZ
@given(data=st.data())
def test_pool_page(world, backend_client, data):
    ev = data.draw(st.sampled_from([world.event] * 3 + [world.series, world.event2, world.disabled]), label="event")
    params = data.draw(st.dictionaries(
        st.sampled_from(["search", "used", "item", "after", "before", "last"]) | texts.filter(
            lambda key: key != "subevent"),
        form_values(world) | st.sampled_from(world.secret_ids).map(str), max_size=5), label="params")
    # pretix' page context (not the plugin) reads ?subevent= on every event page as a date's ID and fails on anything
    # that int() does not take, so only such values are sent.
    subevent = data.draw(st.none() | st.sampled_from(world.ids).map(str) | st.sampled_from(
        ["0", "", "-1", " 7 ", "１", "9" * 30]) | st.lists(st.sampled_from(world.ids).map(str), max_size=3),
        label="subevent")
    if subevent is not None:
        params["subevent"] = subevent
    with rolled_back():
        before = snapshot(world)
        resp = call(backend_client, "get", pool_page_url(ev), data=params)
        assert_unchanged(before, snapshot(world), "the pool page")
        if not nul_in_query(resp):
            assert resp.status_code == (404 if ev == world.disabled else 200)
        if resp.status_code == 200:
            shown = [s.pk for s in resp.context["secrets"]]
            assert all(event_of(before, pk) == ev.pk for pk in shown), "the page shows another event's secrets"
            assert shown == sorted(shown) and len(shown) <= 50


@FUZZ
@given(data=st.data())
def test_add_secret_form(world, backend_client, data):
    ev = data.draw(st.sampled_from([world.event] * 3 + [world.series, world.disabled]), label="event")
    secret = secret_strategy(world) | st.lists(secret_strategy(world), max_size=2)
    form = data.draw(st.fixed_dictionaries({"secret": secret}, optional={
        "item": form_values(world), "variation": form_values(world), "subevent": form_values(world),
        "add_another": st.just("1"),
    }) | st.dictionaries(st.sampled_from(FIELDS) | texts, form_values(world), max_size=4), label="form")
    with rolled_back():
        before = snapshot(world)
        resp = call(backend_client, "post", pool_page_url(ev, "add"), data=form)
        after = snapshot(world)
        if resp.status_code != 302:  # the form is shown again with its errors
            assert resp.status_code == (404 if ev == world.disabled else 200)
            assert_unchanged(before, after, "a refused add form")
            return
        added, removed, changed = changes(before, after)
        assert len(added) == 1 and not removed and not changed
        pk = added.pop()
        assert event_of(after, pk) == ev.pk and after.rows[pk][4] is False
        with scopes_disabled():
            validate_secret(ImportedSecret.objects.get(pk=pk).secret)
        assert after.logs == before.logs + 1
        assert_counted(world)


@FUZZ
@given(data=st.data())
def test_delete_selected_form(world, backend_client, data):
    ev = data.draw(st.sampled_from([world.event] * 3 + [world.series, world.event2]), label="event")
    selected = data.draw(st.lists(st.sampled_from(world.secret_ids).map(str) | form_value(world), max_size=6),
                         label="selected")
    confirmed = data.draw(st.booleans(), label="confirmed")
    with rolled_back():
        before = snapshot(world)
        resp = call(backend_client, "post", pool_page_url(ev, "delete"),
                    data={"secret": selected, **({"confirm": "1"} if confirmed else {})})
        after = snapshot(world)
        added, removed, changed = changes(before, after)
        wanted = {int(v) for v in selected if v.isascii() and v.isdigit() and len(v) <= 30}  # longer: never an ID
        deletable = {pk for pk, row in before.rows.items() if pk in wanted and row[2] == ev.pk and not row[4]}
        # unconfirmed, the confirmation page asks first; with nothing to delete, there is nothing to confirm
        expected = deletable if confirmed else set()
        assert resp.status_code == (200 if deletable and not confirmed else 302)
        assert not added and not changed and removed == expected
        assert after.logs == before.logs + bool(expected)  # one entry per deletion
        assert_counted(world)


# --- the file importer --------------------------------------------------------------------------------------------

def mappings(world, width=6):
    column = st.integers(0, width) | st.sampled_from([50, 10_000])
    restriction = st.one_of(
        st.none(), st.builds(Source.column, column), st.builds(Source.fixed, st.sampled_from(world.ids)),
    )
    return st.builds(ColumnMapping, secret=column, item=restriction, variation=restriction, subevent=restriction)


def formats():
    return st.builds(FileFormat, kind=st.just("csv"), encoding=st.sampled_from(ENCODINGS + ("utf-16-le", "ascii")),
                     delimiter=st.sampled_from(DELIMITERS), has_header=st.booleans())


def cell_texts(world):
    names = ["Ticket", "Shirt", "S", "M", "L", "Day 1", "2030-01-01", "2030-01-01 10:00", "Other ticket", "Foreign",
             "ticket", " Ticket ", "Secret", "Product", "Variation", "Date", "code"]
    return st.one_of(
        valid_secrets, valid_secrets, st.sampled_from(world.secrets), st.sampled_from(names),
        st.sampled_from(world.ids).map(str), number_strings, texts, huge_texts(max_size=400),
        st.builds(lambda a, b: a + b, valid_secrets, odd_chars), st.just(""), st.sampled_from([" ", "\t", '"', '""'])
    )


def run_import(world, ev, raw: bytes, fmt, mapping, dry_run=False, filename="secrets.csv"):
    """Import ``raw`` and check the properties; returns the result (``None`` after DataImportError)."""
    note(f"file {short(raw)} format {fmt} mapping {mapping} dry_run {dry_run}")
    before = snapshot(world)
    result = None
    try:
        with scopes_disabled():
            result = import_file(ev, io.BytesIO(raw), fmt, mapping, dry_run=dry_run, filename=filename)
    except DataImportError as e:
        assert str(e), "an empty error message"
    except Exception as e:
        raise AssertionError(f"import_file({short(raw)}, {fmt}, {mapping}) raised {type(e).__name__}: {e}") from e
    after = snapshot(world)
    outcome("unreadable" if result is None else "line errors" if result.error_count else "imported")
    if result is None or result.error_count or dry_run:
        assert_unchanged(before, after, "a failed import")
        if result is not None:
            assert result.imported == 0
            assert result.error_count >= len(result.errors) and (dry_run or result.errors)
            for error in result.errors:
                assert error.line >= 1 and error.message and error.column, error
        return result
    added, removed, changed = changes(before, after)
    assert not removed and not changed
    assert len(added) == result.imported == result.lines, (len(added), result)
    assert all(event_of(after, pk) == ev.pk for pk in added)
    assert after.logs == before.logs + 1
    assert_counted(world)
    with scopes_disabled():
        for secret in ImportedSecret.objects.filter(pk__in=added).values_list("secret", flat=True):
            validate_secret(secret)
    return result


def check_read(raw: bytes, fmt, filename="secrets.csv"):
    """``sniff`` and ``read_rows`` either work or raise DataImportError."""
    try:
        with scopes_disabled():
            sniffed = sniff(io.BytesIO(raw), filename)
            assert sniffed.kind in ("csv", "xlsx")
            if sniffed.kind == "csv":
                codecs.lookup(sniffed.encoding)
                assert sniffed.delimiter in DELIMITERS
            for f in (sniffed, fmt):
                last = 0
                for line, cells in read_rows(io.BytesIO(raw), f):
                    assert line > last and all(isinstance(c, str) for c in cells) and any(c.strip() for c in cells)
                    last = line
    except DataImportError as e:
        assert str(e)
        return None
    except Exception as e:
        raise AssertionError(f"reading {short(raw)} ({fmt}) raised {type(e).__name__}: {e}") from e
    return sniffed


@FUZZ
@given(data=st.data())
def test_import_random_bytes(world, data):
    ev = data.draw(st.sampled_from([world.event, world.series]), label="event")
    raw = data.draw(st.binary(max_size=300) | st.builds(lambda bom, body: bom + body, st.sampled_from(
        [codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, b"PK\x03\x04"]),
        st.binary(max_size=300)), label="raw")
    filename = data.draw(st.sampled_from(["secrets.csv", "secrets.xlsx", "SECRETS.XLSX", "x.txt", ""]), label="name")
    fmt = data.draw(formats(), label="format")
    mapping = data.draw(mappings(world), label="mapping")
    with rolled_back():
        sniffed = check_read(raw, fmt, filename)
        run_import(world, ev, raw, data.draw(st.sampled_from([sniffed or fmt, fmt]), label="use"), mapping,
                   dry_run=data.draw(st.booleans(), label="dry_run"), filename=filename)


def render_csv(rows, delimiter, quoting, terminator, blank_lines):
    out = io.StringIO()
    if quoting == "raw":  # no quoting at all: delimiters and quotes inside cells break the columns, as in real files
        for row in rows:
            out.write(delimiter.join(row) + terminator)
    else:
        writer = csv.writer(out, delimiter=delimiter, lineterminator=terminator,
                            quoting=csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL)
        for row in rows:
            writer.writerow(row)
    lines = out.getvalue().split(terminator)
    for index, blank in blank_lines:  # blank and whitespace-only lines anywhere
        lines.insert(index % (len(lines) + 1), blank)
    return terminator.join(lines)


@FUZZ
@given(data=st.data())
def test_import_generated_csv(world, data):
    ev = data.draw(st.sampled_from([world.event] * 3 + [world.series]), label="event")
    width = data.draw(st.integers(1, 4), label="width")
    rows = data.draw(st.lists(st.lists(cell_texts(world), min_size=1, max_size=width), max_size=12), label="rows")
    delimiter = data.draw(st.sampled_from(DELIMITERS), label="delimiter")
    quoting = data.draw(st.sampled_from(["minimal", "all", "raw"]), label="quoting")
    terminator = data.draw(st.sampled_from(["\n", "\r\n", "\r"]), label="terminator")
    blanks = data.draw(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["", " ", "\t", delimiter * 2])),
                                max_size=3), label="blank lines")
    encoding = data.draw(st.sampled_from(ENCODINGS), label="encoding")
    bom = data.draw(st.booleans(), label="bom")
    text = render_csv(rows, delimiter, quoting, terminator, blanks)
    raw = text.encode(encoding, errors="replace")  # a character the encoding lacks becomes "?", as in Excel
    if bom and encoding == "utf-8":  # utf-16/32 always write one
        raw = codecs.BOM_UTF8 + raw
    has_header = data.draw(st.booleans(), label="has_header")
    explicit = FileFormat(kind="csv", encoding="utf-8-sig" if encoding == "utf-8" else encoding, delimiter=delimiter,
                          has_header=has_header)
    fmt = data.draw(st.sampled_from([explicit, explicit, None]) | formats(), label="format") or explicit
    mapping = data.draw(mappings(world, width) | st.builds(ColumnMapping, secret=st.integers(0, width)),
                        label="mapping")
    dry_run = data.draw(st.booleans(), label="dry_run")
    with rolled_back():
        with scopes_disabled():
            taken = set(ImportedSecret.objects.filter(organizer=world.organizer).values_list("secret", flat=True))
        taken |= {"USED-1", "TICKET-ONLY"}  # tickets of the organizer
        check_read(raw, fmt)
        result = run_import(world, ev, raw, fmt, mapping, dry_run=dry_run)
        if fmt is not explicit or quoting == "raw":
            return
        # The file was read as written: the import must fail exactly when one of its secrets is not acceptable.
        decoded = raw.decode(explicit.encoding)
        lines = [cells for cells in csv.reader(io.StringIO(decoded, newline=""), delimiter=delimiter)
                 if any(c.strip() for c in cells)]
        lines = lines[1:] if has_header else lines
        secrets = [cells[mapping.secret].strip() if mapping.secret < len(cells) else "" for cells in lines]
        bad = [s for s in secrets if not s or len(s) > 255 or any(c.isspace() for c in s) or not s.isprintable()
               or s in taken]
        repeated = len(set(secrets)) < len(secrets)
        if not lines:
            assert result is None, "a file without secrets was accepted"
        elif bad or repeated:
            assert result.error_count, f"{bad or 'a repeated secret'} was accepted"
        elif not (mapping.item or mapping.variation or mapping.subevent):
            assert result.error_count == 0, f"valid secrets were refused: {result.errors[:5]}"
            if not dry_run:
                with scopes_disabled():
                    stored = list(ImportedSecret.objects.filter(event=ev, secret__in=secrets).order_by("id")
                                  .values_list("secret", flat=True))
                assert stored == secrets, "the stored secrets differ from the file"


def damage(raw, how, member_index, payload):
    """A copy of the XLSX (zip) file with one member replaced, dropped or cut short, or the whole file cut."""
    if how == "truncate":
        return raw[:len(payload) * 37 % max(len(raw), 1)]
    source = zipfile.ZipFile(io.BytesIO(raw))
    names = source.namelist()
    victim = names[member_index % len(names)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in names:
            content = source.read(name)
            if name == victim:
                if how == "drop":
                    continue
                content = {"replace": payload, "cut": content[:len(content) // 2], "append": content + payload}[how]
            target.writestr(name, content)
    return out.getvalue()


@FUZZ
@given(data=st.data())
def test_import_xlsx(world, data):
    ev = data.draw(st.sampled_from([world.event, world.series]), label="event")
    # XML cannot hold control characters; openpyxl refuses them
    printable = cell_texts(world).map(lambda c: "".join(ch for ch in c if ch.isprintable()))
    cells = printable | st.integers(-2 ** 40, 2 ** 40) | st.floats(allow_nan=False, allow_infinity=False) | \
        st.booleans() | st.none() | st.dates(min_value=date(1901, 1, 1)) | st.datetimes(min_value=datetime(1901, 1, 1))
    rows = data.draw(st.lists(st.lists(cells, max_size=4), max_size=8), label="rows")
    raw = xlsx(rows)
    how = data.draw(st.sampled_from(["none", "replace", "drop", "cut", "append", "truncate"]), label="damage")
    if how != "none":
        payload = st.binary(max_size=200) | st.just(
            b"<?xml version='1.0'?><worksheet><sheetData><row><c t='s'><v>99</v></c></row></sheetData></worksheet>")
        raw = damage(raw, how, data.draw(st.integers(0, 20), label="member"), data.draw(payload, label="payload"))
    fmt = FileFormat(kind="xlsx", has_header=data.draw(st.booleans(), label="has_header"))
    mapping = data.draw(mappings(world), label="mapping")
    with rolled_back():
        check_read(raw, fmt, "secrets.xlsx")
        run_import(world, ev, raw, fmt, mapping, dry_run=data.draw(st.booleans(), label="dry_run"),
                   filename="secrets.xlsx")
