"""Work that runs once after a transaction has committed, however often the transaction asked for it."""
import threading

from django.db import transaction

_local = threading.local()


class _Batch:
    def __init__(self, run):
        self.items, self.run, self.done = set(), run, False

    def __call__(self):
        self.done = True
        by_event = {}
        for event_id, item in self.items:
            by_event.setdefault(event_id, set()).add(item)
        self.run(by_event)


def collect(name, run, event_id, item):
    """
    Add ``item`` of event ``event_id`` to this transaction's batch ``name``: once the transaction has committed,
    ``run({event_id: {item, ...}})`` is called once. Like pretix' own order checks, a batch whose transaction was
    rolled back (which dropped its callback) starts afresh; outside a transaction it runs right away, so the item
    goes in first. A failure in ``run`` must not fail the committed change: Django logs it.
    """
    batch = getattr(_local, name, None)
    registered = [func for _sids, func, *_rest in transaction.get_connection().run_on_commit]
    if batch is None or batch.done or batch not in registered:
        batch = _Batch(run)
        setattr(_local, name, batch)
        batch.items.add((event_id, item))
        transaction.on_commit(batch, robust=True)
    else:
        batch.items.add((event_id, item))
