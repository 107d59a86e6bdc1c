"""
What the load run found: every request classified, the invariants of the pool and the tickets, the error lines of the
logs and the table of requests.
"""
import os
import re
import statistics
from collections import Counter, defaultdict

from load_importer import IMPORT_PREFIX
from load_servers import tail

POOL = 100_000  # unused secrets of the mix's event, and of the sales rounds' imported_secrets event
KINDS = ["list", "create", "bulk_create", "order", "import", "import poll", "import step", "sales random",
         "sales imported_secrets"]
TERMINATED_WINDOW = 5.0  # s after the termination in which a failing request counts as expected


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def classify(results, term):
    """ok, expected (with the reason) or error, for every request."""
    window = (term["start"], term["end"] + TERMINATED_WINDOW) if term.get("start") else None
    for e in results.entries:
        if e["ok"]:
            e["class"] = "ok"
        elif e["expected"]:
            e["class"] = "expected"
        elif window and e["end"] >= window[0] and e["start"] <= window[1]:
            e["class"], e["expected"] = "expected", "session terminated"
        else:
            e["class"] = "error"


def check_invariants(load_event, sales_pool_event, expect):
    return check_pool(load_event, expect) + check_tickets((load_event, sales_pool_event), expect)


def check_pool(load_event, expect):
    """The mix's pool: the initial secrets, what the requests stored, and every import all or nothing."""
    from django.db import connection

    from pretix_secrets_import.models import ImportedSecret
    problems = []
    pool = ImportedSecret.objects.filter(event=load_event)
    secrets = set(pool.exclude(secret__startswith=IMPORT_PREFIX).values_list("secret", flat=True))
    initial = {s for s in secrets if s.startswith("LOAD-POOL-")}
    if len(initial) != POOL:
        problems.append(f"{len(initial)} of the {POOL} initial secrets are in the pool")
    created = secrets - initial
    missing = expect["created"] - created
    extra = created - expect["created"] - expect["created_maybe"]
    if missing:
        problems.append(f"{len(missing)} secrets stored by successful requests are not in the pool: "
                        f"{sorted(missing)[:5]}")
    if extra:
        problems.append(f"{len(extra)} secrets in the pool that no request stored: {sorted(extra)[:5]}")

    with connection.cursor() as cursor:  # per import: all or nothing, and all exactly if it succeeded
        cursor.execute(f'SELECT split_part(secret, \'-\', 1), count(*) FROM "{ImportedSecret._meta.db_table}" '
                       f"WHERE event_id = %s AND secret LIKE %s GROUP BY 1", (load_event.pk, IMPORT_PREFIX + "%"))
        counts = dict(cursor.fetchall())
    for prefix, lines in expect["files"].items():
        n = counts.pop(prefix, 0)
        if n not in (0, lines):
            problems.append(f"import {prefix}: partial, {n} of {lines} secrets in the pool")
        elif prefix in expect["files_maybe"]:
            continue
        elif n != (lines if prefix in expect["imported"] else 0):
            problems.append(f"import {prefix} {'succeeded' if prefix in expect['imported'] else 'failed'}, "
                            f"but {n} of its {lines} secrets are in the pool")
    if counts:
        problems.append(f"secrets of unknown imports in the pool: {counts}")
    return problems


def check_tickets(events, expect):
    """No secret on two tickets; per event the tickets, the used secrets and the counters agree."""
    from django.db.models import Count, F, Q

    from pretix.base.models import OrderPosition

    from pretix_secrets_import.models import ImportedSecret
    from pretix_secrets_import.pool.store import summary as pool_summary
    problems = []
    twice = [s for s, n in Counter(OrderPosition.all.filter(organizer_id=events[0].organizer_id)
                                   .values_list("secret", flat=True)).items() if n > 1]
    if twice:
        problems.append(f"secrets on more than one ticket: {twice[:5]}")
    for event in events:
        low, high = expect["orders"][event.slug]
        positions = list(OrderPosition.all.filter(order__event=event).values_list("secret", flat=True))
        if not low <= len(positions) <= high:
            problems.append(f"{event.slug}: {len(positions)} tickets for {low} successful orders"
                            + (f" (and {high - low} that may have been stored)" if high > low else ""))
        event_pool = ImportedSecret.objects.filter(event=event)
        used = set(event_pool.filter(used=True).values_list("secret", flat=True))
        if set(positions) != used:
            problems.append(f"{event.slug}: {len(set(positions) - used)} ticket secrets not marked used in the "
                            f"pool, {len(used - set(positions))} used secrets on no ticket")
        counted = [
            {**row, "used": row["total"] - row["unused"]}
            for row in event_pool.values("item", "variation", "subevent")
            .annotate(total=Count("id"), unused=Count("id", filter=Q(used=False)))
            .order_by(F("item").asc(nulls_first=True), F("variation").asc(nulls_first=True),
                      F("subevent").asc(nulls_first=True))
        ]
        summary = [counted_group.as_dict() for counted_group in pool_summary(event)]
        if summary != counted:
            problems.append(f"{event.slug}: counters {summary} differ from the rows {counted}")
    return problems


def expectations(results, importer, sales):
    created, maybe = set(), set()
    orders = Counter()
    for e in results.entries:
        if e["kind"] in ("create", "bulk_create"):
            if e["class"] == "ok":
                created.update(e["secrets"])
            elif e["class"] == "expected":  # failed as its session was terminated: may or may not have stored
                maybe.update(e["secrets"])
        elif e["kind"] == "order":
            orders["ok" if e["class"] == "ok" else "maybe" if e["class"] == "expected" else "failed"] += 1
    imported = {r["prefix"] for r in importer.imports if r["success"]}
    files_maybe = {r["prefix"] for r in importer.imports if not r["ready"]} - imported
    return dict(created=created, created_maybe=maybe, files=importer.files, imported=imported,
                files_maybe=files_maybe, orders={
                    "load": (orders["ok"], orders["ok"] + orders["maybe"]),
                    "sales-imported": (sales["orders"]["sales-imported"],) * 2,
                })


def log_findings(paths, limit=12):
    """Error lines and tracebacks' last lines from the server and worker logs."""
    found = []
    for path in paths:
        lines = tail(path, 100000).splitlines()
        for line in lines:
            if re.search(r"\b(ERROR|CRITICAL)\b", line) or re.match(r"[\w.]+(Error|Exception)\b", line):
                found.append(f"{os.path.basename(path)}: {line.strip()[:300]}")
    counts = Counter(found)
    return [f"{line}" + (f"  (x{n})" if n > 1 else "") for line, n in counts.most_common(limit)], len(found)


def table_rows(results, mix_seconds, sales_seconds):
    by_kind = defaultdict(list)
    for e in results.entries:
        by_kind[e["kind"]].append(e)
    rows = []
    for kind in KINDS:
        entries = by_kind[kind]
        times = [e["end"] - e["start"] for e in entries]
        seconds = sales_seconds if kind.startswith("sales") else mix_seconds
        classes = Counter(e["class"] for e in entries)
        rows.append(dict(kind=kind, requests=len(entries), ok=classes["ok"], expected_failures=classes["expected"],
                         errors=classes["error"], per_s=len(entries) / seconds if seconds else float("nan"),
                         p50_ms=1000 * percentile(times, 0.5), p99_ms=1000 * percentile(times, 0.99),
                         max_ms=1000 * max(times, default=float("nan")),
                         mean_ms=1000 * statistics.mean(times) if times else float("nan")))
    return rows
