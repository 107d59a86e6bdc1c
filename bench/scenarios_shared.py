"""
The benchmark's shared installation: the first pages of a pool of ten million behind a million secrets of another
event created before it, against the first pages of a pool of a thousand in the same installation.
"""
import time

from harness import ORGA, Harness
from stack import log

# the pages compared: the pool's feed, a check-in list's feed, the API's list and the backend's pool page
SHARED_PAGES = ("shared feed page 1", "shared list feed page 1", "shared list api page 1", "shared backend page 1")


class SharedScenarios(Harness):
    """shared feed page 1, shared list feed page 1, shared list api page 1, shared backend page 1."""

    def bench_shared(self):
        from django.test import Client

        other = self.make_event("shared-other", "imported_secrets")
        big = self.make_event("shared-big", "imported_secrets")
        small = self.make_event("shared-small", "imported_secrets")
        t = time.perf_counter()
        self.fill(other, "OTHER", self.p["shared_other"])  # first: its IDs are below the measured pools'
        self.fill(big, "SHARED-BIG", self.p["shared_big"])
        self.fill(small, "SHARED-SMALL", self.p["pool_small"])
        self.context["fill_shared_s"] = time.perf_counter() - t
        log(f"shared installation: {self.p['shared_other']:,} secrets of another event, then pools of "
            f"{self.p['shared_big']:,} and {self.p['pool_small']:,}, in {self.context['fill_shared_s']:.1f} s")
        self.context["shared_plans"] = self.plans(big)
        api, backend = self.api_client(), Client()
        backend.force_login(self.user)
        urls, size = {}, min(1000, self.p["pool_small"])  # both first pages full
        for ev in (small, big):
            base = f"/api/v1/organizers/{ORGA}/events/{ev.slug}/imported_secrets/"
            checkinlist = ev.checkin_lists.create(name="Entry").pk
            urls[ev.slug] = {
                "shared feed page 1": (api, f"{base}gate_feed/?page_size={size}"),
                "shared list feed page 1": (api, f"{base}gate_feed/?checkinlist={checkinlist}&page_size={size}"),
                "shared list api page 1": (api, base),
                "shared backend page 1": (backend, f"/control/event/{ORGA}/{ev.slug}/secrets_import/"),
            }
        labels = (f"pool {self.p['pool_small']:,}", f"pool {self.p['shared_big']:,}")
        for sid in SHARED_PAGES:
            client, a_url = urls[small.slug][sid]
            self.compare_gets(client, sid, a_url, urls[big.slug][sid][1], labels)

    def plans(self, event) -> dict:
        """How the database reads the first feed page of ``event``: the event as an equality (before issue 26), and as
        ``paging.in_pool_order`` asks it."""
        from django_scopes import scopes_disabled

        from pretix_secrets_import import paging
        from pretix_secrets_import.models import ImportedSecret
        with scopes_disabled():
            queries = {"event = x, ORDER BY id": ImportedSecret.of_event(event).order_by("id")[:1001],
                       "in_pool_order": paging.in_pool_order(event)[:1001]}
            plans = {name: self.plan(str(qs.query)) for name, qs in queries.items()}
        for name, plan in plans.items():
            log(f"first feed page of the pool of {self.p['shared_big']:,}, {name}: {plan}")
        return plans

    @staticmethod
    def plan(sql) -> str:
        """The scan of the pool's table as run: index, rows thrown away, time (SQLite: its query plan)."""
        from django.db import connection
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
                return "; ".join(row[-1] for row in cursor.fetchall())
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]
        node = plan["Plan"]
        while "Relation Name" not in node and node.get("Plans"):
            node = node["Plans"][0]
        return (f"{node['Node Type']} using {node.get('Index Name', '-')}, "
                f"{node.get('Rows Removed by Filter', 0):,} rows removed by filter, {plan['Execution Time']:.1f} ms")
