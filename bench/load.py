"""
Load run: pretix as production runs it, and abused. gunicorn (LOAD_WORKERS, 3, sync workers) and a real Celery
worker (prefork, concurrency 2, consuming every queue pretix routes tasks to plus `secrets_import`, which this run's
pretix.cfg sets as the plugin's import queue) on 127.0.0.1; PostgreSQL (database load_secrets_import); Redis as Celery
broker (db 5), result backend (db 6) and cache and session store of both (db 7); the three are flushed at the start.
Each server runs in its own process group and logs to a file in the temporary data directory.

1. The mix: for at least LOAD_SECONDS (60) LOAD_CLIENTS (8) threads list the pool, create secrets one by one and 100
   at a time and buy tickets through pretix' order API. Beside them one more client is an organizer in the backend:
   it logs in (/control/login, CSRF and cookies by hand on http.client), uploads a CSV of fresh secrets with its own
   prefix, posts the column mapping and polls the task (?async_id=...&ajax=1) until it ends, again and again
   (LOAD_IMPORT_LINES, 50,000 lines each). Two of its imports are struck, sized to run about 25 s at the first one's
   rate (LOAD_KILL_LINES: a fixed size) and struck at the first poll that shows 1-30 %:
   - the kill: SIGKILL to the worker's process group, then a new worker. The killed import's poll must end within
     180 s (the plugin's LOST_AFTER, 60 s, plus heartbeat and poll) with success false and "Nothing was imported",
     none of its secrets may be in the pool, and posting the mapping again on the same page must import all of them;
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
the worker are stopped at the end whatever happens.

    make load                      # 60 s mix (longer while the kill's import is waited for), then the sales rounds
    LOAD_SECONDS=10 make load      # a shorter mix

Exits 1 on an unexpected error, a failed check or a broken invariant (a missed sales target is only reported).
"""
import http.client
import http.cookies
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import Counter, defaultdict

import harness  # the benchmark's organizer, events and pools
from stack import HERE, Pretix, log, pg_connect

PG_DB = "load_secrets_import"  # its own database, so that a benchmark can run beside it
SECONDS = int(os.environ.get("LOAD_SECONDS", 60))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", 8))
WORKERS = int(os.environ.get("LOAD_WORKERS", 3))
IMPORT_LINES = int(os.environ.get("LOAD_IMPORT_LINES", 50_000))  # secrets per backend import
# The imports that are killed or terminated are sized to run for about STRIKE_SECONDS at the rate of the first import
# (LOAD_KILL_LINES: a fixed size instead). The kill and the termination come at the first poll that shows such an import
# between these percentages: the plugin publishes the progress every few seconds, so the percentage shown lags, and
# the upper bound keeps them well before the import's commit (which the run checks, too).
KILL_LINES = int(os.environ.get("LOAD_KILL_LINES", 0))
STRIKE_SECONDS, STRIKE_PCT = 25, (0, 30)
SALES_ROUNDS = int(os.environ.get("LOAD_SALES_ROUNDS", 4))
SALES_SECONDS = float(os.environ.get("LOAD_SALES_SECONDS", 5))
SALES_TARGET = 0.90
POOL = 100_000
BULK = 100
# kind: (share of the requests, status that counts as success)
MIX = {"list": (0.35, 200), "create": (0.2, 201), "bulk_create": (0.1, 201), "order": (0.35, 201)}
KINDS = ["list", "create", "bulk_create", "order", "import", "import poll", "import step", "sales random",
         "sales imported_secrets"]
REDIS_DBS = (5, 6, 7)  # Celery broker, result backend, cache and sessions
IMPORT_QUEUE = "secrets_import"  # the plugin's own queue for file imports (its config option [pretix_secrets_import])
IMPORT_PREFIX = "LOADIMP"
EMAIL, PASSWORD = "bench@localhost", "bench"  # the user bench/harness.py's setup_base creates
TERMINATED_WINDOW = 5.0  # s after the termination in which a failing request counts as expected
KILL_BOUND = 180.0  # s from the SIGKILL until the killed import's poll must show the failure
IMPORT_DEADLINE = 240.0  # s for any other import, from the upload to its end
WORKER_START = 120.0  # s for a worker or gunicorn to come up
OVERRUN = 420.0  # s the mix may run on past LOAD_SECONDS for the kill and the termination
TERMINATE_SQL = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


class Results:
    """Every request of every client: kind, start, end (perf_counter), status, ok and, if known, why it may fail."""

    def __init__(self):
        self.entries = []

    def add(self, kind, start, end, status, ok, text="", secrets=None, expected=None, **extra):
        entry = dict(kind=kind, start=start, end=end, status=status, ok=ok, text=text, secrets=secrets,
                     expected=expected, **extra)
        self.entries.append(entry)
        return entry


def request(conn, method, path, token, body=None):
    """One request on a kept-alive connection; http.client, because pretix blocks urllib3 from local addresses."""
    headers = {"Authorization": f"Token {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def order_body(item_id):
    return {"email": "load@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
            "positions": [{"item": item_id, "price": "0.00"}]}


# --- the processes ---------------------------------------------------------------------------------------------------

def celery_queues():
    """Every queue pretix routes a task to, and the plugin's queue for imports (which this run configures)."""
    from django.conf import settings

    from pretix.celery_app import app

    from pretix_secrets_import.importing.tasks import import_secrets
    queues = [q.name for q in settings.CELERY_TASK_QUEUES]
    for routes in settings.CELERY_TASK_ROUTES:
        queues += [options["queue"] for _pattern, options in routes if "queue" in options]
    route = app.amqp.router.route(import_secrets._get_exec_options(), import_secrets.name)
    queues += [route["queue"].name if hasattr(route.get("queue"), "name") else route.get("queue"),
               getattr(import_secrets, "queue", None), IMPORT_QUEUE]
    try:
        from pretix_secrets_import.config import import_queue
        queues.append(import_queue())
    except ImportError:  # a plugin version without the option
        pass
    return sorted({q for q in queues if q})


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Servers:
    """gunicorn and a Celery worker, each in its own process group, logging to files in the data directory."""

    def __init__(self, pretix, queues, token):
        self.env = pretix.env(bench_settings=True)
        self.datadir, self.queues, self.token = pretix.datadir, queues, token
        self.port = random.randint(20000, 40000)
        self.gunicorn = self.worker = None
        self.worker_log = None
        self.generation = 0
        self.logs = []

    def _spawn(self, name, cmd):
        path = os.path.join(self.datadir, name + ".log")
        with open(path, "ab") as out:
            proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.logs.append(path)
        return proc, path

    def start_gunicorn(self):
        self.gunicorn, path = self._spawn("gunicorn", [
            sys.executable, "-m", "gunicorn", "pretix.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(WORKERS), "--timeout", "60", "--log-level", "warning", "--capture-output"])
        deadline = time.time() + WORKER_START
        while time.time() < deadline:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.gunicorn.returncode}):\n{tail(path)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                if request(conn, "GET", "/api/v1/organizers/", self.token)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"gunicorn did not answer within {WORKER_START:.0f} s:\n{tail(path)}")

    def start_worker(self):
        """Start a worker and return at once; ``wait_worker`` waits until it consumes."""
        self.generation += 1
        self.worker, self.worker_log = self._spawn(f"worker-{self.generation}", [
            sys.executable, "-m", "celery", "-A", "pretix.celery_app", "worker", "--pool", "prefork",
            "--concurrency", "2", "--queues", ",".join(self.queues), "--hostname", f"load{self.generation}@%h",
            "--loglevel", "info"])

    def wait_worker(self, timeout=WORKER_START):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the Celery worker exited ({self.worker.returncode}):\n{tail(self.worker_log)}")
            with open(self.worker_log, errors="replace") as f:
                if re.search(r"@\S+ ready\.", f.read()):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the Celery worker was not ready within {timeout:.0f} s:\n{tail(self.worker_log)}")

    def kill_worker(self):
        """SIGKILL the worker's whole process group: the main process and its pool children at once."""
        try:
            os.killpg(self.worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.worker.wait(timeout=30)

    def stop(self):
        """SIGTERM to gunicorn's and the worker's main process (a warm shutdown), then SIGKILL to what is left."""
        procs = [p for p in (self.worker, self.gunicorn) if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the group (pool children, gunicorn workers)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


# --- the API clients -------------------------------------------------------------------------------------------------

def client(port, token, event, item_id, stop, results, index):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    pool = f"/api/v1/organizers/{harness.ORGA}/events/{event}/imported_secrets/"
    rng = random.Random(index)
    kinds, weights = zip(*[(kind, share) for kind, (share, _status) in MIX.items()])
    n = 0
    while not stop.is_set():
        kind = rng.choices(kinds, weights)[0]
        n += 1
        method, path, body, secrets = "GET", pool + "?page=1", None, None
        if kind == "list":
            page = rng.choice(["1", "last", "random"])
            if page != "1":  # the page count changes while secrets are added: ask for it
                started = time.perf_counter()
                try:
                    status, text = request(conn, "GET", pool + "?page_size=1", token)
                    last = max(1, -(-json.loads(text)["count"] // 50))
                except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                    results.add(kind, started, time.perf_counter(), "exception", False, repr(e))
                    conn.close()
                    continue
                if status != 200:
                    results.add(kind, started, time.perf_counter(), status, False, text[:300].decode(errors="replace"))
                    continue
                path = pool + f"?page={last if page == 'last' else rng.randint(1, last)}"
        elif kind == "create":
            method, body = "POST", {"secret": f"LOAD-C{index}-{n}"}
            path, secrets = pool, [body["secret"]]
        elif kind == "bulk_create":
            method, path = "POST", pool + "bulk_create/"
            body = [{"secret": f"LOAD-B{index}-{n}-{i}"} for i in range(BULK)]
            secrets = [row["secret"] for row in body]
        else:
            method, path = "POST", f"/api/v1/organizers/{harness.ORGA}/events/{event}/orders/"
            body = order_body(item_id)
        started = time.perf_counter()
        try:
            status, text = request(conn, method, path, token, body)
            text = text[:300].decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            status, text = "exception", repr(e)
            conn.close()  # http.client reconnects on the next request
        results.add(kind, started, time.perf_counter(), status, status == MIX[kind][1], text, secrets)


def sales_round(port, token, event, kind, results):
    """CLIENTS threads buy tickets for SALES_SECONDS; orders per second, measured until the last answer."""
    go = threading.Barrier(CLIENTS + 1)
    times = {}
    path = f"/api/v1/organizers/{harness.ORGA}/events/{event.slug}/orders/"
    body = order_body(event.bench_item.pk)
    counts = Counter()

    def buyer():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        go.wait(timeout=60)
        while time.perf_counter() < times["end"]:
            started = time.perf_counter()
            try:
                status, text = request(conn, "POST", path, token, body)
                text = text[:300].decode(errors="replace")
            except (OSError, http.client.HTTPException) as e:
                status, text = "exception", repr(e)
                conn.close()
            results.add(kind, started, time.perf_counter(), status, status == 201, text, event=event.slug)
            counts[status == 201] += 1
        conn.close()

    threads = [threading.Thread(target=buyer, daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    times["start"] = time.perf_counter()
    times["end"] = times["start"] + SALES_SECONDS
    go.wait(timeout=60)
    for t in threads:
        t.join(timeout=120)
    last = max((e["end"] for e in results.entries if e["kind"] == kind and e["start"] >= times["start"]),
               default=times["end"])
    return counts[True] / (last - times["start"]), counts[True], counts[False]


def sales_phase(port, token, rand, pool, results):
    for ev, kind in ((rand, "sales random"), (pool, "sales imported_secrets")):  # warm-up, outside the results
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(3):
            status, text = request(conn, "POST", f"/api/v1/organizers/{harness.ORGA}/events/{ev.slug}/orders/", token,
                                   order_body(ev.bench_item.pk))
            if status != 201:
                raise RuntimeError(f"warm-up order for {ev.slug}: {status} {text[:300]!r}")
        conn.close()
    rates = {rand.slug: [], pool.slug: []}
    orders = Counter()
    for _r, pair in harness.interleaved(SALES_ROUNDS, rand, pool):
        for ev in pair:
            kind = "sales random" if ev is rand else "sales imported_secrets"
            rate, ok, failed = sales_round(port, token, ev, kind, results)
            rates[ev.slug].append(rate)
            orders[ev.slug] += ok
            log(f"sales {ev.slug}: {rate:.1f} orders/s ({ok} orders, {failed} failed)")
    a, b = statistics.median(rates[rand.slug]), statistics.median(rates[pool.slug])
    return dict(rounds=SALES_ROUNDS, round_seconds=SALES_SECONDS, clients=CLIENTS, random_rates=rates[rand.slug],
                imported_rates=rates[pool.slug], random_orders_per_s=a, imported_orders_per_s=b, ratio=b / a,
                ratio_of_sums=sum(rates[pool.slug]) / sum(rates[rand.slug]), target=SALES_TARGET,
                met=b / a >= SALES_TARGET, orders={k: v + 3 for k, v in orders.items()})


# --- the backend user: imports through Celery ------------------------------------------------------------------------

CSRF_RE = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token(page):
    m = CSRF_RE.search(page)
    if not m:
        raise RuntimeError(f"no CSRF token in the page: {page[:300]!r}")
    return m.group(1).decode()


def local_path(location):
    parts = urllib.parse.urlsplit(location or "")
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Browser:
    """A backend user on http.client: a kept-alive connection, cookies and CSRF tokens by hand."""

    def __init__(self, port, results):
        self.port, self.results = port, results
        self.conn, self.cookies = None, {}

    def request(self, kind, method, path, body=None, content_type=None, expect=(200,), **extra):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        location = None
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            status, location = resp.status, resp.getheader("Location")
            for header in resp.msg.get_all("Set-Cookie") or []:
                cookie = http.cookies.SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
        except (OSError, http.client.HTTPException) as e:
            status, data = "exception", repr(e).encode()
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        self.results.add(kind, started, time.perf_counter(), status, status in expect,
                         data[:300].decode(errors="replace"), **extra)
        return status, data, location

    def get_page(self, path):
        status, page, _location = self.request("import step", "GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {page[:300]!r}")
        return page

    def post_form(self, path, fields, expect=(302,)):
        body = urllib.parse.urlencode(fields)
        return self.request("import step", "POST", path, body, "application/x-www-form-urlencoded", expect)

    def login(self):
        token = csrf_token(self.get_page("/control/login"))
        status, page, location = self.post_form("/control/login", {
            "csrfmiddlewaretoken": token, "email": EMAIL, "password": PASSWORD})
        if status != 302:
            raise RuntimeError(f"login failed: {status} {page[:300]!r}")
        self.get_page(local_path(location) or "/control/")


class Importer(threading.Thread):
    """
    The organizer in the backend: one plain import, the kill, the retry, the termination, then plain imports until
    the mix stops. Every check that fails is a problem of the run.
    """

    def __init__(self, servers, event, table, stop, results):
        super().__init__(daemon=True)
        self.servers, self.event, self.table, self.stop, self.results = servers, event, table, stop, results
        self.browser = Browser(servers.port, results)
        self.base = f"/control/event/{harness.ORGA}/{event.slug}/secrets_import/"
        self.scenarios_done = threading.Event()
        self.imports, self.files, self.problems = [], {}, []
        self.kill, self.term = {"performed": False}, {"performed": False}
        self.serial = 0
        self.strike_lines = KILL_LINES or 300_000

    # ----- helpers
    def pool_count(self, prefix):
        conn = pg_connect(PG_DB)
        try:
            with conn.cursor() as cur:
                cur.execute(f'SELECT count(*) FROM "{self.table}" WHERE event_id = %s AND secret LIKE %s',
                            (self.event.pk, prefix + "-%"))
                return cur.fetchone()[0]
        finally:
            conn.close()

    def terminate_sessions(self):
        conn = pg_connect(PG_DB, autocommit=True)
        try:
            start = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(TERMINATE_SQL)
                sessions = sum(1 for (done,) in cur.fetchall() if done)
            return dict(start=start, end=time.perf_counter(), sessions=sessions)
        finally:
            conn.close()

    def new_file(self, lines):
        self.serial += 1
        prefix = f"{IMPORT_PREFIX}{self.serial:03d}"
        self.files[prefix] = lines
        return prefix

    def upload(self, prefix, lines):
        data = "".join(f"{prefix}-{i:07d}\n" for i in range(lines)).encode()
        token = csrf_token(self.browser.get_page(self.base + "import/"))
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{prefix}.csv"\r\n'
                f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        status, page, location = self.browser.request(
            "import step", "POST", self.base + "import/", body, f"multipart/form-data; boundary={boundary}",
            expect=(302,))
        process = local_path(location)
        if status != 302 or not re.fullmatch(re.escape(self.base) + r"import/[0-9a-f-]{36}/", process):
            raise RuntimeError(f"upload of {prefix}: {status} {location} {page[:300]!r}")
        return process

    def start_task(self, process):
        """Post the column mapping; the async_id of the task."""
        token = csrf_token(self.browser.get_page(process))
        status, page, location = self.browser.post_form(process, {
            "csrfmiddlewaretoken": token, "format_set": "1", "encoding": "utf-8", "delimiter": ",",
            "secret": "column:0", "item": "", "variation": ""})
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location or "").query)
        if status != 302 or "async_id" not in query:
            raise RuntimeError(f"mapping form of {process}: {status} {location} {page[:500]!r}")
        return query["async_id"][0]

    def poll(self, process, async_id, deadline, on_poll=None):
        """Poll until the task is ready or the deadline passes; ``on_poll`` may return a new deadline."""
        polls, max_pct, data = 0, 0, {}
        while time.perf_counter() < deadline:
            status, body, _location = self.browser.request(
                "import poll", "GET", f"{process}?async_id={async_id}&ajax=1")
            polls += 1
            if status == 200:
                try:
                    data = json.loads(body)
                except ValueError:
                    data = {}
                max_pct = max(max_pct, data.get("percentage") or 0)
                if on_poll:
                    deadline = on_poll(data) or deadline
                if data.get("ready"):
                    return dict(ready=True, success=data.get("success"), message=data.get("message"),
                                redirect=data.get("redirect"), polls=polls, max_pct=max_pct, at=time.perf_counter())
            time.sleep(0.2)
        return dict(ready=False, success=None, message=f"not ready after the deadline; last answer {data}",
                    redirect=None, polls=polls, max_pct=max_pct, at=time.perf_counter())

    def one_import(self, role, prefix, lines, on_poll=None, process=None, deadline=IMPORT_DEADLINE,
                   expect_success=True):
        started = time.perf_counter()
        if process is None:
            process = self.upload(prefix, lines)
        async_id = self.start_task(process)
        outcome = self.poll(process, async_id, started + deadline, on_poll)
        ended = outcome["at"]
        rec = dict(role=role, prefix=prefix, lines=lines, process=process, async_id=async_id, started=started,
                   ended=ended, seconds=ended - started, **{k: outcome[k] for k in
                                                            ("ready", "success", "message", "polls", "max_pct")})
        self.imports.append(rec)
        status = "success" if outcome["success"] else "failure" if outcome["ready"] else "timeout"
        rec["entry"] = self.results.add("import", started, ended, status, status == "success",
                                        str(outcome["message"])[:300], prefix=prefix, role=role)
        log(f"import {prefix} ({role}, {lines} lines): {status} in {ended - started:.1f} s, "
            f"{outcome['polls']} polls: {outcome['message']}")
        if expect_success and status != "success":
            self.problems.append(f"import {prefix} ({role}) did not succeed: {status}: {outcome['message']}")
        return rec

    # ----- the scenarios
    def run(self):
        def plain():
            self.one_import("plain", self.new_file(IMPORT_LINES), IMPORT_LINES)

        def plain_until_stopped():
            while not self.stop.is_set():
                plain()

        def size_strikes():
            if not KILL_LINES:
                first = self.imports[0]
                rate = first["lines"] / first["seconds"] if first["success"] else 10_000
                self.strike_lines = min(max(int(round(rate * STRIKE_SECONDS, -4)), 100_000), 1_000_000)
            log(f"the kill and the termination strike imports of {self.strike_lines} lines")

        for step in (self.browser.login, plain, size_strikes, self.kill_scenario, self.terminate_scenario,
                     self.scenarios_done.set, plain_until_stopped):
            try:
                step()
            except Exception as e:  # a failed scenario is a problem of the run, not the end of the mix
                self.problems.append(f"the import client failed in {step.__name__}: {e!r}")
                traceback.print_exc()
        self.scenarios_done.set()

    def kill_scenario(self):
        kill = self.kill
        for attempt in range(3):  # an import that ends before a poll sees it running is tried again, larger
            lines = self.strike_lines * 2 ** attempt
            prefix = self.new_file(lines)

            def on_poll(data, prefix=prefix):
                pct = data.get("percentage") or 0
                if not kill["performed"] and not data.get("ready") and data.get("started") and (
                        STRIKE_PCT[0] < pct <= STRIKE_PCT[1]):
                    log(f"import {prefix} at {pct} %: SIGKILL to the Celery worker's process group, restarting it")
                    self.servers.kill_worker()
                    kill.update(performed=True, at=time.perf_counter(), percentage=pct, prefix=prefix)
                    # the killed session's transaction is rolled back: nothing of it may be visible now
                    kill["in_pool_at_kill"] = self.pool_count(prefix)
                    self.servers.start_worker()
                    return kill["at"] + KILL_BOUND
                return None

            rec = self.one_import("kill", prefix, lines, on_poll, expect_success=False)
            if kill["performed"]:
                break
            rec["role"] = "plain (ended before the kill)"
            if not rec["success"]:
                self.problems.append(f"import {prefix} failed without a kill: {rec['message']}")
        if not kill["performed"]:
            self.problems.append("no import was seen running, the worker was never killed")
            return
        if rec["ready"] and rec["success"] is False:
            rec["entry"]["expected"] = "worker killed"
        failure_after = rec["ended"] - kill["at"]
        message = str(rec["message"] or "")
        kill.update(failure_shown_after_s=failure_after, ready=rec["ready"], success=rec["success"],
                    message=message, lost_after_s=lost_after(), bound_s=KILL_BOUND)
        kill["within_bound"] = bool(rec["ready"]) and failure_after <= KILL_BOUND
        kill["says_nothing_imported"] = "Nothing was imported" in message
        kill["in_pool_after"] = self.pool_count(prefix)
        if not kill["within_bound"]:
            self.problems.append(f"kill: the killed import's poll showed no end within {KILL_BOUND:.0f} s "
                                 f"(last: {message[:200]})")
        elif rec["success"] is not False:
            self.problems.append(f"kill: the killed import's poll shows success={rec['success']}: {message}")
        if rec["ready"] and not kill["says_nothing_imported"]:
            self.problems.append(f"kill: the message does not say 'Nothing was imported': {message!r}")
        if kill["in_pool_at_kill"]:
            self.problems.append(f"kill: {kill['in_pool_at_kill']} secrets of {prefix} were in the pool right after "
                                 "the kill: it came after the import's commit, not mid-import")
        if kill["in_pool_after"]:
            self.problems.append(f"kill: {kill['in_pool_after']} secrets of the killed import {prefix} are in the pool")
        self.servers.wait_worker()
        retry = self.one_import("retry", prefix, rec["lines"], process=rec["process"])
        stored = self.pool_count(prefix)
        kill.update(retry_success=retry["success"], retry_seconds=retry["seconds"], retry_message=retry["message"],
                    retry_in_pool=stored)
        if stored != rec["lines"]:
            self.problems.append(f"kill: after the retry {stored} of {rec['lines']} secrets of {prefix} are in the "
                                 "pool")
        kill["ok"] = bool(kill["within_bound"] and rec["success"] is False and kill["says_nothing_imported"]
                          and not kill["in_pool_after"] and retry["success"] and stored == rec["lines"])

    def terminate_scenario(self):
        term = self.term
        for attempt in range(2):
            lines = self.strike_lines * 2 ** attempt
            prefix = self.new_file(lines)

            def on_poll(data, prefix=prefix):
                pct = data.get("percentage") or 0
                if not term["performed"] and not data.get("ready") and data.get("started") and (
                        STRIKE_PCT[0] < pct <= STRIKE_PCT[1]):
                    term.update(performed=True, during_import=True, percentage=pct, prefix=prefix,
                                **self.terminate_sessions())
                    log(f"import {prefix} at {pct} %: terminated {term['sessions']} database sessions")
                return None

            rec = self.one_import("terminate", prefix, lines, on_poll, expect_success=False)
            if term["performed"]:
                break
            rec["role"] = "plain (ended before the termination)"
            if not rec["success"]:
                self.problems.append(f"import {prefix} failed without a termination: {rec['message']}")
        if not term["performed"]:
            term.update(performed=True, during_import=False, **self.terminate_sessions())
            log(f"no import seen running: terminated {term['sessions']} database sessions anyway")
            return
        message = str(rec["message"] or "")
        term.update(import_ready=rec["ready"], import_success=rec["success"], import_message=message,
                    import_seconds_after=rec["ended"] - term["start"], import_in_pool_after=self.pool_count(prefix))
        if not rec["ready"]:
            self.problems.append(f"termination: the import running then did not end: {message[:200]}")
        elif rec["success"] is not False or not message.strip():
            self.problems.append(f"termination: the import running then ended with success={rec['success']} "
                                 f"and message {message!r}")


def lost_after():
    """The plugin's LOST_AFTER in seconds, if it has one."""
    try:
        from pretix_secrets_import.config import lost_after as configured
        return float(configured())
    except ImportError:
        pass
    from pretix_secrets_import.control import views
    from pretix_secrets_import.importing import tasks
    for module in (tasks, views):
        value = getattr(module, "LOST_AFTER", None)
        if value is not None:
            return value.total_seconds() if hasattr(value, "total_seconds") else float(value)
    return None


# --- evaluation ------------------------------------------------------------------------------------------------------

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
    from django.db import connection
    from django.db.models import Count, F, Q

    from pretix.base.models import OrderPosition

    from pretix_secrets_import.models import ImportedSecret
    from pretix_secrets_import.pool.store import summary as pool_summary
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

    twice = [s for s, n in Counter(OrderPosition.all.filter(organizer_id=load_event.organizer_id)
                                   .values_list("secret", flat=True)).items() if n > 1]
    if twice:
        problems.append(f"secrets on more than one ticket: {twice[:5]}")
    for event in (load_event, sales_pool_event):
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


def main():
    load_before = os.getloadavg()
    # a SIGTERM ends the run like an exception: the finally below still stops gunicorn and the worker
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    pretix = Pretix("postgresql", PG_DB, "load-", REDIS_DBS, IMPORT_QUEUE)
    log(f"pretix on PostgreSQL database {PG_DB}, Redis dbs {REDIS_DBS}, data and logs in {pretix.datadir}; migrating")
    pretix.create()
    pretix.setup_django()
    from django.db import connections
    from django_scopes import scopes_disabled

    from pretix_secrets_import.models import ImportedSecret

    bench = harness.Harness(pretix, "full")
    results, servers, importer = Results(), None, None
    failed = True
    try:
        with scopes_disabled():
            bench.setup_base()
            event = bench.make_event("load", "imported_secrets")
            bench.fill(event, "LOAD-POOL", POOL)
            rand = bench.make_event("sales-random", "random")
            pool = bench.make_event("sales-imported", "imported_secrets")
            bench.fill(pool, "SALES", POOL)
        connections.close_all()
        servers = Servers(pretix, celery_queues(), bench.token)
        servers.start_worker()
        servers.start_gunicorn()
        servers.wait_worker()
        log(f"gunicorn with {WORKERS} workers on 127.0.0.1:{servers.port}, Celery worker (prefork, 2) on queues "
            f"{', '.join(servers.queues)}; {CLIENTS} clients for at least {SECONDS} s and a backend importer")

        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(servers.port, bench.token, event.slug, event.bench_item.pk,
                                                         stop, results, i), daemon=True)
                   for i in range(CLIENTS)]
        importer = Importer(servers, event, ImportedSecret._meta.db_table, stop, results)
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
        mix_seconds = time.perf_counter() - started
        importer.join(timeout=IMPORT_DEADLINE + 30)
        if importer.is_alive():
            importer.problems.append("the import client did not end")
        log(f"mix done after {mix_seconds:.0f} s; sales: random against imported_secrets, {SALES_ROUNDS} rounds")
        sales_started = time.perf_counter()
        sales = sales_phase(servers.port, bench.token, rand, pool, results)
        sales_seconds = (time.perf_counter() - sales_started) / 2  # per event
        failed = False
    finally:
        if servers:
            servers.stop()
        if failed:
            log(f"failed: logs kept in {pretix.datadir}")

    classify(results, importer.term)
    rows = table_rows(results, mix_seconds, sales_seconds)
    errors = [{k: e[k] for k in ("kind", "status", "text")} for e in results.entries if e["class"] == "error"]
    expected = Counter(f"{e['kind']}: {e['expected']}" for e in results.entries if e["class"] == "expected")
    term = {k: v for k, v in importer.term.items() if k not in ("start", "end")}
    term["expected_failures"] = {k: n for k, n in expected.items() if k.endswith("session terminated")}
    term["expected_failures_total"] = sum(term["expected_failures"].values())
    with scopes_disabled():
        problems = importer.problems + check_invariants(event, pool, expectations(results, importer, sales))
    findings, finding_count = log_findings(servers.logs)
    imports = [{k: v for k, v in r.items() if k not in ("started", "ended", "process", "entry")}
               for r in importer.imports]
    kill = {k: v for k, v in importer.kill.items() if k != "at"}
    out = dict(seconds=mix_seconds, clients=CLIENTS, workers=WORKERS, celery=dict(pool="prefork", concurrency=2,
               queues=servers.queues), pool=POOL, bulk_size=BULK, import_lines=IMPORT_LINES, rows=rows, kill=kill,
               termination=term, sales=sales, imports=imports, errors=errors[:50], error_count=len(errors),
               invariant_problems=problems, log_findings=findings, log_finding_count=finding_count,
               machine=dict(nproc=os.cpu_count(), loadavg_before=load_before, loadavg_after=os.getloadavg()))
    with open(os.path.join(HERE, "load-results.json"), "w") as f:
        json.dump(out, f, indent=2, default=str)

    print()
    print("| request | count | ok | expected failures | errors | per s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['requests']} | {r['ok']} | {r['expected_failures']} | {r['errors']} | "
              f"{r['per_s']:.2f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    ok_imports = [r for r in importer.imports if r["success"]]
    print(f"\nload average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"mix: {mix_seconds:.0f} s with {CLIENTS} clients and one backend importer; "
          f"{len(ok_imports)} imports succeeded ({sum(r['lines'] for r in ok_imports)} secrets)")
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
    for e in errors[:10]:
        print("error:", e)
    if findings:
        print(f"log lines ({finding_count} error lines in the gunicorn and worker logs):")
        for line in findings:
            print("  ", line)
    print("invariants and checks:", "all hold" if not problems else "")
    for p in problems:
        print("  PROBLEM:", p)
    pretix.drop()
    if errors or problems:
        print(f"logs kept in {pretix.datadir}")
        sys.exit(1)
    pretix.remove()


if __name__ == "__main__":
    main()
