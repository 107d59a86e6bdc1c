"""The "Imported ticket secrets" export, run through pretix' exporter framework."""
import csv
import io
from datetime import datetime, timezone
from types import SimpleNamespace

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now
from django_scopes import scope, scopes_disabled

from pretix.base.i18n import language
from pretix.base.models import Event, Order

from pretix_secrets_import import exporters
from pretix_secrets_import.exporters import ImportedSecretExporter
from pretix_secrets_import.models import ImportedSecret
from tests.gate.test_states import place, post
from tests.helpers import add_secret, make_team, token_client_for
from tests.sales.test_generator import use_generator

pytestmark = pytest.mark.django_db

HEADER = [
    "Secret", "Used", "Used at", "Restricted to product", "Restricted to variation", "Restricted to date",
    "Order code", "Position ID", "Ticket product", "Ticket variation", "Ticket date", "Attendee name",
    "Ticket status",
]
# An event that is not a series has no date columns.
UNDATED_HEADER = [name for name in HEADER if name not in ("Restricted to date", "Ticket date")]
NO_TICKET = [""] * 6


def sell_ticket(event, secret, item, status=Order.STATUS_PAID, variation=None, subevent=None, canceled=False,
                attendee="Ada Lovelace"):
    """A ticket carrying ``secret`` in an order of its own with the given status."""
    with scopes_disabled():
        order = Order.objects.create(
            event=event, total=0, status=status, datetime=now(), expires=now(),
            sales_channel=event.organizer.sales_channels.get(identifier="web"),
        )
        return order.positions.create(
            item=item, variation=variation, subevent=subevent, price=0, secret=secret, canceled=canceled,
            positionid=1, attendee_name_parts={"full_name": attendee} if attendee else {},
        )


def render(event, fmt="default"):
    with scope(organizer=event.organizer):
        # A fresh event object, as pretix' export task loads it
        exporter = ImportedSecretExporter(event=Event.objects.get(pk=event.pk), organizer=event.organizer)
        return exporter.render({"_format": fmt})


def export_rows(event):
    filename, content_type, data = render(event)
    assert (filename, content_type) == (f"{event.slug}_imported_secrets.csv", "text/csv")
    return list(csv.reader(io.StringIO(data.decode())))


def rows_by_secret(event):
    rows = export_rows(event)
    assert rows[0] == (HEADER if event.has_subevents else UNDATED_HEADER)
    return {row[0]: row for row in rows[1:]}


@pytest.fixture
def berlin_event(event):
    event.settings.timezone = "Europe/Berlin"
    return event


USED_AT = datetime(2030, 1, 1, 12, 0, 30, tzinfo=timezone.utc)


# --- content --------------------------------------------------------------------------------------------------------


def test_empty_pool_has_only_the_header(event, series):
    assert export_rows(event) == [UNDATED_HEADER]
    assert export_rows(series) == [HEADER]


def test_unused_secret(event):
    add_secret(event, "fresh")
    assert rows_by_secret(event)["fresh"] == ["fresh", "No", "", "", ""] + NO_TICKET


def test_restrictions_of_the_pool_entry(event, item2, variation):
    add_secret(event, "restricted", item=item2, variation=variation)
    assert rows_by_secret(event)["restricted"][3:5] == ["Shirt", "S"]


def test_restriction_to_a_date(series, subevent, series_item):
    series.settings.timezone = "Europe/Berlin"
    add_secret(series, "day1", item=series_item, subevent=subevent)
    assert rows_by_secret(series)["day1"][3:6] == ["Day ticket", "", "Day 1 - 2030-01-01 11:00"]


def test_used_secret_with_paid_ticket(berlin_event, item2, variation):
    add_secret(berlin_event, "sold", used=True, used_at=USED_AT)
    position = sell_ticket(berlin_event, "sold", item2, variation=variation)
    assert rows_by_secret(berlin_event)["sold"] == [
        "sold", "Yes", "2030-01-01T13:00:30+01:00", "", "",
        position.order.code, "1", "Shirt", "S", "Ada Lovelace", "paid",
    ]


def test_ticket_of_an_event_series_date(series, subevent2, series_item):
    add_secret(series, "dated", used=True, used_at=USED_AT)
    sell_ticket(series, "dated", series_item, subevent=subevent2, attendee=None)
    row = rows_by_secret(series)["dated"]
    assert row[8:] == ["Day ticket", "", "Day 2 - 2030-01-02 10:00", "", "paid"]


@pytest.mark.parametrize("status,canceled,label", [
    (Order.STATUS_PENDING, False, "pending"),
    (Order.STATUS_EXPIRED, False, "expired"),
    (Order.STATUS_PAID, True, "canceled"),  # a canceled ticket of a paid order
    (Order.STATUS_CANCELED, False, "canceled"),
])
def test_ticket_status(event, item, status, canceled, label):
    add_secret(event, "s", used=True, used_at=USED_AT)
    position = sell_ticket(event, "s", item, status=status, canceled=canceled)
    row = rows_by_secret(event)["s"]
    assert row[5] == position.order.code
    assert row[10] == label


def test_used_secret_without_ticket(event):
    # e.g. the ticket was deleted, or the secret was marked used through the API
    add_secret(event, "burnt", used=True, used_at=USED_AT)
    assert rows_by_secret(event)["burnt"] == ["burnt", "Yes", "2030-01-01T12:00:30+00:00", "", ""] + [
        "", "", "", "", "", "used, no ticket",
    ]


def test_ticket_in_another_event_is_not_shown(event, event2_item):
    # e.g. given explicitly to a ticket of another event: that event's orders are none of this export's business
    add_secret(event, "elsewhere", used=True, used_at=USED_AT)
    sell_ticket(event2_item.event, "elsewhere", event2_item)
    assert rows_by_secret(event)["elsewhere"][5:] == ["", "", "", "", "", "used, no ticket"]


def test_only_this_events_pool_and_this_organizers_tickets(event, event2, other_organizer_event):
    add_secret(event, "mine")
    add_secret(event2, "other-event")
    with scopes_disabled():
        foreign_item = other_organizer_event.items.create(name="Foreign", default_price=0)
    sell_ticket(other_organizer_event, "mine", foreign_item)
    assert rows_by_secret(event) == {"mine": ["mine", "No", "", "", ""] + NO_TICKET}


def test_rows_in_import_order_across_chunks(event, item, monkeypatch):
    monkeypatch.setattr(exporters, "CHUNK_SIZE", 2)
    names = ["e", "a", "d", "b", "c"]
    for name in names:
        add_secret(event, name, used=True, used_at=USED_AT)
        sell_ticket(event, name, item)
    rows = export_rows(event)[1:]
    assert [row[0] for row in rows] == names
    assert all(row[10] == "paid" for row in rows)


def test_more_secrets_than_one_chunk(event):
    count = exporters.CHUNK_SIZE + 1
    with scopes_disabled():
        ImportedSecret.objects.bulk_create([
            ImportedSecret(event=event, organizer=event.organizer, secret=f"s{i:05d}") for i in range(count)
        ])
    rows = export_rows(event)[1:]
    assert [row[0] for row in rows] == [f"s{i:05d}" for i in range(count)]


# --- formats and formula neutralisation -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,suffix,delimiter", [
    ("xlsx", ".xlsx", None), ("default", ".csv", ","), ("csv-excel", ".csv", ","), ("semicolon", ".csv", ";"),
])
def test_pretix_list_formats(event, fmt, suffix, delimiter):
    add_secret(event, "abc")
    filename, content_type, data = render(event, fmt)
    assert filename == f"{event.slug}_imported_secrets{suffix}"
    if fmt == "xlsx":
        rows = [[cell.value for cell in row] for row in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows()]
    else:
        rows = list(csv.reader(io.StringIO(data.decode()), delimiter=delimiter))
    assert rows[0] == UNDATED_HEADER
    assert rows[1][:2] == ["abc", "No"]


def test_xlsx_times_are_date_cells_in_the_events_time_zone(berlin_event):
    add_secret(berlin_event, "used", used=True, used_at=USED_AT)
    _filename, _content_type, data = render(berlin_event, "xlsx")
    cell = list(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(min_row=2))[0][2]
    assert cell.is_date and cell.value == datetime(2030, 1, 1, 13, 0, 30)  # 12:00:30 UTC in Berlin
    assert export_rows(berlin_event)[1][2] == "2030-01-01T13:00:30+01:00"


FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)"]


def test_csv_neutralises_formulas(event, item):
    # pretix' ListExporter writes CSV through defusedcsv, which prefixes such cells with a quote
    for secret in FORMULAS:
        add_secret(event, secret, used=True, used_at=USED_AT)
        sell_ticket(event, secret, item, attendee="=HYPERLINK(\"http://evil\")")
    rows = export_rows(event)[1:]
    assert [row[0] for row in rows] == ["'" + f for f in FORMULAS]
    assert all(row[9] == "'=HYPERLINK(\"http://evil\")" for row in rows)


def test_xlsx_stores_formulas_as_text(event):
    for secret in FORMULAS:
        add_secret(event, secret)
    filename, content_type, data = render(event, "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == FORMULAS
    assert all(c.data_type == "s" for c in cells)


# --- queries --------------------------------------------------------------------------------------------------------


def count_queries(event):
    with CaptureQueriesContext(connection) as ctx:
        render(event)
    return len(ctx.captured_queries)


def fill(event, prefix, n, items, variation, subevents):
    for i in range(n):
        secret = f"{prefix}{i}"
        restriction = {"item": items[i % 2], "variation": variation if i % 2 else None, "subevent": subevents[i % 2]}
        add_secret(event, secret, used=True, used_at=USED_AT, **restriction)
        sell_ticket(event, secret, status=[Order.STATUS_PAID, Order.STATUS_PENDING, Order.STATUS_CANCELED][i % 3],
                    **restriction)
    add_secret(event, f"{prefix}-burnt", used=True, used_at=USED_AT)
    add_secret(event, f"{prefix}-unused", item=items[0], variation=None, subevent=subevents[1])


def test_query_count_does_not_grow_with_the_pool(series, subevent, subevent2):
    with scopes_disabled():
        ticket = series.items.create(name="Day pass", default_price=0, admission=True)
        workshop = series.items.create(name="Workshop", default_price=0, admission=True)
        morning = workshop.variations.create(value="Morning")
    fill(series, "one", 1, [ticket, workshop], morning, [subevent, subevent2])
    count_queries(series)  # the first export of an event fills caches, e.g. of its settings
    one = count_queries(series)
    fill(series, "many", 60, [ticket, workshop], morning, [subevent, subevent2])
    assert count_queries(series) == one


def test_queries_per_chunk(event, item, monkeypatch):
    for i in range(6):
        add_secret(event, f"s{i}", used=True, used_at=USED_AT)
        sell_ticket(event, f"s{i}", item)
    count_queries(event)  # the first export of an event fills caches, e.g. of its settings
    monkeypatch.setattr(exporters, "CHUNK_SIZE", 6)
    one_chunk = count_queries(event)
    monkeypatch.setattr(exporters, "CHUNK_SIZE", 2)
    # two more chunks, each one query for the pool and one for the tickets
    assert count_queries(event) == one_chunk + 2 * 2


# --- availability ---------------------------------------------------------------------------------------------------


def exporter_ids(client, event):
    resp = client.get(f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/exporters/")
    assert resp.status_code == 200
    return [e["identifier"] for e in resp.data["results"]]


@pytest.mark.parametrize("permissions,listed", [
    (None, True),
    (["event.orders:read"], True),
    (["event.orders:checkin"], False),
    (["event.vouchers:read", "event.items:write", "event.settings.general:write"], False),
])
def test_listed_only_with_permission_to_read_orders(organizer, event, permissions, listed):
    client = token_client_for(make_team(organizer, permissions))
    assert ("imported_secrets" in exporter_ids(client, event)) == listed


def test_not_listed_without_the_plugin(token_client, disabled_event):
    assert "imported_secrets" not in exporter_ids(token_client, disabled_event)


def test_export_page_in_the_backend(backend_client, event):
    resp = backend_client.get(f"/control/event/{event.organizer.slug}/{event.slug}/orders/export/")
    assert resp.status_code == 200
    assert "Imported ticket secrets" in resp.content.decode()
    resp = backend_client.get(
        f"/control/event/{event.organizer.slug}/{event.slug}/orders/export/?identifier=imported_secrets"
    )
    assert resp.status_code == 200
    assert "Excel (.xlsx)" in resp.content.decode()


def test_run_through_the_export_api(token_client, event, item, monkeypatch):
    # The export task closes the connection after a long export, which would end the test's transaction.
    monkeypatch.setattr("pretix.base.services.export.close_old_connections", lambda: None)
    add_secret(event, "api-export", used=True, used_at=USED_AT)
    position = sell_ticket(event, "api-export", item)
    base = f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/exporters/imported_secrets/"
    resp = token_client.post(base + "run/", {"_format": "default"}, format="json")
    assert resp.status_code == 202
    resp = token_client.get(resp.data["download"])
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert rows[1][:2] == ["api-export", "Yes"]
    assert rows[1][5] == position.order.code


# --- gate lists -----------------------------------------------------------------------------------------------------


def render_gate_list(exporter_class, event, fmt="default", **form_data):
    with scope(organizer=event.organizer):
        exporter = exporter_class(event=Event.objects.get(pk=event.pk), organizer=event.organizer)
        filename, content_type, data = exporter.render({"_format": fmt, **form_data})
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        return filename, [[cell.value for cell in row] for row in sheet.iter_rows()]
    return filename, list(csv.reader(io.StringIO(data.decode())))


def test_gate_lists_admitted_and_refused(token_client, committed, event):
    use_generator(event)
    with scopes_disabled():
        ticket = event.items.create(name="Ticket", default_price=0, admission=True)
        event.quotas.create(name="All", size=None).items.add(ticket)
    shop = SimpleNamespace(event=event, ticket=ticket)
    for secret in ("=1+1", "PAID", "WAITS", "FREE"):
        add_secret(event, secret)
    canceled = place(token_client, shop, committed)
    paid = place(token_client, shop, committed)
    waits = place(token_client, shop, committed, status="n")
    post(token_client, committed, event, canceled, "mark_canceled")

    filename, rows = render_gate_list(exporters.AdmittedSecretsExporter, event)
    assert filename == f"{event.slug}_gate_admitted.csv"
    assert rows[0] == ["Secret", "State", "Since", "Order code", "Position ID", "Product", "Variation"]
    assert [row[:2] + row[3:] for row in rows[1:]] == [["PAID", "valid", paid, "1", "Ticket", ""]]
    _filename, rows = render_gate_list(exporters.AdmittedSecretsExporter, event, include_pending=True)
    assert [(row[0], row[1], row[3]) for row in rows[1:]] == [("PAID", "valid", paid), ("WAITS", "pending", waits)]

    filename, rows = render_gate_list(exporters.RefusedSecretsExporter, event)
    assert filename == f"{event.slug}_gate_refused.csv"
    assert rows[0] == ["Secret", "Reason", "Since", "Order code", "Position ID", "Product", "Variation"]
    assert [(row[0], row[1], row[3]) for row in rows[1:]] == [("'=1+1", "canceled", canceled)]  # neutralised
    _filename, rows = render_gate_list(exporters.RefusedSecretsExporter, event, fmt="xlsx")
    assert rows[1][0] == "=1+1" and isinstance(rows[1][2], datetime)

    # pretix' export task runs in the event's language: the lists' headers and words follow it (the feed and the
    # webhooks keep the stable words)
    with language("de"):
        _filename, rows = render_gate_list(exporters.RefusedSecretsExporter, event)
        assert rows[0][:3] == ["Ticket-Code", "Grund", "Seit"] and rows[1][1] == "storniert"
        _filename, rows = render_gate_list(exporters.AdmittedSecretsExporter, event)
        assert rows[0][:3] == ["Ticket-Code", "Zustand", "Seit"] and rows[1][1] == "gültig"
