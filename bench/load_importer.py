"""
The organizer in the backend of the load run: file imports through Celery, one of them killed with its worker and one
cut off by terminated database sessions.
"""
import json
import os
import re
import threading
import time
import traceback
import urllib.parse
import uuid

import harness
from load_clients import Browser, csrf_token, local_path
from stack import log, pg_connect

IMPORT_LINES = int(os.environ.get("LOAD_IMPORT_LINES", 50_000))  # secrets per backend import
# The imports that are killed or terminated are sized to run for about STRIKE_SECONDS at the rate of the first import
# (LOAD_KILL_LINES: a fixed size instead). The kill and the termination come at the first poll that shows such an import
# between these percentages: the plugin publishes the progress every few seconds, so the percentage shown lags, and
# the upper bound keeps them well before the import's commit (which the run checks, too).
KILL_LINES = int(os.environ.get("LOAD_KILL_LINES", 0))
STRIKE_SECONDS, STRIKE_PCT = 25, (0, 30)
IMPORT_PREFIX = "LOADIMP"
KILL_BOUND = 180.0  # s from the SIGKILL until the killed import's poll must show the failure
IMPORT_DEADLINE = 240.0  # s for any other import, from the upload to its end
TERMINATE_SQL = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")


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
        conn = pg_connect(self.servers.pg_db)
        try:
            with conn.cursor() as cur:
                cur.execute(f'SELECT count(*) FROM "{self.table}" WHERE event_id = %s AND secret LIKE %s',
                            (self.event.pk, prefix + "-%"))
                return cur.fetchone()[0]
        finally:
            conn.close()

    def terminate_sessions(self):
        conn = pg_connect(self.servers.pg_db, autocommit=True)
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
    """The plugin's LOST_AFTER in seconds."""
    from pretix_secrets_import.config import lost_after as configured
    return float(configured())
