"""
Load run: a real pretix behind gunicorn on 127.0.0.1 with PostgreSQL, and client threads that for LOAD_SECONDS
(default 60) list the pool, create secrets one by one and 100 at a time, and buy tickets through pretix' order API,
all at once. Prints p50/p99 latency and throughput per kind of request, writes bench/load-results.json, and then
checks the invariants: no error, no secret on two tickets, every ticket's secret marked used in the pool, the pool
holds exactly what the successful requests stored, and the counters match the rows.

    make load                      # 60 s, 8 client threads, 3 gunicorn workers
    LOAD_SECONDS=10 make load      # a short run

Exits 1 if a request failed or an invariant does not hold.
"""
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as harness  # noqa: E402  (the benchmark's pretix set-up)

harness.PG_DB = "load_secrets_import"  # its own database, so that a benchmark can run beside it
SECONDS = int(os.environ.get("LOAD_SECONDS", 60))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", 8))
WORKERS = int(os.environ.get("LOAD_WORKERS", 3))
POOL = 100_000
BULK = 100
# kind: (share of the requests, status that counts as success)
MIX = {"list": (0.35, 200), "create": (0.2, 201), "bulk_create": (0.1, 201), "order": (0.35, 201)}


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def request(conn, method, path, token, body=None):
    """One request on a kept-alive connection; http.client, because pretix blocks urllib3 from local addresses."""
    headers = {"Authorization": f"Token {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def start_server(config, port, token):
    env = harness.pretix_env(config)
    env.update(DJANGO_SETTINGS_MODULE="bench_settings", PYTHONPATH=HERE)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "pretix.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
         "--timeout", "60", "--log-level", "warning"],
        env=env, start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if request(conn, "GET", "/api/v1/organizers/", token)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError("gunicorn did not answer within 120 s")


def client(port, token, event, item_id, stop, results, index):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    pool = f"/api/v1/organizers/{harness.ORGA}/events/{event}/imported_secrets/"
    rng = random.Random(index)
    kinds, weights = zip(*[(kind, share) for kind, (share, _status) in MIX.items()])
    n = 0
    while not stop.is_set():
        kind = rng.choices(kinds, weights)[0]
        n += 1
        method, path, body = "GET", pool + "?page=1", None
        if kind == "list":
            page = rng.choice(["1", "last", "random"])
            if page != "1":  # the page count changes while secrets are added: ask for it
                count = json.loads(request(conn, "GET", pool + "?page_size=1", token)[1])["count"]
                last = max(1, -(-count // 50))
                path = pool + f"?page={last if page == 'last' else rng.randint(1, last)}"
        elif kind == "create":
            method, body = "POST", {"secret": f"LOAD-C{index}-{n}"}
            path = pool
        elif kind == "bulk_create":
            method, path = "POST", pool + "bulk_create/"
            body = [{"secret": f"LOAD-B{index}-{n}-{i}"} for i in range(BULK)]
        else:
            method, path = "POST", f"/api/v1/organizers/{harness.ORGA}/events/{event}/orders/"
            body = {"email": "load@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
                    "positions": [{"item": item_id, "price": "0.00"}]}
        started = time.perf_counter()
        try:
            status, text = request(conn, method, path, token, body)
            text = text[:300].decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            status, text = "exception", repr(e)
            conn.close()  # http.client reconnects on the next request
        results.append((kind, time.perf_counter() - started, status, text))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def check_invariants(event, ok):
    from django.db.models import Count, F, Q
    from django_scopes import scopes_disabled

    from pretix.base.models import OrderPosition

    from pretix_secrets_import.models import ImportedSecret
    problems = []
    with scopes_disabled():
        pool = ImportedSecret.objects.filter(event=event)
        expected = POOL + ok["create"] + BULK * ok["bulk_create"]
        if pool.count() != expected:
            problems.append(f"the pool holds {pool.count()} secrets, the successful requests stored {expected}")
        positions = list(OrderPosition.all.filter(order__event=event).values_list("secret", flat=True))
        if len(positions) != ok["order"]:
            problems.append(f"{len(positions)} tickets for {ok['order']} successful orders")
        twice = [s for s, n in Counter(OrderPosition.all.filter(organizer_id=event.organizer_id)
                                       .values_list("secret", flat=True)).items() if n > 1]
        if twice:
            problems.append(f"secrets on more than one ticket: {twice[:5]}")
        used = set(pool.filter(used=True).values_list("secret", flat=True))
        if set(positions) != used:
            problems.append(f"{len(set(positions) - used)} ticket secrets not marked used, "
                            f"{len(used - set(positions))} used secrets on no ticket")
        counted = [
            {**row, "used": row["total"] - row["unused"]}
            for row in pool.values("item", "variation", "subevent")
            .annotate(total=Count("id"), unused=Count("id", filter=Q(used=False)))
            .order_by(F("item").asc(nulls_first=True), F("variation").asc(nulls_first=True),
                      F("subevent").asc(nulls_first=True))
        ]
        if ImportedSecret.summary(event) != counted:
            problems.append(f"counters {ImportedSecret.summary(event)} differ from the rows {counted}")
    return problems


def main():
    datadir = tempfile.mkdtemp(prefix="load-")
    config = harness.write_config("postgresql", datadir)
    harness.recreate_pg_database()
    log(f"pretix on PostgreSQL database {harness.PG_DB}, data in {datadir}; migrating")
    harness.timed_command(config, "migrate", "--noinput", "-v", "0")
    os.environ["PRETIX_CONFIG_FILE"] = config
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    import django
    django.setup()
    import logging
    for name in ("celery", "pretix", "django"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from django.db import connections
    from django_scopes import scopes_disabled

    bench = harness.Bench("postgresql", "full", datadir)
    server = None
    try:
        with scopes_disabled():
            bench.setup_base()
            event = bench.make_event("load", "imported_secrets")
            bench.fill(event, "LOAD-POOL", POOL)
        connections.close_all()
        port = random.randint(20000, 40000)
        server = start_server(config, port, bench.token)
        log(f"gunicorn with {WORKERS} workers on 127.0.0.1:{port}; {CLIENTS} clients for {SECONDS} s")
        stop, results = threading.Event(), []
        threads = [threading.Thread(target=client, args=(port, bench.token, event.slug,
                                                         event.bench_item.pk, stop, results, i))
                   for i in range(CLIENTS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.perf_counter() - started
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    by_kind, ok, errors = defaultdict(list), Counter(), []
    for kind, seconds, status, text in results:
        by_kind[kind].append(seconds)
        if status == MIX[kind][1]:
            ok[kind] += 1
        else:
            errors.append({"kind": kind, "status": status, "body": text})
    rows = []
    for kind in MIX:
        times = by_kind[kind]
        rows.append(dict(kind=kind, requests=len(times), errors=len(times) - ok[kind],
                         p50_ms=1000 * percentile(times, 0.5), p99_ms=1000 * percentile(times, 0.99),
                         max_ms=1000 * max(times, default=float("nan")), per_s=len(times) / elapsed,
                         mean_ms=1000 * statistics.mean(times) if times else float("nan")))
    with scopes_disabled():
        problems = check_invariants(event, ok)
    out = dict(seconds=elapsed, clients=CLIENTS, workers=WORKERS, pool=POOL, bulk_size=BULK, rows=rows,
               errors=errors[:50], error_count=len(errors), invariant_problems=problems,
               secrets_added=ok["create"] + BULK * ok["bulk_create"], tickets_sold=ok["order"])
    with open(os.path.join(HERE, "load-results.json"), "w") as f:
        json.dump(out, f, indent=2)

    print()
    print("| request | requests | errors | per s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['requests']} | {r['errors']} | {r['per_s']:.1f} | {r['p50_ms']:.0f} | "
              f"{r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    print(f"\n{sum(r['requests'] for r in rows)} requests in {elapsed:.0f} s with {CLIENTS} clients; "
          f"{out['secrets_added']} secrets added, {out['tickets_sold']} tickets sold")
    for e in errors[:10]:
        print("error:", e)
    print("invariants:", "all hold" if not problems else problems)
    harness.recreate_pg_database_drop()
    shutil.rmtree(datadir, ignore_errors=True)
    if errors or problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
