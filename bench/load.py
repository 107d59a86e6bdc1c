"""
Load run: pretix as production runs it, and abused. gunicorn (LOAD_WORKERS, 3, sync workers) and a real Celery
worker (prefork, concurrency 2, consuming every queue pretix routes tasks to plus `secrets_import`, which this run's
pretix.cfg sets as the plugin's import queue) on 127.0.0.1; a PostgreSQL database that the run creates under a name of
its own (load_secrets_import_<random>) and drops at the end; a redis-server that the run starts on a free port as Celery
broker, result backend and cache and session store, and stops at the end (bench/stack.py). So the run never touches
the database, broker, cache or sessions of a pretix beside it. Each server runs in its own process group and logs to
a file in the temporary data directory.

1. The mix: for at least LOAD_SECONDS (60) LOAD_CLIENTS (8) threads list the pool, create secrets one by one and 100
   at a time and buy tickets through pretix' order API. Beside them one more client is an organizer in the backend:
   it logs in (/control/login, CSRF and cookies by hand on http.client), uploads a CSV of fresh secrets with its own
   prefix, posts the column mapping and polls the task (?async_id=...&ajax=1) until it ends, again and again
   (LOAD_IMPORT_LINES, 50,000 lines each). Two of its imports are struck, sized to run about 25 s at the first one's
   rate (LOAD_KILL_LINES: a fixed size) and struck at the first poll that shows 1-30 %:
   - the kill: SIGKILL to the worker's whole process group (its main process and pool children at once, as when its
     machine or container goes down; tests/importing/test_worker.py kills a pool child alone, as the out-of-memory
     killer does), then a new worker. The killed import's poll must end within 180 s (the plugin's LOST_AFTER, 60 s,
     plus heartbeat and poll) with success false and "Nothing was imported", none of its secrets may be in the pool,
     and posting the mapping again on the same page must import all of them;
   - the termination: pg_terminate_backend() of every other session of the database. Requests failing within
     TERMINATED_WINDOW (5 s) of it count as expected, not as errors; the import must end with success false and a
     message.
   The mix runs on past LOAD_SECONDS until both are done (at most OVERRUN seconds).
2. Sales throughput through this stack: LOAD_CLIENTS threads only buy tickets, for an event with the generator
   `random` and one with `imported_secrets` (a pool of 100,000), in LOAD_SALES_ROUNDS (4) rounds A B, B A, ... of
   LOAD_SALES_SECONDS (5 s) each; the median orders/s of each and the ratio imported/random (target >= 0.90).
3. The invariants: every import's secrets are in the pool completely or not at all, and completely exactly if it
   succeeded; no secret on two tickets; every ticket's secret marked used and no used secret without a ticket; the
   pool holds exactly the initial secrets plus what the successful requests stored (a request that failed because its
   session was terminated may or may not have stored); the counters match the rows.

Prints and writes to bench/load-results.json: throughput and p50/p99/max per kind of request (an import: from the
upload to the poll that shows its end), the kill, the termination, the sales comparison, and error lines of the logs.
The data directory (with the logs) is kept and named if the run fails. Every wait has a deadline, and gunicorn and
the worker are stopped, the database dropped and the redis-server stopped at the end whatever happens.

    make load                      # 60 s mix (longer while the kill's import is waited for), then the sales rounds
    LOAD_SECONDS=10 make load      # a shorter mix

Exits 1 on an unexpected error, a failed check or a broken invariant (a missed sales target is only reported).
"""
import json
import os
import signal
import sys
import threading
import time
from collections import Counter

import harness
from load_checks import (
    POOL, check_invariants, classify, expectations, log_findings, table_rows,
)
from load_clients import (
    BULK, CLIENTS, SALES_ROUNDS, SALES_SECONDS, SALES_TARGET, Results, client,
    sales_phase,
)
from load_importer import IMPORT_DEADLINE, IMPORT_LINES, KILL_BOUND, Importer
from load_servers import IMPORT_QUEUE, PG_DB, WORKERS, Servers, celery_queues
from stack import HERE, Pretix, log

SECONDS = int(os.environ.get("LOAD_SECONDS", 60))
OVERRUN = 420.0  # s the mix may run on past LOAD_SECONDS for the kill and the termination


class LoadRun:
    """One load run: its pretix, servers and clients, and what they recorded."""

    def __init__(self):
        self.load_before = os.getloadavg()
        self.pretix = Pretix("postgresql", PG_DB, "load-", redis=True, import_queue=IMPORT_QUEUE)
        self.results, self.servers, self.importer = Results(), None, None

    def make_data(self):
        """The organizer, the event of the mix and the two of the sales rounds, with their pools."""
        from django.db import connections
        from django_scopes import scopes_disabled
        self.bench = harness.Harness(self.pretix, "full")
        with scopes_disabled():
            self.bench.setup_base()
            self.event = self.bench.make_event("load", "imported_secrets")
            self.bench.fill(self.event, "LOAD-POOL", POOL)
            self.rand = self.bench.make_event("sales-random", "random")
            self.pool = self.bench.make_event("sales-imported", "imported_secrets")
            self.bench.fill(self.pool, "SALES", POOL)
        connections.close_all()

    def mix(self):
        """The API clients and the backend importer, until SECONDS have passed and the importer's strikes are done."""
        from pretix_secrets_import.models import ImportedSecret
        event, token = self.event, self.bench.token
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(self.servers.port, token, event.slug, event.bench_item.pk,
                                                         stop, self.results, i), daemon=True)
                   for i in range(CLIENTS)]
        importer = self.importer = Importer(self.servers, event, ImportedSecret._meta.db_table, stop, self.results)
        started = time.perf_counter()
        for t in threads + [importer]:
            t.start()
        while time.perf_counter() < started + SECONDS + OVERRUN:
            if time.perf_counter() >= started + SECONDS and importer.scenarios_done.is_set():
                break
            time.sleep(0.2)
        else:
            importer.problems.append(f"the kill and the termination were not done {OVERRUN:.0f} s after the mix")
        stop.set()
        for t in threads:
            t.join(timeout=120)
        self.mix_seconds = time.perf_counter() - started
        importer.join(timeout=IMPORT_DEADLINE + 30)
        if importer.is_alive():
            importer.problems.append("the import client did not end")

    def sell(self):
        sales_started = time.perf_counter()
        self.sales = sales_phase(self.servers.port, self.bench.token, self.rand, self.pool, self.results)
        self.sales_seconds = (time.perf_counter() - sales_started) / 2  # per event

    def summary(self):
        """Everything bench/load-results.json holds (written here)."""
        from django_scopes import scopes_disabled
        results, importer, sales = self.results, self.importer, self.sales
        classify(results, importer.term)
        rows = table_rows(results, self.mix_seconds, self.sales_seconds)
        errors = [{k: e[k] for k in ("kind", "status", "text")} for e in results.entries if e["class"] == "error"]
        expected = Counter(f"{e['kind']}: {e['expected']}" for e in results.entries if e["class"] == "expected")
        term = {k: v for k, v in importer.term.items() if k not in ("start", "end")}
        term["expected_failures"] = {k: n for k, n in expected.items() if k.endswith("session terminated")}
        term["expected_failures_total"] = sum(term["expected_failures"].values())
        with scopes_disabled():
            problems = importer.problems + check_invariants(self.event, self.pool,
                                                            expectations(results, importer, sales))
        findings, finding_count = log_findings(self.servers.logs)
        imports = [{k: v for k, v in r.items() if k not in ("started", "ended", "process", "entry")}
                   for r in importer.imports]
        kill = {k: v for k, v in importer.kill.items() if k != "at"}
        out = dict(seconds=self.mix_seconds, clients=CLIENTS, workers=WORKERS, celery=dict(
                   pool="prefork", concurrency=2, queues=self.servers.queues), pool=POOL, bulk_size=BULK,
                   import_lines=IMPORT_LINES, rows=rows, kill=kill, termination=term, sales=sales, imports=imports,
                   errors=errors[:50], error_count=len(errors), invariant_problems=problems, log_findings=findings,
                   log_finding_count=finding_count, machine=dict(
                       nproc=os.cpu_count(), loadavg_before=self.load_before, loadavg_after=os.getloadavg()))
        with open(os.path.join(HERE, "load-results.json"), "w") as f:
            json.dump(out, f, indent=2, default=str)
        return out


def print_summary(out):
    print()
    print("| request | count | ok | expected failures | errors | per s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        print(f"| {r['kind']} | {r['requests']} | {r['ok']} | {r['expected_failures']} | {r['errors']} | "
              f"{r['per_s']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    ok_imports = [r for r in out["imports"] if r["success"]]
    print(f"\nload average before {out['machine']['loadavg_before'][0]:.1f}, after {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"mix: {out['seconds']:.0f} s with {CLIENTS} clients and one backend importer; "
          f"{len(ok_imports)} imports succeeded ({sum(r['lines'] for r in ok_imports)} secrets)")
    kill, term, sales = out["kill"], out["termination"], out["sales"]
    if kill.get("performed"):
        print(f"kill: SIGKILL at {kill['percentage']} % of {kill['prefix']}; the poll showed ready={kill['ready']} "
              f"success={kill['success']} after {kill['failure_shown_after_s']:.1f} s (LOST_AFTER "
              f"{kill['lost_after_s']}, bound {KILL_BOUND:.0f} s): {kill['message']!r}; {kill['in_pool_after']} "
              f"secrets in the pool (right after the kill: {kill['in_pool_at_kill']}); retry: "
              f"success={kill.get('retry_success')} in "
              f"{kill.get('retry_seconds', float('nan')):.1f} s, {kill.get('retry_in_pool')} secrets in the pool"
              f" -> {'passed' if kill.get('ok') else 'FAILED'}")
    else:
        print("kill: not performed")
    print(f"termination: {term.get('sessions')} sessions at {term.get('percentage', '-')} % of {term.get('prefix')}"
          f" (during an import: {term.get('during_import')}); {term['expected_failures_total']} requests failed as "
          f"expected {term['expected_failures']}; the import: success={term.get('import_success')} "
          f"after {term.get('import_seconds_after', float('nan')):.1f} s: {term.get('import_message')!r}")
    print(f"sales through gunicorn, {CLIENTS} clients, {SALES_ROUNDS} x {SALES_SECONDS:g} s each: random "
          f"{sales['random_orders_per_s']:.1f} orders/s, imported_secrets {sales['imported_orders_per_s']:.1f} "
          f"orders/s, ratio {sales['ratio']:.3f} (target >= {SALES_TARGET}: {'met' if sales['met'] else 'MISSED'})")
    for e in out["errors"][:10]:
        print("error:", e)
    if out["log_findings"]:
        print(f"log lines ({out['log_finding_count']} error lines in the gunicorn and worker logs):")
        for line in out["log_findings"]:
            print("  ", line)
    print("invariants and checks:", "all hold" if not out["invariant_problems"] else "")
    for p in out["invariant_problems"]:
        print("  PROBLEM:", p)


def main():
    # a SIGTERM ends the run like an exception: the finally blocks below still stop the servers and drop the database
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    run, out = LoadRun(), None
    log(f"pretix on a PostgreSQL database and a redis-server of the run's own ({run.pretix.pg_db}), data and logs "
        f"in {run.pretix.datadir}; migrating")
    try:
        run.pretix.create()
        run.pretix.setup_django()
        try:
            run.make_data()
            run.servers = Servers(run.pretix, celery_queues(), run.bench.token)
            run.servers.start()
            log(f"gunicorn with {WORKERS} workers on 127.0.0.1:{run.servers.port}, Celery worker (prefork, 2) on "
                f"queues {', '.join(run.servers.queues)}; {CLIENTS} clients for at least {SECONDS} s and a backend "
                "importer")
            run.mix()
            log(f"mix done after {run.mix_seconds:.0f} s; sales: random against imported_secrets, {SALES_ROUNDS} "
                "rounds")
            run.sell()
        finally:
            if run.servers:
                run.servers.stop()
        out = run.summary()
    finally:
        run.pretix.drop()
        if out is None:
            log(f"failed: logs kept in {run.pretix.datadir}")
    print_summary(out)
    if out["error_count"] or out["invariant_problems"]:
        print(f"logs kept in {run.pretix.datadir}")
        sys.exit(1)
    run.pretix.remove()


if __name__ == "__main__":
    main()
