"""
Crash safety: a separate process writing to the pool is killed with SIGKILL at random points, and the pool must hold
all of its work or none of it, with the counters right and no session or lock left behind.

Each scenario runs a real second process against the test database (pretix' own settings, a config naming the test
database), so the tests need ``transaction=True`` to commit the data the process reads, and PostgreSQL to share it.
``CRASH_ROUNDS`` sets the kill rounds per scenario (default 1, for CI), ``CRASH_IMPORT_LINES`` the size of the imported
file (default 50,000; 200,000 in make crash), ``CRASH_SEED`` the random seed (printed with each kill, to repeat a
run), ``CRASH_REPORT`` a file that gets one JSON line per kill.
"""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection
from django_scopes import scopes_disabled

from pretix.base.models import LogEntry, Order, OrderPosition

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool.store import insert_rows
from tests.helpers import counted_summary, pool_summary, url
from tests.sales.test_generator import orders_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.heavy,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a second process needs a shared database"),
]

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "1"))
IMPORT_LINES = int(os.environ.get("CRASH_IMPORT_LINES", "50000"))  # make crash: 200,000
SEED = int(os.environ.get("CRASH_SEED", str(time.time_ns() % 10 ** 9)))
BULK_SIZE = 500
ORDERS_PER_RUN = 5
SECRETS = "pretix_secrets_import_importedsecret"
COUNTS = "pretix_secrets_import_poolcount"
GATES = "pretix_secrets_import_gatestate"

# Runs in the killed process: pretix' real settings, DRF's APIClient in-process (no web server to start). In "pause"
# mode every secret the generator hands out is followed by a pause inside the order's transaction, so that a kill
# hits a sale between taking a secret and committing.
CHILD_SCRIPT = r'''
import json, os, sys, time
import django
django.setup()
from rest_framework.test import APIClient

mode, url, warm_up_url, token, payload_file, repeat = sys.argv[1:7]
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Token " + token)
# The first request of a process loads URL routes, plugins and more; after this one, a request is just the request.
assert client.get(warm_up_url).status_code == 200
with open(payload_file) as f:
    payload = json.load(f)
if mode == "pause":
    from pretix_secrets_import.sales import generator
    allocate = generator.allocate_secret

    def paused_allocate(*args, **kwargs):
        secret = allocate(*args, **kwargs)
        print("ALLOCATED", secret, flush=True)
        time.sleep(float(os.environ["CRASH_PAUSE"]))
        return secret

    generator.allocate_secret = paused_allocate
print("READY", flush=True)
for _ in range(int(repeat)):
    started = time.monotonic()
    response = client.post(url, payload, format="json")
    print("DONE", response.status_code, round(time.monotonic() - started, 4), flush=True)
    if response.status_code != 201:
        print(response.content.decode()[:2000], file=sys.stderr, flush=True)
        sys.exit(1)
'''


class Child:
    """A process we start and kill, with its output lines and when each arrived."""
    running = []  # killed at the end of the test if a failed assertion left them alive

    def __init__(self, args, env):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        Child.running.append(self)
        self.lines, self.errors = [], []
        self.new_line = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into):
        for line in stream:
            with self.new_line:
                into.append((time.monotonic() - self.started, line.rstrip("\n")))
                self.new_line.notify_all()

    def wait_for_line(self, prefix, count=1, timeout=60):
        """Seconds since the start at which the ``count``-th line starting with ``prefix`` arrived."""
        def found():
            hits = [t for t, line in self.lines if line.startswith(prefix)]
            return hits[count - 1] if len(hits) >= count else None

        with self.new_line:
            assert self.new_line.wait_for(lambda: found() is not None or self.proc.poll() is not None, timeout), \
                f"no {prefix!r} line within {timeout}s"
        if found() is None:  # the process ended: its last lines may still be in the pipe
            for reader in self._readers:
                reader.join(timeout=5)
        assert found() is not None, f"process ended without {prefix!r}: {self.output()}"
        return found()

    def finish(self, timeout=300):
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)  # Popen's, so that an exited process' reused PID is never hit
        self.finish()

    def elapsed(self):
        return time.monotonic() - self.started

    def output(self):
        return "\n".join(line for _t, line in self.lines + self.errors[-30:])


@pytest.fixture
def child_env(tmp_path):
    """Environment for a child process: pretix' real settings on the test database, ``application_name`` ``app``."""
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "pretix.cfg"
    config.write_text(
        f"[pretix]\ndatadir={data}\n\n"
        f"[database]\nbackend=postgresql\nname={connection.settings_dict['NAME']}\nuser=postgres\n"
        f"host=127.0.0.1\nport=5432\n"
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT)

    def env(app):
        return {**os.environ, "PRETIX_CONFIG_FILE": str(config), "DJANGO_SETTINGS_MODULE": "pretix.settings",
                "PGAPPNAME": app, "CRASH_PAUSE": "1", "PYTHONUNBUFFERED": "1"}

    env.script = str(script)
    yield env
    for child in Child.running:
        if child.proc.poll() is None:
            child.kill()
    Child.running.clear()


def query(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def session_of(app):
    """What the child's database session is doing: ``(state, in_transaction, query)``, or ``None``."""
    rows = query("SELECT state, xact_start IS NOT NULL, left(query, 60), pg_relation_size(%s) "
                 "FROM pg_stat_activity WHERE application_name = %s", [SECRETS, app])
    return rows[0] if rows else None


def phase(session):
    if session is None:
        return "no connection yet"
    state, in_transaction, sql, _size = session
    if not in_transaction:
        return "connected, no transaction"
    if sql.startswith("COMMIT") and state == "active":
        return "COMMIT"
    return f"in transaction ({state}, last statement {sql.split()[0]})"


def assert_nothing_left_behind(app, timeout=30):
    """The server ends the killed process' session (and its transaction and locks); returns how long that took."""
    started = time.monotonic()
    while query("SELECT 1 FROM pg_stat_activity WHERE application_name = %s", [app]):
        assert time.monotonic() - started < timeout, f"session of {app} still there: {session_of(app)}"
        time.sleep(0.02)
    # No other client session holds a lock in the test database (autovacuum may, and is not a client).
    locks = query(
        "SELECT l.locktype, l.mode, a.application_name, a.state FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.pid <> pg_backend_pid() AND a.backend_type = 'client backend' AND a.datname = current_database()"
    )
    assert locks == []
    return time.monotonic() - started


def assert_counted(event):
    with scopes_disabled():
        assert pool_summary(event) == counted_summary(event)


def record(scenario, round_, **data):
    entry = {"scenario": scenario, "round": round_, "seed": SEED, **data}
    print("CRASH " + json.dumps(entry))
    if os.environ.get("CRASH_REPORT"):
        with open(os.environ["CRASH_REPORT"], "a") as f:
            f.write(json.dumps(entry) + "\n")


def log_count(event, action_type):
    with scopes_disabled():
        return LogEntry.objects.filter(event=event, action_type=action_type).count()


# --- file import -----------------------------------------------------------------------------------------------------

def empty_pool():
    # TRUNCATE, not DELETE: the next round then measures the rows it writes by the table's size. The counters and the
    # gate states (which reference the secrets) go too. A lock left behind would make it wait: fail instead (one
    # implicit transaction, so the SET ends with it).
    query(f"SET lock_timeout = '10s'; TRUNCATE {SECRETS}, {GATES}, {COUNTS}; RESET lock_timeout")


def pool_count(event):
    with scopes_disabled():
        return ImportedSecret.objects.filter(event=event).count()


def test_import_killed_at_random_points(event, item, tmp_path, child_env):
    rng = random.Random(SEED)
    path = tmp_path / "secrets.csv"
    with open(path, "w") as f:
        for i in range(IMPORT_LINES):  # every third secret restricted to the product: two groups to count
            f.write(f"CRASH-{i:07d},{item.pk if i % 3 == 0 else ''}\n")
    command = [sys.executable, "-m", "pretix", "import_secrets", event.organizer.slug, event.slug, str(path),
               "--no-header", "--item-column", "2"]
    imported = "pretix_secrets_import.secrets.imported"
    state = {"logs": 0, "duration": None, "bytes_per_row": None}

    def check(app, round_, mode, child, session, killed_at, **data):
        noticed = assert_nothing_left_behind(app)
        count = pool_count(event)
        assert count in (0, IMPORT_LINES), f"partial import: {count} of {IMPORT_LINES} rows"
        assert_counted(event)
        state["logs"] += count == IMPORT_LINES
        assert log_count(event, imported) == state["logs"]  # the log entry commits with the rows, or not at all
        if session is None:
            where = "connection closed, import done" if count else "no connection yet"
        else:
            where = phase(session)
        # the table was emptied before a random round, so its size tells the rows written (uncommitted) so far
        written = int(session[3] / state["bytes_per_row"]) if session and mode == "random" else None
        record("import", round_, mode=mode, killed_at=round(killed_at, 3), phase=where, rows_written_approx=written,
               outcome="all" if count else "none", count=count, session_gone_after=round(noticed, 3), **data)
        return count, noticed

    def kill_in_commit(round_):
        """
        Kill the import while it waits for its COMMIT (about a second per 200,000 rows: PostgreSQL checks the deferred
        foreign keys of every row then). The server finishes a COMMIT it has received, so this one must end with the
        whole file.
        """
        app = f"crash-import-commit-{round_}"
        child = Child(command, child_env(app))
        while phase(session_of(app)) != "COMMIT":
            assert child.proc.poll() is None, f"the import ended before its COMMIT was seen: {child.output()}"
            time.sleep(0.02)
        commit_seen = child.elapsed()
        time.sleep(rng.uniform(0, 0.5 * IMPORT_LINES / 200_000))  # within the first half of the COMMIT
        session = session_of(app)
        killed_at = child.elapsed()
        child.kill()
        count, noticed = check(app, round_, "in COMMIT", child, session, killed_at,
                               commit_seen_at=round(commit_seen, 3))
        assert count == IMPORT_LINES
        if state["duration"] is None:  # the first run measures: until its session ended, plus the process' exit
            state["duration"] = killed_at + noticed + 0.2
            state["bytes_per_row"] = query("SELECT pg_relation_size(%s)", [SECRETS])[0][0] / IMPORT_LINES
            print(f"CRASH import of {IMPORT_LINES} lines: about {state['duration']:.2f}s, COMMIT from "
                  f"{commit_seen:.2f}s")

    def kill_at_random(round_):
        app = f"crash-import-random-{round_}"
        child = Child(command, child_env(app))
        delay = rng.uniform(0, state["duration"])
        time.sleep(max(0.0, delay - child.elapsed()))
        session = session_of(app)
        killed_at = child.elapsed()
        child.kill()
        return check(app, round_, "random", child, session, killed_at,
                     fraction=round(killed_at / state["duration"], 3))[0]

    kill_in_commit(0)  # also measures how long an import takes
    for round_ in range(ROUNDS):
        empty_pool()
        count = kill_at_random(round_)
        if count:
            empty_pool()
        # after a kill that stored nothing, the same file imports completely on what the kill left behind
        kill_in_commit(round_ + 1)

    # The command itself runs to its end after all the kills.
    empty_pool()
    child = Child(command, child_env("crash-import-after"))
    assert child.finish() == 0, child.output()
    assert child.lines[-1][1] == f"Imported {IMPORT_LINES} secret(s)."
    assert pool_count(event) == IMPORT_LINES
    assert_counted(event)
    assert log_count(event, imported) == state["logs"] + 1
    print(f"CRASH import without a kill: {child.elapsed():.2f}s")


# --- bulk_create through the REST API ---------------------------------------------------------------------------------

def token_for(team):
    with scopes_disabled():
        return team.tokens.create(name="Crash").token


def test_bulk_create_killed_at_random_points(event, item, team, tmp_path, child_env):
    rng = random.Random(SEED + 1)
    token = token_for(team)
    bulk_added = "pretix_secrets_import.secrets.bulk_added"

    def start(run):
        payload = tmp_path / f"bulk-{run}.json"
        # every other secret restricted to the product; a new set of secrets per run, so runs never collide
        payload.write_text(json.dumps([{"secret": f"BULK-{run}-{i:03d}", "item": item.pk if i % 2 else None}
                                       for i in range(BULK_SIZE)]))
        app = f"crash-bulk-{run}"
        command = [sys.executable, child_env.script, "plain", url(event, suffix="bulk_create/"),
                   url(event, suffix="summary/"), token, str(payload), "1"]
        return app, Child(command, child_env(app))

    def stored(run):
        with scopes_disabled():
            return ImportedSecret.objects.filter(event=event, secret__startswith=f"BULK-{run}-").count()

    app, child = start("measure")
    ready = child.wait_for_line("READY")
    assert child.finish() == 0, child.output()
    done = child.wait_for_line("DONE")
    request_duration = done - ready
    assert stored("measure") == BULK_SIZE
    logs = 1
    print(f"CRASH bulk_create of {BULK_SIZE}: request {request_duration:.2f}s after start-up {ready:.2f}s")

    for round_ in range(ROUNDS):
        app, child = start(round_)
        ready = child.wait_for_line("READY")
        delay = rng.uniform(0, request_duration * 1.2)  # a little past the response, too
        time.sleep(max(0.0, ready + delay - child.elapsed()))
        session = session_of(app)
        killed_at = child.elapsed() - ready
        child.kill()
        noticed = assert_nothing_left_behind(app)
        count = stored(round_)
        assert count in (0, BULK_SIZE), f"partial bulk_create: {count} of {BULK_SIZE}"
        assert_counted(event)
        logs += count == BULK_SIZE
        assert log_count(event, bulk_added) == logs
        record("bulk_create", round_, killed_at=round(killed_at, 3), fraction=round(killed_at / request_duration, 3),
               phase=phase(session), response_seen=any(line.startswith("DONE") for _t, line in child.lines),
               outcome="all" if count else "none", count=count, session_gone_after=round(noticed, 3))


# --- sales through pretix' order API ----------------------------------------------------------------------------------

POOL = 1000
USED_ON_IMPORT = 5


def assert_sales_consistent(event, ticket):
    """Every pool secret is on a ticket and used, or on none and unused; no secret on two tickets; no partial order."""
    with scopes_disabled():
        secrets = list(OrderPosition.all.filter(order__event=event).values_list("secret", flat=True))
        pool = dict(ImportedSecret.objects.filter(event=event).values_list("secret", "used"))
        orders = Order.objects.filter(event=event)
        assert all(order.all_positions.count() == 2 for order in orders)
    assert len(secrets) == len(set(secrets)) == 2 * len(orders)
    on_tickets = set(secrets)
    assert on_tickets <= set(pool)
    for secret, used in pool.items():
        if secret.startswith("USED-"):
            assert used and secret not in on_tickets
        else:
            assert used == (secret in on_tickets), secret
    assert_counted(event)
    return len(orders)


def test_sale_killed_mid_transaction(event, team, tmp_path, child_env):
    rng = random.Random(SEED + 2)
    event.live = True
    event.save()
    event.settings.ticket_secret_generator = "imported_secrets"
    with scopes_disabled():
        ticket = event.items.create(name="Ticket", default_price=0, admission=True)
        event.quotas.create(name="Unlimited", size=None).items.add(ticket)
        insert_rows(event, [
            {"secret": f"POOL-{i:04d}", "used": False, "item": None, "variation": None, "subevent": None}
            for i in range(POOL)
        ] + [
            {"secret": f"USED-{i}", "used": True, "item": None, "variation": None, "subevent": None}
            for i in range(USED_ON_IMPORT)
        ])
    payload = tmp_path / "order.json"
    payload.write_text(json.dumps({
        "email": "buyer@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
        "send_email": False, "positions": [{"item": ticket.pk, "price": "0.00"}] * 2,
    }))
    token = token_for(team)

    def start(app, mode, repeat):
        command = [sys.executable, child_env.script, mode, orders_url(event), orders_url(event), token, str(payload),
                   str(repeat)]
        return Child(command, child_env(app))

    child = start("crash-sale-measure", "plain", ORDERS_PER_RUN)
    ready = child.wait_for_line("READY")
    assert child.finish() == 0, child.output()
    run_duration = child.wait_for_line("DONE", ORDERS_PER_RUN) - ready
    orders = assert_sales_consistent(event, ticket)
    assert orders == ORDERS_PER_RUN
    print(f"CRASH {ORDERS_PER_RUN} orders of 2 tickets: {run_duration:.2f}s after start-up {ready:.2f}s")

    for round_ in range(ROUNDS):
        # At a random point of a run of orders: before, between, or inside one.
        app = f"crash-sale-random-{round_}"
        child = start(app, "plain", ORDERS_PER_RUN)
        ready = child.wait_for_line("READY")
        time.sleep(max(0.0, ready + rng.uniform(0, run_duration) - child.elapsed()))
        session = session_of(app)
        killed_at = child.elapsed() - ready
        child.kill()
        noticed = assert_nothing_left_behind(app)
        before, orders = orders, assert_sales_consistent(event, ticket)
        responses = sum(line.startswith("DONE") for _t, line in child.lines)
        assert orders - before in (responses, responses + 1)  # at most the order in flight committed unanswered
        record("sale", round_, mode="random", killed_at=round(killed_at, 3),
               fraction=round(killed_at / run_duration, 3), phase=phase(session), orders_answered=responses,
               orders_stored=orders - before, session_gone_after=round(noticed, 3))

        # Deliberately after the first or second secret of an order was taken, before its transaction commits.
        app = f"crash-sale-pause-{round_}"
        child = start(app, "pause", 1)
        nth = rng.choice([1, 2])
        child.wait_for_line("ALLOCATED", nth)
        time.sleep(rng.uniform(0, 0.5))
        session = session_of(app)
        child.kill()
        noticed = assert_nothing_left_behind(app)
        before, orders = orders, assert_sales_consistent(event, ticket)
        assert orders == before
        record("sale", round_, mode=f"after secret {nth} of 2", phase=phase(session), orders_stored=orders - before,
               session_gone_after=round(noticed, 3))

    # The secrets the killed sales held are free again and go to the next order, in the order of import.
    with scopes_disabled():
        next_free = ImportedSecret.objects.filter(event=event, used=False).order_by("id").first().secret
    child = start("crash-sale-after", "plain", 1)
    assert child.finish() == 0, child.output()
    assert assert_sales_consistent(event, ticket) == orders + 1
    with scopes_disabled():
        assert OrderPosition.all.filter(order__event=event, secret=next_free).exists()
