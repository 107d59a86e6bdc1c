"""
The benchmark's full sync of the gate feed (issue 26): a pool of ``pool_big`` secrets read the way the reference
client reads it (``gate/client.py``: compact entries in pages of 5,000, gzip) against whole entries, uncompressed, in
the same pages. The client's own ``sync_round`` runs, with its requests answered in-process; the bytes are those of
the answers' bodies as sent (compressed where they were). The secrets are pretix' default random ones: numbered
secrets, as in the other scenarios' pools, compress four times better than any real pool would.
"""
import time

from harness import ORGA, analyze, interleaved, median
from scenarios_pool import PoolScenarios
from stack import log

PAGE = 5000


class FeedSyncScenarios(PoolScenarios):
    """feed-sync time, feed-sync bytes."""

    def bench_feed_sync(self):
        from pretix_secrets_import.gate import client as gate_client
        event = self.make_event("feed-sync", "imported_secrets")
        t = time.perf_counter()
        self.fill_random(event, self.p["pool_big"])
        self.fill_gate_states(event)  # a third of them on paid tickets
        log(f"filled feed-sync: {self.p['pool_big']} random secrets in {time.perf_counter() - t:.1f} s")
        base = f"http://testserver/api/v1/organizers/{ORGA}/events/{event.slug}/imported_secrets/gate_feed/"
        ways = {"whole": (gate_client.with_query(base, page_size=PAGE), ""),
                "compact": (gate_client.with_query(base, page_size=PAGE, compact="true"), "gzip")}
        runs = {"whole": [], "compact": []}
        for _r, pair in interleaved(self.p["feed_sync_rounds"], "whole", "compact"):
            for way in pair:
                runs[way].append(self.full_sync(*ways[way]))
        a, b = ({key: median([run[key] for run in runs[way]]) for key in runs[way][0]} for way in ("whole", "compact"))
        details = dict(page_size=PAGE, urls={way: url for way, (url, _e) in ways.items()}, whole=runs["whole"],
                       compact_gzip=runs["compact"])
        labels = (f"whole entries, uncompressed, pages of {PAGE:,}", f"compact + gzip, pages of {PAGE:,}")
        self.add("feed-sync time", a["seconds"], b["seconds"], b["seconds"], details, labels=labels)
        self.add("feed-sync bytes", a["sent"] / 1e6, b["sent"] / 1e6, b["sent"] / 1e6, details, labels=labels)

    def fill_random(self, event, count):
        """``count`` secrets from pretix' default generator (random), inserted as ``fill`` does."""
        from django.db import transaction

        from pretix.base.secrets import RandomTicketSecretGenerator

        from pretix_secrets_import.models import ImportedSecret
        generate = RandomTicketSecretGenerator(event).generate_secret
        for start in range(0, count, 100_000):
            with transaction.atomic():
                self.raw_insert(event, {generate(event.bench_item) for _ in range(min(100_000, count - start))})
        analyze(ImportedSecret._meta.db_table)

    def full_sync(self, url, encoding):
        """The reference client's full sync from ``url``, asking for ``encoding``: its time and what it read."""
        from pretix_secrets_import.gate import client as gate_client
        api, sent, entries = self.api_client(), [], []

        def fetch(link):
            resp = api.get(link, HTTP_ACCEPT_ENCODING=encoding)
            if resp.status_code != 200:
                raise RuntimeError(f"GET {link}: {resp.status_code} {resp.content[:300]!r}")
            page = gate_client.decoded(resp.content, resp.get("Content-Encoding"))
            sent.append(len(resp.content))
            entries.append((len(page["results"]), page["count"]))
            return page

        t = time.perf_counter()
        state = gate_client.sync_round(fetch, url, {"cursor": None, "secrets": {}})
        seconds = time.perf_counter() - t
        if sum(n for n, _count in entries) != entries[0][1]:
            raise RuntimeError(f"the full sync read {sum(n for n, _c in entries)} of {entries[0][1]} entries")
        return dict(seconds=seconds, sent=sum(sent), requests=len(sent), entries=entries[0][1],
                    kept=len(state["secrets"]))
