"""
The load run's clients on http.client (pretix blocks urllib3 from local addresses): the API clients of the mix, the
buyers of the sales rounds and the backend user's browser, and the record of every request they make.
"""
import http.client
import http.cookies
import json
import os
import random
import re
import statistics
import threading
import time
import urllib.parse
from collections import Counter

import harness
from stack import log

CLIENTS = int(os.environ.get("LOAD_CLIENTS", 8))
BULK = 100
# kind: (share of the requests, status that counts as success)
MIX = {"list": (0.35, 200), "create": (0.2, 201), "bulk_create": (0.1, 201), "order": (0.35, 201)}
SALES_ROUNDS = int(os.environ.get("LOAD_SALES_ROUNDS", 4))
SALES_SECONDS = float(os.environ.get("LOAD_SALES_SECONDS", 5))
SALES_TARGET = 0.90
EMAIL, PASSWORD = "bench@localhost", "bench"  # the user bench/harness.py's setup_base creates


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


# --- the backend user ------------------------------------------------------------------------------------------------

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
