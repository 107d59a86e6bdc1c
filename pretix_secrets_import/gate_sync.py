"""
Keep two files for an access-control system current from the gate feed: ``admitted.csv`` (the secrets that admit)
and ``refused.csv`` (the secrets that must be refused, with the reason). Standard library only: it runs on any
machine with Python 3.9+, without pretix.

    python -m pretix_secrets_import.gate_sync \\
        --url https://pretix.example.com/api/v1/organizers/ORG/events/EVENT/imported_secrets/gate_feed/ \\
        --token API_TOKEN --state-file gate-state.json --out-dir /srv/gate [--include-pending] [--once]

The first run reads the whole feed; every later one polls with the cursor kept in the state file. Each round writes
the two files (to a temporary file, then renamed, so a reader never sees half a file) and only then the state file
(the same way): if anything fails in between, the next round reads the same changes again. Network errors,
timeouts and server errors (5xx, 429) are retried with growing pauses; a refused token or a wrong URL ends the
program with a message. ``--once`` does one round (for cron); without it, it polls every ``--interval`` seconds.
"""
import argparse
import csv
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


class Fatal(Exception):
    """An answer that retrying will not change (a refused token, a wrong URL, a bad cursor)."""


def http_fetch(token, timeout=30):
    def fetch(url):
        request = urllib.request.Request(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code == 429:
                raise OSError(f"HTTP {e.code} from {url}") from e
            raise Fatal(f"HTTP {e.code} from {url}: {e.read()[:500].decode(errors='replace')}") from e
    return fetch


def with_query(url, **params):
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update({key: str(value) for key, value in params.items()})
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def read_feed(fetch, url):
    """Follow the pages from ``url``: every result, and the cursor to poll with next."""
    results, cursor = [], None
    while url:
        page = fetch(url)
        results.extend(page["results"])
        cursor, url = page["cursor"], page["next"]
    return results, cursor


def sync_round(fetch, feed_url, state):
    """One full sync (no cursor yet) or poll; returns the new state (``cursor`` and the kept ``secrets``)."""
    secrets = dict(state["secrets"]) if state.get("cursor") else {}
    url = with_query(feed_url, cursor=state["cursor"]) if state.get("cursor") else feed_url
    results, cursor = read_feed(fetch, url)
    for entry in results:
        if entry["state"] in KEPT:
            secrets[entry["secret"]] = entry
        else:
            secrets.pop(entry["secret"], None)
    return {"cursor": cursor, "secrets": secrets}


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
    admitting = ("valid", "pending") if include_pending else ("valid",)
    entries = state["secrets"].values()
    write_atomically(os.path.join(out_dir, "admitted.csv"),
                     csv_text(ADMITTED_COLUMNS, [e for e in entries if e["state"] in admitting]))
    write_atomically(os.path.join(out_dir, "refused.csv"),
                     csv_text(REFUSED_COLUMNS, [e for e in entries if e["state"] == "void"]))


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
            state = sync_round(fetch, feed_url, state)
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pretix_secrets_import.gate_sync", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the event's gate feed: .../imported_secrets/gate_feed/")
    parser.add_argument("--token", required=True, help="a pretix API token that may read the event's orders")
    parser.add_argument("--state-file", required=True, help="where the cursor and the known states are kept")
    parser.add_argument("--out-dir", default=".", help="where admitted.csv and refused.csv are written")
    parser.add_argument("--include-pending", action="store_true",
                        help="admit tickets of orders awaiting payment or approval too")
    parser.add_argument("--once", action="store_true", help="one round, then exit (for cron)")
    parser.add_argument("--interval", type=float, default=30, help="seconds between polls (default 30)")
    args = parser.parse_args(argv)
    try:
        run(http_fetch(args.token), args.url, args.state_file, args.out_dir, args.include_pending, args.once,
            args.interval)
    except Fatal as e:
        sys.exit(f"gate_sync: {e}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
