"""
The benchmark's sales scenarios: a ticket's secret from the pool against pretix' random one (alloc), from a pool of
1M against one of 1k (alloc-scale), and orders/s of concurrent buyers on PostgreSQL (sales-pg).
"""
import multiprocessing
import time

from harness import Harness, interleaved, median
from stack import log


class SalesScenarios(Harness):
    """alloc, alloc-scale, sales-pg."""

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

    def bench_alloc_scale(self):
        self.fill_scale_pools()
        self.alloc_ab("alloc-scale", self.small, self.big, "BIG-", labels=self.pool_labels())

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
