"""
What the benchmark's scenarios share (bench/run.py; bench/load.py uses it for its data): their sizes and targets, an
organizer with a user and an API token, events with pools filled by raw SQL, in-process API clients, and the rows of
the results table.
"""
import io
import math
import os
import statistics
import time
from datetime import datetime, timezone

from stack import log

ORGA = "bench"

SIZES = {
    "full": dict(
        alloc_rounds=20, alloc_batch=25, pool_small=1_000, pool_big=1_000_000, list_reps=10, bulk_reps=5,
        bulk_n=500, import_lines=1_000_000, import_reps=2, sales_rounds=3, sales_per_client=15, sales_clients=8,
        series_dates=500, series_products=40, cancel_orders=10_000, cancel_rounds=1, pdf_rounds=10, pdf_batch=5,
        checkin_rounds=40, checkin_batch=50, feed_sync_rounds=2,
        shared_other=1_000_000, shared_big=10_000_000,
    ),
    "smoke": dict(
        alloc_rounds=2, alloc_batch=3, pool_small=100, pool_big=1_000, list_reps=2, bulk_reps=1,
        bulk_n=50, import_lines=2_000, import_reps=1, sales_rounds=1, sales_per_client=2, sales_clients=8,
        series_dates=20, series_products=5, cancel_orders=30, cancel_rounds=2, pdf_rounds=2, pdf_batch=1,
        checkin_rounds=2, checkin_batch=5, feed_sync_rounds=1,
        shared_other=1_000, shared_big=10_000,
    ),
}

# id: (metric, A label, B label, how the ratio is formed, comparison, target)
TARGETS = {
    "alloc": ("s/order", "random", "imported_secrets", "B/A time", "<=", 1.10),
    "alloc-scale": ("s/order", "pool 1k", "pool 1M", "B/A time", "<=", 1.10),
    "sales-pg": ("orders/s", "random", "imported_secrets", "B/A rate", ">=", 0.90),
    "bulk-api": ("items/s", "vouchers batch_create", "secrets bulk_create", "B/A rate", ">=", 20.0),
    "import-time": ("s", "raw insert", "import_file (importer)", "B/A time", "<=", 2.0),
    # PostgreSQL: the importer against COPY of the same rows into the same table (issue 26); SQLite has no COPY
    "import-copy": ("s", "COPY of the rows", "import_file (importer)", "B/A time", "<=", 1.2),
    # context, no target: the same through the management command, whose time includes pretix' start-up
    "import-time command": ("s", "raw insert", "python -m pretix import_secrets", "B/A time", None, None),
    "import-rss": ("MB", "limit", "import_secrets peak RSS", "B (MB)", "<=", 300.0),
    # a file whose secrets are all in the pool already is refused no slower than it was imported
    "import-duplicates": ("s", "import_file, new secrets", "import_file, all already imported", "B/A time", "<=",
                          1.0),
    # what can still be sold, for a series of many dates and products: the answer's time in seconds
    "sellable": ("s/request", "1 product", "series: dates x products", "B (s)", "<=", 1.0),
}
for _name in ("api page 1", "api last page", "backend page 1", "backend last page", "backend search",
              "backend search exact", "api secret filter"):
    TARGETS["list " + _name] = ("s/request", "pool 1k", "pool 1M", "B/A time", "<=", 3.0)
# pretix' "cancel event" action for a date with sold tickets, for an event with and one without the pool
TARGETS["cancel-date"] = ("s", "without the plugin", "pool secrets on the tickets", "B/A time", "<=", 1.10)
# the gate feed: a poll without changes, and a page of the full sync, on a pool of 1M against one of 1k
TARGETS["feed poll"] = ("s/request", "pool 1k", "pool 1M", "B/A time", "<=", 1.5)
TARGETS["feed full sync page"] = ("s/request", "small pool: page 1", "big pool: a page at 90 %", "B/A time", "<=", 1.5)
# the feed of a check-in list (pretix' answer per secret): its poll at 1M against 1k, its full sync page against the
# pool's page at the same place of the big pool
TARGETS["feed list poll"] = ("s/request", "pool 1k", "pool 1M", "B/A time", "<=", 1.5)
TARGETS["feed list full sync page"] = ("s/request", "pool feed: a page at 90 %", "list feed: a page at 90 %",
                                       "B/A time", "<=", 1.5)
# a full sync of the big pool by the reference client (compact, gzip, pages of 5,000): seconds and MB of the answers
# as sent; A, for context, is the same sync with whole entries, uncompressed
TARGETS["feed-sync time"] = ("s", "whole entries, uncompressed", "compact + gzip", "B (s)", "<=", 60.0)
TARGETS["feed-sync bytes"] = ("MB", "whole entries, uncompressed", "compact + gzip", "B (MB)", "<=", 40.0)
# pretix' perform_checkin of a pool ticket against a ticket of an event without the plugin, in-process, alternating
TARGETS["checkin"] = ("s/check-in", "event without the plugin", "pool ticket", "median of the rounds' B/A", "<=", 1.02)
TARGETS["checkin queries"] = ("queries", "event without the plugin", "pool ticket", "B-A", "<=", 1)
# a ticket PDF through pretix' PDF output, with a Code 128 barcode drawn by the plugin against pretix' QR code
TARGETS["import-format"] = (
    "s", "import_file, any secret", "import_file, regex + length + Code 128", "B/A time", "<=", 1.25)
TARGETS["format-change"] = ("s", "limit", "format change: check of the pool", "B (s)", "<=", 10.0)
TARGETS["pdf-linear"] = ("s/ticket", "QR (pretix)", "Code 128 (plugin)", "B/A time", "<=", 1.2)
# a shared installation: the first pages of a pool of 10M behind 1M secrets of another event, against a pool of 1k
for _name in ("feed page 1", "list feed page 1", "list api page 1", "backend page 1"):
    TARGETS["shared " + _name] = ("s/request", "pool 1k", "pool 10M", "B/A time", "<=", 1.2)
# context without a target: a page in the middle costs its OFFSET with page numbers
TARGETS["list api middle page"] = ("s/request", "pool 1k", "pool 1M", "B/A time", None, None)


def median(values):
    return statistics.median(values) if values else float("nan")


def analyze(*tables):
    """
    PostgreSQL: ANALYZE after a bulk write (all tables if none given). This server runs with autovacuum off; a
    production server would have analyzed them by now. BENCH_NO_ANALYZE=1 leaves it out.
    """
    from django.db import connection
    if connection.vendor == "postgresql" and not os.environ.get("BENCH_NO_ANALYZE"):
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(tables)}")


def interleaved(rounds, a, b):
    """A B, B A, A B, ...: each side goes first equally often."""
    for r in range(rounds):
        yield r, ((a, b) if r % 2 == 0 else (b, a))


class Harness:
    """One run's organizer, its events and the results; the scenario classes build on it."""

    def __init__(self, pretix, size):
        self.pretix, self.db, self.size, self.datadir = pretix, pretix.db, size, pretix.datadir
        self.p = dict(SIZES[size])
        # BENCH_OVERRIDE="alloc_rounds=2,alloc_batch=5": change single sizes, e.g. to investigate one scenario
        for item in filter(None, os.environ.get("BENCH_OVERRIDE", "").split(",")):
            key, value = item.split("=")
            self.p[key.strip()] = int(value)
        self.results = []
        self.context = {}

    # ----- data
    def setup_base(self):
        from django.contrib.auth.hashers import make_password
        from django_scopes import scopes_disabled

        from pretix.base.models import Organizer, Team, User
        with scopes_disabled():
            self.organizer = Organizer.objects.create(slug=ORGA, name="Bench")
            self.user = User.objects.create(email="bench@localhost", password=make_password("bench"))
            team = Team.objects.create(organizer=self.organizer, name="All", all_events=True,
                                       all_event_permissions=True, all_organizer_permissions=True)
            team.members.add(self.user)
            self.token = team.tokens.create(name="bench").token

    def make_event(self, slug, generator):
        from django_scopes import scopes_disabled

        from pretix.base.models import Event
        with scopes_disabled():
            event = Event.objects.create(
                organizer=self.organizer, slug=slug, name=slug, currency="EUR", live=True,
                plugins="pretix.plugins.banktransfer,pretix_secrets_import",
                date_from=datetime(2030, 12, 27, 10, tzinfo=timezone.utc),
            )
            event.settings.ticket_secret_generator = generator
            item = event.items.create(name="Ticket", default_price=0, admission=True)
            event.quotas.create(name="All", size=None).items.add(item)
            event.bench_item = item
        return event

    def fill(self, event, prefix, count):
        """``count`` unused, unrestricted secrets, inserted with raw SQL in batches."""
        from django.db import transaction
        for start in range(0, count, 100_000):
            n = min(100_000, count - start)
            with transaction.atomic():
                self.raw_insert(event, (f"{prefix}-{i:08d}" for i in range(start, start + n)))
        from pretix_secrets_import.models import ImportedSecret
        analyze(ImportedSecret._meta.db_table)

    def raw_insert(self, event, secrets):
        """The baseline: executemany (SQLite) / COPY (PostgreSQL) straight into the plugin's table."""
        from django.db import connection
        from django.utils.timezone import now

        from pretix_secrets_import.models import ImportedSecret
        table = ImportedSecret._meta.db_table
        cols = ("organizer_id", "event_id", "secret", "used", "used_at", "item_id", "variation_id", "subevent_id",
                "created", "modified")
        ts = ImportedSecret._meta.get_field("created").get_db_prep_save(now(), connection)
        org, ev = event.organizer_id, event.pk
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                buf = io.StringIO()
                head = f"{org}\t{ev}\t"
                tail = f"\tf\t\\N\t\\N\t\\N\t\\N\t{ts}\t{ts}\n"
                buf.writelines(head + s + tail for s in secrets)
                buf.seek(0)
                cursor.cursor.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf)
            else:
                sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['?'] * len(cols))})"
                cursor.cursor.executemany(sql, ((org, ev, s, False, None, None, None, None, ts, ts)
                                                for s in secrets))

    def fill_scale_pools(self):
        need = self.p["alloc_rounds"] * self.p["alloc_batch"] + 10
        self.small = self.make_event("pool-small", "imported_secrets")
        self.big = self.make_event("pool-big", "imported_secrets")
        t = time.perf_counter()
        self.fill(self.small, "SMALL", self.p["pool_small"] + need)
        self.fill(self.big, "BIG", self.p["pool_big"] + need)
        self.context["fill_big_pool_s"] = time.perf_counter() - t
        log(f"filled pools: {self.p['pool_small'] + need} and {self.p['pool_big'] + need} secrets "
            f"in {self.context['fill_big_pool_s']:.1f} s")

    # ----- clients
    def api_client(self):
        from rest_framework.test import APIClient
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token " + self.token)
        return client

    def order(self, client, event):
        r = client.post(f"/api/v1/organizers/{ORGA}/events/{event.slug}/orders/", {
            "email": "buyer@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
            "positions": [{"item": event.bench_item.pk, "price": "0.00"}],
        }, format="json")
        if r.status_code != 201:
            raise RuntimeError(f"order on {event.slug}: {r.status_code} {r.content[:500]!r}")
        return r.json()["positions"][0]["secret"]

    # ----- results
    def add(self, sid, a, b, ratio, details=None, labels=None):
        metric, a_label, b_label, how, op, target = TARGETS[sid]
        a_label, b_label = labels or (a_label, b_label)
        if op is None:
            status, target_text = "context", "-"
        else:
            ok = not math.isnan(ratio) and (ratio <= target if op == "<=" else ratio >= target)
            status, target_text = "met" if ok else "MISSED", f"{op} {target:g}"
        row = dict(id=sid, metric=metric, a_label=a_label, a=a, b_label=b_label, b=b, ratio=ratio, ratio_of=how,
                   target=target_text, status=status, details=details or {})
        self.results.append(row)
        log(f"{sid}: A={a:.4g} B={b:.4g} ratio={ratio:.3f} target {target_text} -> {status}")

    def pool_labels(self):
        return f"pool {self.p['pool_small']:,}", f"pool {self.p['pool_big']:,}"

    def skip(self, sid, reason):
        metric, a_label, b_label, how, op, target = TARGETS[sid]
        self.results.append(dict(id=sid, metric=metric, a_label=a_label, a=None, b_label=b_label, b=None,
                                 ratio=None, ratio_of=how, target=f"{op} {target:g}", status="skipped",
                                 details={"reason": reason}))
        log(f"{sid}: skipped ({reason})")
