"""
Keep two files for an access-control system current from the gate feed: ``admitted.csv`` (the secrets that admit)
and ``refused.csv`` (the secrets that must be refused, with the reason). Standard library only: it runs on any
machine with Python 3.9+, without pretix.

    python -m pretix_secrets_import.gate_sync \\
        --url https://pretix.example.com/api/v1/organizers/ORG/events/EVENT/imported_secrets/gate_feed/ \\
        --token API_TOKEN --state-file gate-state.json --out-dir /srv/gate [--checkinlist ID] [--once]

With ``--checkinlist``, the files follow pretix' check-in answer on that list (``admit``), with each ticket's validity
window; without, the pool's states. The first run reads the whole feed; every later one polls with the cursor kept in
the state file, and syncs again from the start when pretix asks it to (a changed check-in list, a restored server).
It reads compact entries (``compact=true``: a key left out is null) in pages of 5,000, compressed with gzip.
Each round writes the two files (to a temporary file, then renamed, so a reader never sees half a file) and only
then the state file (the same way): if anything fails in between, the next round reads the same changes again.
Network errors, timeouts and server errors (5xx, 429) are retried with growing pauses; a refused token or a wrong URL
ends the program with a message. ``--once`` does one round (for cron; a run that finds another one still at work
ends at once); without it, it polls every ``--interval`` seconds.
"""
import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

KEPT = ("valid", "pending", "void")  # what the files are made of; unsold and reserved secrets admit nobody
ADMITTED_COLUMNS = ("secret", "state", "order", "positionid", "item", "variation", "subevent", "changed")
REFUSED_COLUMNS = ("secret", "reason", "changed", "order", "positionid", "item", "variation", "subevent")
# With a check-in list: pretix' answer, and the window a gate checks at the time of the scan
LIST_ADMITTED_COLUMNS = ("secret", "valid_from", "valid_until", "order", "positionid", "item", "variation",
                         "subevent", "state", "changed")
LIST_REFUSED_COLUMNS = ("secret", "refusal", "order", "positionid", "item", "variation", "subevent", "state",
                        "changed")
SYNC_AGAIN = "sync_again"
PAGE_SIZE = 5000  # the feed's largest page: a full sync of a million secrets in 200 requests


class Fatal(Exception):
    """An answer that retrying will not change (a refused token, a wrong URL)."""


class SyncAgain(Exception):
    """pretix cannot answer the cursor (the check-in list changed, the server was restored): sync from the start."""


def http_fetch(token, timeout=30, scheme="Token"):
    def fetch(url):
        request = urllib.request.Request(url, headers={"Authorization": f"{scheme} {token}",
                                                       "Accept": "application/json", "Accept-Encoding": "gzip"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return decoded(response.read(), response.headers.get("Content-Encoding"))
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code == 429:
                raise OSError(f"HTTP {e.code} from {url}") from e
            body = e.read()[:2000].decode(errors="replace")
            if e.code in (400, 409) and _code(body) == SYNC_AGAIN:
                raise SyncAgain(f"HTTP {e.code} from {url}: {body[:500]}") from e
            raise Fatal(f"HTTP {e.code} from {url}: {body[:500]}") from e
    return fetch


def decoded(body, encoding):
    """The JSON of an answer's ``body``, sent with the ``Content-Encoding`` ``encoding``."""
    return json.loads(gzip.decompress(body) if encoding == "gzip" else body)


def _code(body):
    try:
        return json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None


def with_query(url, **params):
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update({key: str(value) for key, value in params.items()})
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def read_feed(fetch, url, secrets):
    """Follow the pages from ``url``, applying each to ``secrets`` as it comes; the cursor to poll with next."""
    cursor = None
    while url:
        page = fetch(url)
        _apply(secrets, page["results"])
        cursor, url = page["cursor"], page["next"]
    return cursor


def sync_round(fetch, feed_url, state, log=print):
    """
    One full sync (no cursor yet) or poll; returns the new state (``cursor`` and the kept ``secrets``, by their text,
    the key a gate scans). A poll that pretix cannot answer becomes a full sync. Pages go into a copy of the kept
    secrets, so a round that fails half-way leaves ``state`` as it was.
    """
    if state.get("cursor"):
        secrets = dict(state["secrets"])
        try:
            return {"cursor": read_feed(fetch, with_query(feed_url, cursor=state["cursor"]), secrets),
                    "secrets": secrets}
        except SyncAgain as e:
            log(f"gate_sync: {e}; syncing again from the start")
    secrets = {}
    return {"cursor": read_feed(fetch, feed_url, secrets), "secrets": secrets}


def _apply(secrets, results):
    # .get: a compact entry leaves out the keys whose value is null
    for entry in results:
        if "admit" in entry:  # a check-in list's feed: every ticket that was ever on one counts
            keep = entry["admit"] or entry.get("order") is not None
        else:
            keep = entry.get("state") in KEPT
        if keep:
            secrets[entry["secret"]] = entry
        else:
            secrets.pop(entry["secret"], None)


def write_atomically(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".gate_sync-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def csv_text(columns, entries):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for entry in sorted(entries, key=lambda e: e["secret"]):
        writer.writerow(["" if entry.get(column) is None else entry[column] for column in columns])
    return out.getvalue()


def write_files(out_dir, state, include_pending=False):
    entries = state["secrets"].values()
    if any("admit" in entry for entry in entries):
        write_atomically(os.path.join(out_dir, "admitted.csv"),
                         csv_text(LIST_ADMITTED_COLUMNS, [e for e in entries if e["admit"]]))
        write_atomically(os.path.join(out_dir, "refused.csv"),
                         csv_text(LIST_REFUSED_COLUMNS, [e for e in entries if not e["admit"]]))
        return
    admitting = ("valid", "pending") if include_pending else ("valid",)
    write_atomically(os.path.join(out_dir, "admitted.csv"),
                     csv_text(ADMITTED_COLUMNS, [e for e in entries if e.get("state") in admitting]))
    write_atomically(os.path.join(out_dir, "refused.csv"),
                     csv_text(REFUSED_COLUMNS, [e for e in entries if e.get("state") == "void"]))


def load_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"cursor": None, "secrets": {}}


def run(fetch, feed_url, state_file, out_dir, include_pending=False, once=False, interval=30, retries=None,
        sleep=time.sleep, log=print):
    """Rounds until ``once`` is done (or forever); a round that fails for the network is retried with back-off."""
    state = load_state(state_file)
    failures = 0
    while True:
        try:
            state = sync_round(fetch, feed_url, state, log)
        except (OSError, ValueError, KeyError) as e:  # network, timeout, 5xx, an answer that is not the feed
            failures += 1
            if retries is not None and failures > retries:
                raise
            pause = min(60, 2 ** min(failures, 6))
            log(f"gate_sync: {e}; trying again in {pause} s")
            sleep(pause)
            continue
        failures = 0
        write_files(out_dir, state, include_pending)
        write_atomically(state_file, json.dumps(state))  # after the files: a crash before re-reads the changes
        if once:
            return state
        sleep(interval)


@contextlib.contextmanager
def exclusive(state_file):
    """Only one run per state file at a time (cron may start the next before the last ended): ``Fatal`` else."""
    import fcntl
    with open(state_file + ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Fatal(f"another run works with {state_file}; this one ends") from None
        yield


def feed_url_of(args):
    """The URL of the first page: the check-in list, the page size and ``ignore_unpaid`` as asked, compact entries."""
    params = {"compact": "true", "page_size": PAGE_SIZE if args.page_size is None else args.page_size}
    if args.checkinlist is not None:
        params["checkinlist"] = args.checkinlist
        if args.include_pending:
            params["ignore_unpaid"] = "true"
    return with_query(args.url, **params)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pretix_secrets_import.gate_sync", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the event's gate feed: .../imported_secrets/gate_feed/")
    credential = parser.add_mutually_exclusive_group(required=True)
    credential.add_argument("--token", help="a pretix team API token (with --checkinlist, check-in permission "
                                            "is enough)")
    credential.add_argument("--device-token", help="the API token of a pretix device (a scanner's security "
                                                   "profile; with --checkinlist)")
    parser.add_argument("--checkinlist", type=int, help="the ID of the check-in list this gate stands for: the "
                                                        "files follow pretix' check-in answer on it")
    parser.add_argument("--page-size", type=int, help="secrets per request (up to 5,000, the default)")
    parser.add_argument("--state-file", required=True, help="where the cursor and the known states are kept")
    parser.add_argument("--out-dir", default=".", help="where admitted.csv and refused.csv are written")
    parser.add_argument("--include-pending", action="store_true",
                        help="admit tickets of orders awaiting payment or approval too; with --checkinlist, "
                             "those of orders awaiting payment where the list includes them (ignore_unpaid)")
    parser.add_argument("--once", action="store_true", help="one round, then exit (for cron)")
    parser.add_argument("--interval", type=float, default=30, help="seconds between polls (default 30)")
    args = parser.parse_args(argv)
    fetch = http_fetch(args.token) if args.token else http_fetch(args.device_token, scheme="Device")
    try:
        with exclusive(args.state_file):
            run(fetch, feed_url_of(args), args.state_file, args.out_dir, args.include_pending, args.once,
                args.interval)
    except Fatal as e:
        sys.exit(f"gate_sync: {e}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
