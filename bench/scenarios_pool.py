"""
The benchmark's scenarios of the pool's pages and APIs: the list at 1M against 1k, the gate feed and a check-in list's
feed, what can still be sold, and bulk_create against pretix' voucher batch_create.
"""
import math
import time
from datetime import datetime, timedelta, timezone

from harness import ORGA, Harness, analyze, interleaved, median


class PoolScenarios(Harness):
    """list *, feed *, sellable, bulk-api."""

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
