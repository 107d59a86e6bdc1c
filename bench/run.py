"""
Benchmark harness for pretix-secrets-import (issue 5): ``make bench`` (SQLite) and ``make bench-pg`` (PostgreSQL).

Sets up a real pretix with its own throwaway database and configuration (DEBUG off), runs every scenario as an A/B
comparison within the same run (repetitions interleaved A B B A ...), prints a table and writes
``bench/results-<db>.json``. Requests go in-process through Django's test client / DRF's APIClient (the full
middleware, authentication, DRF and pretix stack, without a socket).

    python bench/run.py --db sqlite|postgresql [--size full|smoke] [--strict]

The size also comes from BENCH_SIZE. Exits non-zero on a crash; on a missed target only with --strict.
"""
import argparse
import cProfile
import csv
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

from stack import HERE, Pretix, log

ROOT = os.path.dirname(HERE)
PG_DB = "bench_secrets_import"
ORGA = "bench"

SIZES = {
    "full": dict(
        alloc_rounds=20, alloc_batch=25, pool_small=1_000, pool_big=1_000_000, list_reps=10, bulk_reps=5,
        bulk_n=500, import_lines=1_000_000, import_reps=2, sales_rounds=3, sales_per_client=15, sales_clients=8,
        series_dates=500, series_products=40, cancel_orders=10_000, cancel_rounds=1, pdf_rounds=10, pdf_batch=5,
        checkin_rounds=40, checkin_batch=50,
    ),
    "smoke": dict(
        alloc_rounds=2, alloc_batch=3, pool_small=100, pool_big=1_000, list_reps=2, bulk_reps=1,
        bulk_n=50, import_lines=2_000, import_reps=1, sales_rounds=1, sales_per_client=2, sales_clients=8,
        series_dates=20, series_products=5, cancel_orders=30, cancel_rounds=2, pdf_rounds=2, pdf_batch=1,
        checkin_rounds=2, checkin_batch=5,
    ),
}

# id: (metric, A label, B label, how the ratio is formed, comparison, target)
TARGETS = {
    "alloc": ("s/order", "random", "imported_secrets", "B/A time", "<=", 1.10),
    "alloc-scale": ("s/order", "pool 1k", "pool 1M", "B/A time", "<=", 1.10),
    "sales-pg": ("orders/s", "random", "imported_secrets", "B/A rate", ">=", 0.90),
    "bulk-api": ("items/s", "vouchers batch_create", "secrets bulk_create", "B/A rate", ">=", 20.0),
    "import-time": ("s", "raw insert", "import_file (importer)", "B/A time", "<=", 2.0),
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
# pretix' perform_checkin of a pool ticket against a ticket of an event without the plugin, in-process, alternating
TARGETS["checkin"] = ("s/check-in", "event without the plugin", "pool ticket", "median of the rounds' B/A", "<=", 1.02)
TARGETS["checkin queries"] = ("queries", "event without the plugin", "pool ticket", "B-A", "<=", 1)
# a ticket PDF through pretix' PDF output, with a Code 128 barcode drawn by the plugin against pretix' QR code
TARGETS["import-format"] = (
    "s", "import_file, any secret", "import_file, regex + length + Code 128", "B/A time", "<=", 1.25)
TARGETS["format-change"] = ("s", "limit", "format change: check of the pool", "B (s)", "<=", 10.0)
TARGETS["pdf-linear"] = ("s/ticket", "QR (pretix)", "Code 128 (plugin)", "B/A time", "<=", 1.2)
# context without a target: a page in the middle costs its OFFSET with page numbers
TARGETS["list api middle page"] = ("s/request", "pool 1k", "pool 1M", "B/A time", None, None)


# --- helpers ---------------------------------------------------------------------------------------------------------

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


class Bench:
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

    # ----- scenarios
    def alloc_ab(self, sid, event_a, event_b, check_b_prefix, labels=None):
        p = self.p
        client = self.api_client()
        for ev in (event_a, event_b):  # warm-up
            self.order(client, ev)
        times = {event_a.slug: [], event_b.slug: []}
        for _r, pair in interleaved(p["alloc_rounds"], event_a, event_b):
            for ev in pair:
                t = time.perf_counter()
                for _ in range(p["alloc_batch"]):
                    secret = self.order(client, ev)
                times[ev.slug].append((time.perf_counter() - t) / p["alloc_batch"])
                if ev is event_b and check_b_prefix and not secret.startswith(check_b_prefix):
                    raise RuntimeError(f"{ev.slug} handed out {secret!r}, not a pool secret")
        a, b = median(times[event_a.slug]), median(times[event_b.slug])
        ratios = [y / x for x, y in zip(times[event_a.slug], times[event_b.slug])]
        self.add(sid, a, b, b / a, dict(
            rounds=p["alloc_rounds"], orders_per_round=p["alloc_batch"], a_times=times[event_a.slug],
            b_times=times[event_b.slug], ratio_of_sums=sum(times[event_b.slug]) / sum(times[event_a.slug]),
            per_round_ratios=ratios,
        ), labels=labels)

    def bench_alloc(self):
        need = self.p["alloc_rounds"] * self.p["alloc_batch"] + 10
        rand = self.make_event("alloc-random", "random")
        pool = self.make_event("alloc-pool", "imported_secrets")
        self.fill(pool, "ALLOC", self.p["pool_small"] + need)
        self.alloc_ab("alloc", rand, pool, "ALLOC-")

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

    def bench_alloc_scale(self):
        self.fill_scale_pools()
        self.alloc_ab("alloc-scale", self.small, self.big, "BIG-", labels=self.pool_labels())

    def bench_list(self):
        from django.test import Client
        from django_scopes import scopes_disabled

        from pretix_secrets_import.models import ImportedSecret
        if not hasattr(self, "big"):  # --only list
            self.fill_scale_pools()
        api = self.api_client()
        backend = Client()
        backend.force_login(self.user)
        targets = {}
        counts = {}
        middle = {}
        for ev in (self.small, self.big):
            with scopes_disabled():
                counts[ev.slug] = ImportedSecret.objects.filter(event=ev).count()
                middle[ev.slug] = ImportedSecret.objects.filter(event=ev).order_by("id")[
                    counts[ev.slug] // 2].secret
            base = f"/api/v1/organizers/{ORGA}/events/{ev.slug}/imported_secrets/"
            api_count = api.get(base).json()["count"]  # from the pool's counters, kept by the migration's triggers
            if api_count != counts[ev.slug]:
                raise RuntimeError(f"{ev.slug}: the API counts {api_count} secrets, the table holds {counts[ev.slug]}")
            last = max(1, math.ceil(counts[ev.slug] / 50))
            pool = f"/control/event/{ORGA}/{ev.slug}/secrets_import/"
            targets[ev.slug] = {
                "list api page 1": (api, base + "?page=1"),
                "list api last page": (api, f"{base}?page={last}"),
                "list api middle page": (api, f"{base}?page={max(1, last // 2)}"),
                "list backend page 1": (backend, pool),
                "list backend last page": (backend, pool + "?last=1"),
                # one secret from the middle of the pool, and its first characters, which 100 secrets share
                "list backend search": (backend, f"{pool}?search={middle[ev.slug][:-2]}"),
                "list backend search exact": (backend, f"{pool}?search={middle[ev.slug]}"),
                "list api secret filter": (api, f"{base}?secret={middle[ev.slug]}"),
            }
        for sid in targets[self.small.slug]:
            times = {self.small.slug: [], self.big.slug: []}
            for ev in (self.small, self.big):  # warm-up
                client, url = targets[ev.slug][sid]
                r = client.get(url)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {url}: {r.status_code} {r.content[:300]!r}")
            for _r, pair in interleaved(self.p["list_reps"], self.small, self.big):
                for ev in pair:
                    client, url = targets[ev.slug][sid]
                    t = time.perf_counter()
                    r = client.get(url)
                    times[ev.slug].append(time.perf_counter() - t)
                    if r.status_code != 200:
                        raise RuntimeError(f"GET {url}: {r.status_code}")
            a, b = median(times[self.small.slug]), median(times[self.big.slug])
            self.add(sid, a, b, b / a, dict(
                counts=counts, urls={k: v[sid][1] for k, v in targets.items()},
                a_times=times[self.small.slug], b_times=times[self.big.slug],
            ), labels=self.pool_labels())

    def fill_gate_states(self, event):
        """A third of the pool on tickets: a gate state row each (but for the sold ones), written with raw SQL."""
        from django.db import connection
        from django.utils.timezone import now

        from pretix_secrets_import.models import GateState, ImportedSecret
        ts = GateState._meta.get_field("changed").get_db_prep_save(now(), connection)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {GateState._meta.db_table} (secret_id, event_id, state, reason, changed, order_code, "
                f"positionid, tx) SELECT id, event_id, 'valid', 'paid', %s, 'ABCDE', 1, 1 "
                f"FROM {ImportedSecret._meta.db_table} WHERE event_id = %s AND id %% 3 = 0 AND id NOT IN "
                f"(SELECT secret_id FROM {GateState._meta.db_table} WHERE event_id = %s)", [ts, event.pk, event.pk])
        analyze(GateState._meta.db_table)

    def bench_feed(self):
        """The gate feed: a poll that finds no change, and a full sync page deep in the pool."""
        from django_scopes import scopes_disabled

        from pretix_secrets_import.models import ImportedSecret
        if not hasattr(self, "big"):  # --only feed
            self.fill_scale_pools()
        for ev in (self.small, self.big):
            self.fill_gate_states(ev)
        api = self.api_client()
        urls = {}
        for ev in (self.small, self.big):
            base = f"/api/v1/organizers/{ORGA}/events/{ev.slug}/imported_secrets/gate_feed/"
            cursor = api.get(base).json()["cursor"]
            with scopes_disabled():
                pool = ImportedSecret.objects.filter(event=ev).order_by("id")
                deep = pool.values_list("id", flat=True)[int(pool.count() * 0.9)]
            urls[ev.slug] = {
                "feed poll": f"{base}?cursor={cursor}",
                "feed full sync page": base if ev is self.small else f"{base}?after={deep}&horizon={cursor}",
            }
        for sid in ("feed poll", "feed full sync page"):
            self.compare_gets(api, sid, urls[self.small.slug][sid], urls[self.big.slug][sid],
                              self.pool_labels() if sid == "feed poll" else (
                                  f"{self.pool_labels()[0]}: page 1", f"{self.pool_labels()[1]}: a page at 90 %"))

    def bench_list_feed(self):
        """The feed of a check-in list: a poll that finds no change, and a full sync page deep in the pool."""
        from pretix_secrets_import.models import ImportedSecret
        if not hasattr(self, "big"):  # --only feed
            self.fill_scale_pools()
            for ev in (self.small, self.big):
                self.fill_gate_states(ev)
        api = self.api_client()
        base = {ev.slug: f"/api/v1/organizers/{ORGA}/events/{ev.slug}/imported_secrets/gate_feed/"
                for ev in (self.small, self.big)}
        lists = {ev.slug: ev.checkin_lists.create(name="Entry").pk for ev in (self.small, self.big)}
        polls = {}
        for ev in (self.small, self.big):
            first = api.get(f"{base[ev.slug]}?checkinlist={lists[ev.slug]}").json()
            polls[ev.slug] = f"{base[ev.slug]}?checkinlist={lists[ev.slug]}&cursor={first['cursor']}"
        big = self.big.slug
        pool = ImportedSecret.objects.filter(event=self.big).order_by("id")
        deep = pool.values_list("id", flat=True)[int(pool.count() * 0.9)]
        first = api.get(f"{base[big]}?checkinlist={lists[big]}").json()
        pages = {"pool": f"{base[big]}?after={deep}&horizon={first['cursor']}",
                 "list": f"{base[big]}?checkinlist={lists[big]}&after=0-{deep}&horizon={first['cursor']}"
                         f"&total={first['count']}"}
        self.compare_gets(api, "feed list poll", polls[self.small.slug], polls[big], self.pool_labels())
        self.compare_gets(api, "feed list full sync page", pages["pool"], pages["list"], None)

    def compare_gets(self, api, sid, a_url, b_url, labels):
        """GET ``a_url`` and ``b_url`` in turns (``list_reps`` rounds): the median times side by side."""
        for link in (a_url, b_url):  # warm-up, and the poll finds nothing
            r = api.get(link)
            if r.status_code != 200 or ("cursor=" in link and r.json()["results"]):
                raise RuntimeError(f"GET {link}: {r.status_code} {r.content[:300]!r}")
        times = {a_url: [], b_url: []}
        for _r, pair in interleaved(self.p["list_reps"], a_url, b_url):
            for link in pair:
                t = time.perf_counter()
                api.get(link)
                times[link].append(time.perf_counter() - t)
        a, b = median(times[a_url]), median(times[b_url])
        self.add(sid, a, b, b / a, dict(urls=[a_url, b_url], a_times=times[a_url], b_times=times[b_url]),
                 labels=labels)

    def bench_checkin(self):
        """pretix' perform_checkin: a pool ticket against a ticket of an event without the plugin, alternating."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from pretix.base.models import OrderPosition
        from pretix.base.services.checkin import perform_checkin
        with_pool = self.make_event("checkin-pool", "imported_secrets")
        self.fill(with_pool, "CHECKIN", 100)
        plain = self.make_event("checkin-plain", "random")
        plain.plugins = "pretix.plugins.banktransfer"
        plain.save()
        client, sides = self.api_client(), {}
        for ev in (plain, with_pool):
            secret = self.order(client, ev)
            position = OrderPosition.objects.get(order__event=ev, secret=secret)
            sides[ev.slug] = (position, ev.checkin_lists.create(name="Entry", allow_multiple_entries=True))
        queries, calls, times, cpu_times = {}, {}, {slug: [] for slug in sides}, {slug: [] for slug in sides}
        for slug, (position, clist) in sides.items():
            with CaptureQueriesContext(connection) as captured:
                perform_checkin(position, clist, {})
            queries[slug] = len(captured)
            # Python function calls of one check-in: deterministic, where the times carry the machine's noise
            profile = cProfile.Profile()
            profile.runcall(perform_checkin, position, clist, {})
            calls[slug] = pstats.Stats(profile).total_calls
        for _r, pair in interleaved(self.p["checkin_rounds"], plain.slug, with_pool.slug):
            for slug in pair:
                position, clist = sides[slug]
                t, cpu = time.perf_counter(), time.process_time()
                for _i in range(self.p["checkin_batch"]):
                    perform_checkin(position, clist, {})
                times[slug].append((time.perf_counter() - t) / self.p["checkin_batch"])
                cpu_times[slug].append((time.process_time() - cpu) / self.p["checkin_batch"])
        a, b = median(times[plain.slug]), median(times[with_pool.slug])
        # the median of each round's ratio: the two sides of a round ran back to back, so the machine's drift
        # between rounds (seen here: 50 % within minutes) cancels out
        ratio = median([pool / without for without, pool in zip(times[plain.slug], times[with_pool.slug])])
        self.add("checkin", a, b, ratio, dict(a_times=times[plain.slug], b_times=times[with_pool.slug],
                                              a_calls=calls[plain.slug], b_calls=calls[with_pool.slug],
                                              ratio_of_medians=b / a, cpu_ratio=median(
                                                  [p / w for w, p in zip(cpu_times[plain.slug],
                                                                         cpu_times[with_pool.slug])])))
        log(f"checkin: {calls[plain.slug]} Python function calls without the plugin, {calls[with_pool.slug]} with")
        a, b = queries[plain.slug], queries[with_pool.slug]
        self.add("checkin queries", a, b, b - a)

    def sold_date(self, event, prefix, orders, pool):
        """A new date of ``event`` with ``orders`` paid orders of one ticket each, written in bulk."""
        from django.utils.timezone import now

        from pretix.base.models import Order, OrderPosition, SubEvent

        from pretix_secrets_import.models import GateState, ImportedSecret
        date = SubEvent.objects.create(event=event, name=prefix, active=True,
                                       date_from=datetime(2031, 1, 1, tzinfo=timezone.utc))
        channel = self.organizer.sales_channels.get(identifier="web")
        created = Order.objects.bulk_create([Order(
            event=event, organizer=event.organizer, code=f"{prefix}{i:06d}", status=Order.STATUS_PAID,
            email="buyer@example.org",
            datetime=now(), expires=now() + timedelta(days=1), total=0, sales_channel=channel, locale="en",
        ) for i in range(orders)])
        secrets = [f"{prefix}-{i:08d}" for i in range(orders)]
        OrderPosition.objects.bulk_create([OrderPosition(
            order=order, organizer=event.organizer, item=event.bench_item, subevent=date, price=0, tax_rate=0,
            tax_value=0, positionid=1, secret=secret, pseudonymization_id=f"{secret}-P",
        ) for order, secret in zip(created, secrets)])
        if pool:
            rows = ImportedSecret.objects.bulk_create([ImportedSecret(
                event=event, organizer=event.organizer, secret=secret, used=True, used_at=now(),
            ) for secret in secrets])
            GateState.objects.bulk_create([GateState(
                secret=row, event=event, state="valid", reason="paid", changed=now(), order_code=order.code,
                positionid=1, item_id=event.bench_item.pk, subevent_id=date.pk, tx=1,
            ) for row, order in zip(rows, created)])
        # without statistics, PostgreSQL runs pretix' selection of the orders to cancel (correlated subqueries) as
        # nested scans whose time grows with the square of the orders
        analyze()
        return date

    def bench_cancel_date(self):
        """pretix' "cancel event" action for one date of a series: every order canceled, one by one."""
        from django.db import connection

        from pretix.base.models import Order
        from pretix.base.services.cancelevent import cancel_event

        from pretix_secrets_import.models import GateState
        orders, rounds = self.p["cancel_orders"], self.p["cancel_rounds"]
        plain = self.make_event("cancel-plain", "random")
        plain.has_subevents = True
        plain.plugins = "pretix.plugins.banktransfer"
        plain.save()
        pool = self.make_event("cancel-pool", "imported_secrets")
        pool.has_subevents = True
        pool.save()
        times, queries = {plain.slug: [], pool.slug: []}, {plain.slug: 0, pool.slug: 0}
        # pretix' cancellation slows down as the orders table grows: with one round, the plugin's side goes second
        # (the harder place); with more, each side goes first equally often.
        for round_no, pair in interleaved(rounds, plain, pool):
            for event in pair:
                prefix = ("P" if event is plain else "Q") + str(round_no)
                date = self.sold_date(event, prefix, orders, pool=event is pool)
                counted = []

                def count(execute, sql, params, many, context):
                    counted.append(1)
                    return execute(sql, params, many, context)

                with connection.execute_wrapper(count):
                    t = time.perf_counter()
                    cancel_event.apply(kwargs=dict(
                        event=event.pk, subevent=date.pk, auto_refund=False, keep_fee_fixed="0.00",
                        keep_fee_per_ticket="0.00", keep_fee_percentage="0.00", keep_fees=[], send=False,
                        send_subject={}, send_message={}, user=None,
                    ))
                    times[event.slug].append(time.perf_counter() - t)
                queries[event.slug] += len(counted)
                canceled = Order.objects.filter(event=event, all_positions__subevent=date,
                                                status=Order.STATUS_CANCELED).distinct().count()
                if canceled != orders:
                    raise RuntimeError(f"{event.slug}: {canceled} of {orders} orders canceled")
                log(f"cancel {orders} orders of {event.slug}: {times[event.slug][-1]:.1f} s, {len(counted)} queries")
        void = GateState.objects.filter(event=pool, state="void", reason="canceled").count()
        if void != rounds * orders:
            raise RuntimeError(f"{void} of {rounds * orders} pool secrets void after the cancellations")
        a, b = sum(times[plain.slug]), sum(times[pool.slug])
        self.add("cancel-date", a, b, b / a, dict(
            orders_per_round=orders, rounds=rounds, times=times, queries=queries,
            extra_queries_per_order=(queries[pool.slug] - queries[plain.slug]) / (rounds * orders),
        ))

    def bench_pdf(self):
        """Rendering a ticket PDF (pretix' default layout) with the secret as pretix' QR code and as Code 128."""
        from django_scopes import scope

        from pretix.base.models import OrderPosition
        from pretix.plugins.ticketoutputpdf.ticketoutput import PdfTicketOutput
        client = self.api_client()
        events = {}
        for symbology in ("qr", "code128"):
            event = self.make_event(f"pdf-{symbology}", "imported_secrets")
            event.enable_plugin("pretix.plugins.ticketoutputpdf")
            event.save()
            event.settings.set("secrets_import_symbology", symbology)
            # the same length on both sides, as long as a typical vendor's code
            self.raw_insert(event, [f"PDF{symbology[0].upper()}-2031-{i:06d}" for i in range(3)])
            secret = self.order(client, event)
            events[symbology] = (event, OrderPosition.objects.get(order__event=event, secret=secret))
        times = {"qr": [], "code128": []}
        for _r, pair in interleaved(self.p["pdf_rounds"] + 1, "qr", "code128"):  # the first round warms up
            for symbology in pair:
                event, position = events[symbology]
                with scope(organizer=event.organizer):
                    t = time.perf_counter()
                    for _ in range(self.p["pdf_batch"]):
                        PdfTicketOutput(event).generate(position)
                    times[symbology].append((time.perf_counter() - t) / self.p["pdf_batch"])
        a, b = median(times["qr"][1:]), median(times["code128"][1:])
        self.add("pdf-linear", a, b, b / a, dict(
            rounds=self.p["pdf_rounds"], per_round=self.p["pdf_batch"], a_times=times["qr"][1:],
            b_times=times["code128"][1:],
        ))

    def bench_bulk(self):
        event = self.make_event("bulk", "imported_secrets")
        client = self.api_client()
        base = f"/api/v1/organizers/{ORGA}/events/{event.slug}/"
        n = self.p["bulk_n"]
        rates = {"v": [], "s": []}

        def run(kind, rep):
            if kind == "s":
                url, body = base + "imported_secrets/bulk_create/", [
                    {"secret": f"BULK{rep}-{i:05d}"} for i in range(n)]
            else:
                url, body = base + "vouchers/batch_create/", [
                    {"code": f"VOUCHER{rep}X{i:05d}", "max_usages": 1, "item": event.bench_item.pk,
                     "price_mode": "none", "value": "0.00"} for i in range(n)]
            t = time.perf_counter()
            r = client.post(url, body, format="json")
            elapsed = time.perf_counter() - t
            if r.status_code != 201 or len(r.json()) != n:
                raise RuntimeError(f"POST {url}: {r.status_code} {r.content[:500]!r}")
            return n / elapsed

        run("s", "w")  # warm-up
        run("v", "w")
        for rep, pair in interleaved(self.p["bulk_reps"], "v", "s"):
            for kind in pair:
                rates[kind].append(run(kind, rep))
        a, b = median(rates["v"]), median(rates["s"])
        self.add("bulk-api", a, b, b / a, dict(batch=n, voucher_rates=rates["v"], secret_rates=rates["s"]))

    def bench_import(self):
        from django.db import connection, transaction
        from django_scopes import scopes_disabled

        from pretix_secrets_import.importing.columns import ColumnMapping
        from pretix_secrets_import.importing.files import FileFormat
        from pretix_secrets_import.importing.pipeline import import_file
        from pretix_secrets_import.models import ImportedSecret
        lines = self.p["import_lines"]
        tmp = os.path.join(self.datadir, "import")
        os.makedirs(tmp, exist_ok=True)
        noop_s, noop_rss, _ = self.pretix.command("noop")
        self.context["noop_s"], self.context["noop_rss_mb"] = noop_s, noop_rss
        log(f"python -m pretix noop: {noop_s:.1f} s, peak RSS {noop_rss} MB")
        times = {"raw": [], "importer": [], "command": []}
        rss = []
        for rep in range(self.p["import_reps"]):
            kinds = ["raw", "importer", "command"]
            for kind in kinds[rep % 3:] + kinds[:rep % 3]:  # each kind goes first in turn
                event = self.make_event(f"import-{kind}-{rep}", "imported_secrets")
                path = os.path.join(tmp, f"{kind}-{rep}.csv")
                with open(path, "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerows([f"I{rep}{kind[0].upper()}-{i:08d}"] for i in range(lines))
                connection.close()
                t = time.perf_counter()
                if kind == "raw":
                    with open(path, newline="") as f, transaction.atomic():
                        self.raw_insert(event, (row[0].strip() for row in csv.reader(f)))
                elif kind == "importer":
                    with open(path, "rb") as f, scopes_disabled():
                        result = import_file(event, f, FileFormat(), ColumnMapping(secret=0))
                    if result.error_count:
                        raise RuntimeError(f"import_file reported {result.error_count} errors: {result.errors[:3]}")
                else:
                    _elapsed, peak, out = self.pretix.command("import_secrets", ORGA, event.slug, path,
                                                              "--no-header")
                    rss.append(peak)
                times[kind].append(time.perf_counter() - t)
                log(f"{kind} import of {lines} lines: {times[kind][-1]:.1f} s"
                    + (f", peak RSS {peak:.0f} MB: {out.strip()}" if kind == "command" else ""))
                with scopes_disabled():
                    stored = ImportedSecret.objects.filter(event=event).count()
                if stored != lines:
                    raise RuntimeError(f"{kind}: {stored} rows stored, expected {lines}")
                os.unlink(path)
        a, b, c = (median(times[k]) for k in ("raw", "importer", "command"))
        self.add("import-time", a, b, b / a, dict(lines=lines, times=times))
        self.add("import-time command", a, c, c / a, dict(
            lines=lines, times=times, noop_s=noop_s, ratio_without_startup=(c - noop_s) / a,
            note="wall time of the `python -m pretix import_secrets` process, pretix' start-up included",
        ))
        peak = max(rss) if all(rss) else float("nan")
        self.add("import-rss", 300.0, peak, peak, dict(peak_rss_mb=rss, noop_rss_mb=noop_rss))

    def bench_sellable(self):
        """The sellable API's first page and the pool page, for one product and for a series of dates x products."""
        from django.test import Client
        from django_scopes import scopes_disabled

        from pretix.base.models import SubEvent
        dates, products = self.p["series_dates"], self.p["series_products"]
        one = self.make_event("sellable-one", "imported_secrets")
        series = self.make_event("sellable-series", "imported_secrets")
        with scopes_disabled():
            series.has_subevents = True
            series.save()
            for i in range(1, products):
                series.items.create(name=f"Ticket {i}", default_price=0, admission=True)
            SubEvent.objects.bulk_create([SubEvent(
                event=series, name=f"Day {d}", active=True, date_from=datetime(2030, 1, 1, tzinfo=timezone.utc)
                + timedelta(days=d)) for d in range(dates)])
        for ev in (one, series):
            self.fill(ev, f"SELL-{ev.slug}", 1000)
        api = self.api_client()
        backend = Client()
        backend.force_login(self.user)
        times = {}
        for ev in (one, series):
            urls = [f"/api/v1/organizers/{ORGA}/events/{ev.slug}/imported_secrets/sellable/",
                    f"/control/event/{ORGA}/{ev.slug}/secrets_import/"]
            for client, url in zip((api, backend), urls):
                client.get(url)  # warm-up
            runs = []
            for _ in range(self.p["list_reps"]):
                t = time.perf_counter()
                for client, url in zip((api, backend), urls):
                    if client.get(url).status_code != 200:
                        raise RuntimeError(f"{url} failed")
                runs.append((time.perf_counter() - t) / 2)
            times[ev.slug] = runs
        a, b = median(times[one.slug]), median(times[series.slug])
        self.add("sellable", a, b, b, dict(dates=dates, products=products, times=times),
                 labels=("1 product", f"series: {dates} dates x {products} products"))

    def bench_duplicates(self):
        """Importing a file, then the same file again: every line already imported, so all of it is refused."""
        from django.db import connection
        from django_scopes import scopes_disabled

        from pretix_secrets_import.importing.columns import ColumnMapping
        from pretix_secrets_import.importing.files import FileFormat
        from pretix_secrets_import.importing.pipeline import import_file
        lines = self.p["import_lines"]
        path = os.path.join(self.datadir, "duplicates.csv")
        times = {"new": [], "again": []}
        for rep in range(self.p["import_reps"]):
            event = self.make_event(f"duplicates-{rep}", "imported_secrets")
            with open(path, "w") as f:
                f.writelines(f"D{rep}-{i:08d}\n" for i in range(lines))
            for kind in ("new", "again"):  # the second import needs the first one's secrets in the pool
                connection.close()
                t = time.perf_counter()
                with open(path, "rb") as f, scopes_disabled():
                    result = import_file(event, f, FileFormat(), ColumnMapping(secret=0), keep_errors=0)
                times[kind].append(time.perf_counter() - t)
                expected = (lines, 0) if kind == "new" else (0, lines)
                if (result.imported, result.error_count) != expected:
                    raise RuntimeError(f"{kind}: imported {result.imported}, {result.error_count} errors")
                log(f"import of {lines} lines, {kind}: {times[kind][-1]:.1f} s")
        os.unlink(path)
        a, b = median(times["new"]), median(times["again"])
        self.add("import-duplicates", a, b, b / a, dict(lines=lines, times=times))

    def bench_format(self):
        """
        A file import into an event with a code format (a regular expression, a length and Code 128 on the tickets)
        against one without; then the check of that whole pool when the format changes and all of it still fits.
        """
        from django.db import connection
        from django_scopes import scopes_disabled

        from pretix_secrets_import.importing.columns import ColumnMapping
        from pretix_secrets_import.importing.files import FileFormat
        from pretix_secrets_import.importing.pipeline import import_file
        from pretix_secrets_import.pool import codeformat
        from pretix_secrets_import.tickets import barcodes
        lines = self.p["import_lines"]
        path = os.path.join(self.datadir, "format.csv")
        rule = {codeformat.FORMAT: codeformat.PATTERN, codeformat.REGEX: "F[0-9]+[ab]-[0-9]{8}",
                codeformat.LENGTH_MAX: 20, barcodes.SETTING: "code128"}
        times = {"free": [], "format": []}
        for rep, pair in interleaved(self.p["import_reps"], "free", "format"):
            for kind in pair:
                event = self.make_event(f"format-{kind}-{rep}", "imported_secrets")
                if kind == "format":
                    for key, value in rule.items():
                        event.settings.set(key, value)
                    checked = event
                with open(path, "w") as f:
                    f.writelines(f"F{rep}{'ab'[kind == 'format']}-{i:08d}\n" for i in range(lines))
                connection.close()
                t = time.perf_counter()
                with open(path, "rb") as f, scopes_disabled():
                    result = import_file(event, f, FileFormat(), ColumnMapping(secret=0), keep_errors=3)
                times[kind].append(time.perf_counter() - t)
                if (result.imported, result.error_count) != (lines, 0):
                    raise RuntimeError(f"{kind}: imported {result.imported}, errors {result.errors}")
                log(f"import of {lines} lines, {kind}: {times[kind][-1]:.1f} s")
        os.unlink(path)
        a, b = median(times["free"]), median(times["format"])
        self.add("import-format", a, b, b / a, dict(lines=lines, times=times, rule=rule))
        connection.close()
        t = time.perf_counter()
        codeformat.check_change(checked, {**checked.settings.freeze(), codeformat.LENGTH_MIN: 10})
        change = time.perf_counter() - t
        log(f"format change checked against {lines} unused secrets: {change:.1f} s")
        self.add("format-change", 10.0, change, change, dict(unused_secrets=lines),
                 labels=("limit", f"check of {lines} unused secrets"))

    def bench_sales(self):
        if self.db != "postgresql":
            self.skip("sales-pg", "PostgreSQL only")
            return
        p = self.p
        need = p["sales_rounds"] * p["sales_clients"] * p["sales_per_client"] + 50
        rand = self.make_event("sales-random", "random")
        pool = self.make_event("sales-pool", "imported_secrets")
        self.fill(pool, "SALES", self.p["pool_small"] + need)
        client = self.api_client()
        for ev in (rand, pool):
            self.order(client, ev)
        rates = {rand.slug: [], pool.slug: []}
        ctx = multiprocessing.get_context("fork")
        for _r, pair in interleaved(p["sales_rounds"], rand, pool):
            for ev in pair:
                rates[ev.slug].append(self._sales_round(ctx, ev))
                log(f"sales {ev.slug}: {rates[ev.slug][-1]:.1f} orders/s")
        a, b = median(rates[rand.slug]), median(rates[pool.slug])
        self.add("sales-pg", a, b, b / a, dict(
            clients=p["sales_clients"], orders_per_client=p["sales_per_client"], rounds=p["sales_rounds"],
            random_rates=rates[rand.slug], pool_rates=rates[pool.slug],
            note="8 forked processes, each with its own database connection",
        ))

    def _sales_round(self, ctx, event):
        from django.db import connections
        connections.close_all()
        go = ctx.Event()
        results = ctx.Queue()
        n = self.p["sales_per_client"]

        def worker():
            try:
                client = self.api_client()
                go.wait()
                for _ in range(n):
                    self.order(client, event)
                results.put(("ok", time.monotonic()))
            except Exception as e:  # reported to the parent
                results.put(("error", repr(e)))
            finally:
                connections.close_all()

        procs = [ctx.Process(target=worker) for _ in range(self.p["sales_clients"])]
        for proc in procs:
            proc.start()
        time.sleep(0.5)
        start = time.monotonic()
        go.set()
        ends = [results.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join()
        errors = [e for status, e in ends if status != "ok"]
        if errors:
            raise RuntimeError(f"sales worker failed: {errors[0]}")
        return n * len(procs) / (max(t for _s, t in ends) - start)


# --- output ----------------------------------------------------------------------------------------------------------

def fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"


def table(results):
    head = ("scenario", "metric", "A", "A value", "B", "B value", "ratio", "target", "status")
    rows = [(r["id"], r["metric"], r["a_label"], fmt(r["a"]), r["b_label"], fmt(r["b"]),
             "-" if r["ratio"] is None else f"{r['ratio']:.3f}", r["target"], r["status"]) for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |" for row in [head] + rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--size", choices=tuple(SIZES), default=os.environ.get("BENCH_SIZE") or "full")
    parser.add_argument("--strict", action="store_true", help="exit with status 2 if a target is missed")
    parser.add_argument("--only", help="comma-separated scenarios: alloc,scale,list,bulk,import,duplicates,format,"
                                       "sales,sellable,feed,checkin,cancel,pdf")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (and database)")
    args = parser.parse_args()
    started = time.time()

    pretix = Pretix(args.db, PG_DB, f"bench-{args.db}-")
    log(f"database {args.db}, size {args.size}, data in {pretix.datadir}")
    t = time.perf_counter()
    pretix.create()
    log(f"migrated in {time.perf_counter() - t:.0f} s")
    pretix.setup_django()
    from django_scopes import scopes_disabled

    bench = Bench(pretix, args.size)
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if args.db == "postgresql" else "SELECT sqlite_version()")
        bench.context["db_version"] = cursor.fetchone()[0]
    only = set(args.only.split(",")) if args.only else None
    try:
        with scopes_disabled():
            bench.setup_base()
            steps = [("alloc", bench.bench_alloc), ("scale", bench.bench_alloc_scale), ("list", bench.bench_list),
                     ("bulk", bench.bench_bulk), ("sales", bench.bench_sales), ("import", bench.bench_import),
                     ("duplicates", bench.bench_duplicates), ("format", bench.bench_format),
                     ("sellable", bench.bench_sellable), ("feed", bench.bench_feed),
                     ("feed", bench.bench_list_feed), ("checkin", bench.bench_checkin),
                     ("cancel", bench.bench_cancel_date), ("pdf", bench.bench_pdf)]
            for name, step in steps:
                if only and name not in only:
                    continue
                log(f"--- {name}")
                step()
    finally:
        if not args.keep:
            pretix.drop()
            pretix.remove()

    out = dict(
        db=args.db, size=args.size, sizes=bench.p, date=datetime.now(timezone.utc).isoformat(),
        duration_s=time.time() - started, machine=dict(
            nproc=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
            db_version=bench.context.get("db_version"),
        ),
        client="in-process (DRF APIClient / Django test Client), no socket",
        context=bench.context, results=bench.results,
        missed=[r["id"] for r in bench.results if r["status"] == "MISSED"],
    )
    path = os.path.join(HERE, f"results-{args.db}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2, default=str)
    print()
    print(table(bench.results))
    print()
    if out["missed"]:
        print("MISSED targets:", ", ".join(out["missed"]))
    else:
        print("All targets met.")
    print(f"Results written to {os.path.relpath(path, ROOT)}; took {out['duration_s']:.0f} s")
    if args.strict and out["missed"]:
        sys.exit(2)


if __name__ == "__main__":
    main()
