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
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone

from harness import SIZES
from scenarios_feed_sync import FeedSyncScenarios
from scenarios_import import ImportScenarios
from scenarios_pool import PoolScenarios
from scenarios_sales import SalesScenarios
from scenarios_shared import SharedScenarios
from scenarios_tickets import TicketScenarios
from stack import HERE, Pretix, log

ROOT = os.path.dirname(HERE)
PG_DB = "bench_secrets_import"


class Bench(SalesScenarios, FeedSyncScenarios, PoolScenarios, SharedScenarios, TicketScenarios,
            ImportScenarios):
    """Every scenario, on one organizer."""


# the names --only takes, in the order the scenarios run
STEPS = [("alloc", Bench.bench_alloc), ("scale", Bench.bench_alloc_scale), ("list", Bench.bench_list),
         ("bulk", Bench.bench_bulk), ("sales", Bench.bench_sales), ("import", Bench.bench_import),
         ("duplicates", Bench.bench_duplicates), ("format", Bench.bench_format),
         ("sellable", Bench.bench_sellable), ("shared", Bench.bench_shared), ("feed", Bench.bench_feed),
         ("feed", Bench.bench_list_feed), ("feed-sync", Bench.bench_feed_sync), ("checkin", Bench.bench_checkin),
         ("cancel", Bench.bench_cancel_date), ("pdf", Bench.bench_pdf)]


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


def report(args, bench, started):
    """Write bench/results-<db>.json and print the table; the results as written."""
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
    return out


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--size", choices=tuple(SIZES), default=os.environ.get("BENCH_SIZE") or "full")
    parser.add_argument("--strict", action="store_true", help="exit with status 2 if a target is missed")
    parser.add_argument("--only", help="comma-separated scenarios: alloc,scale,list,bulk,import,duplicates,format,"
                                       "sales,sellable,shared,feed,feed-sync,checkin,cancel,pdf")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (and database)")
    return parser.parse_args()


def run_steps(bench, only):
    from django.db import connection
    from django_scopes import scopes_disabled
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if bench.db == "postgresql" else "SELECT sqlite_version()")
        bench.context["db_version"] = cursor.fetchone()[0]
    with scopes_disabled():
        bench.setup_base()
        for name, step in STEPS:
            if only and name not in only:
                continue
            log(f"--- {name}")
            step(bench)


def main():
    args = parse_args()
    started = time.time()
    pretix = Pretix(args.db, PG_DB, f"bench-{args.db}-")
    log(f"database {args.db}, size {args.size}, data in {pretix.datadir}")
    t = time.perf_counter()
    pretix.create()
    log(f"migrated in {time.perf_counter() - t:.0f} s")
    pretix.setup_django()
    bench = Bench(pretix, args.size)
    try:
        run_steps(bench, set(args.only.split(",")) if args.only else None)
    finally:
        if not args.keep:
            pretix.drop()
            pretix.remove()
    missed = report(args, bench, started)["missed"]
    if args.strict and missed:
        sys.exit(2)


if __name__ == "__main__":
    main()
