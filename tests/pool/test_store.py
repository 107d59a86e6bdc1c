"""The storage engine of the pools (pool.py): counting, finding, searching and storing secrets."""
import pytest
from django.db import connection
from django_scopes import scopes_disabled

from pretix_secrets_import.models import ImportedSecret, PoolCount
from pretix_secrets_import.pool import store as pool
from tests.helpers import add_secret, counted_summary, make_event, pool_summary

pytestmark = pytest.mark.django_db


def test_summary_counts_per_restriction_group(event, item, variation):
    add_secret(event, "FREE-1")
    add_secret(event, "FREE-2", used=True)
    add_secret(event, "ITEM-1", item=item)
    add_secret(event, "VAR-1", item=variation.item, variation=variation)
    with scopes_disabled():
        summary = pool_summary(event)
    assert summary == [
        {"item": None, "variation": None, "subevent": None, "total": 2, "used": 1, "unused": 1},
        {"item": item.pk, "variation": None, "subevent": None, "total": 1, "used": 0, "unused": 1},
        {"item": variation.item_id, "variation": variation.pk, "subevent": None, "total": 1, "used": 0,
         "unused": 1},
    ]


# --- counters (PoolCount, kept by the triggers of migration 0005) ----------------------------------------------

def assert_counted(*events):
    with scopes_disabled():
        for event in events:
            assert pool_summary(event) == counted_summary(event)


def test_counters_follow_every_kind_of_write(event, event2, item, item2, variation):
    add_secret(event, "a")
    add_secret(event, "b", item=item, used=True)
    add_secret(event2, "c", item=None)
    assert_counted(event, event2)
    with scopes_disabled():
        ImportedSecret.objects.bulk_create([
            ImportedSecret(event=event, organizer=event.organizer, secret=f"bulk{i}", item=item2, variation=variation)
            for i in range(5)
        ])
        pool.insert_rows(event, [
            {"secret": f"raw{i}", "used": i % 2 == 0, "item": item, "variation": None, "subevent": None}
            for i in range(7)
        ])
        assert_counted(event, event2)
        ImportedSecret.objects.filter(secret__startswith="raw").update(used=True)  # many rows, one statement
        assert_counted(event)
        ImportedSecret.objects.filter(secret="a").update(item=item2)  # moves to another group
        assert_counted(event)
        ImportedSecret.objects.filter(secret="bulk0").update(secret="renamed")  # no change of any count
        assert_counted(event)
        ImportedSecret.objects.filter(secret__startswith="bulk").delete()
        assert_counted(event)
        ImportedSecret.objects.filter(secret="c").update(event=event)  # not something the plugin does, still counted
        assert_counted(event, event2)
    assert pool.count(event) == sum(group["total"] for group in counted_summary(event))


def test_counters_follow_cascades(event, series, item, item2, variation, subevent):
    add_secret(event, "item-unused", item=item)
    add_secret(event, "item-used", item=item, used=True)
    add_secret(event, "var-used", item=item2, variation=variation, used=True)
    add_secret(series, "date-unused", subevent=subevent)
    add_secret(series, "date-used", subevent=subevent, used=True)
    with scopes_disabled():
        item.delete()
        variation.delete()
        subevent.delete()
    assert_counted(event, series)


def test_counters_of_a_deleted_event_are_removed(organizer):
    event = make_event(organizer, "gone")
    add_secret(event, "x")
    add_secret(event, "y", used=True)
    event_id = event.pk
    with scopes_disabled():
        event.delete()
        assert not PoolCount.objects.filter(event_id=event_id).exists()
        assert not ImportedSecret.objects.filter(event_id=event_id).exists()


def test_count_filters(event, item, item2, variation):
    add_secret(event, "free")
    add_secret(event, "free-used", used=True)
    add_secret(event, "item", item=item)
    add_secret(event, "var", item=item2, variation=variation, used=True)
    with scopes_disabled():
        assert pool.count(event) == 4
        assert pool.count(event, used=True) == 2
        assert pool.count(event, used=False) == 2
        assert pool.count(event, item=0) == 2
        assert pool.count(event, item=item2.pk) == 1
        assert pool.count(event, item=item2.pk, used=False) == 0
        assert pool.count(event, variation=variation.pk) == 1
        assert pool.count(event, subevent=0) == 4
        assert pool.count(event, item=10 ** 12) == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps differences and folds them")
def test_counters_fold_differences_without_changing_sums(event, item, monkeypatch):
    monkeypatch.setattr(pool, "COMPACT_AFTER", 3)
    for i in range(10):
        add_secret(event, f"s{i}", item=item if i % 2 else None)
    with scopes_disabled():
        ImportedSecret.objects.filter(secret__in=["s1", "s2"]).update(used=True)
        assert PoolCount.objects.filter(event_id=event.pk).count() == 12  # one row per statement and group
        assert_counted(event)  # reads, and folds: more than 3 rows beyond the groups
        assert PoolCount.objects.filter(event_id=event.pk).count() == 2
        assert_counted(event)
        ImportedSecret.objects.all().delete()
        monkeypatch.setattr(pool, "COMPACT_AFTER", 0)
        assert pool_summary(event) == []
        assert not PoolCount.objects.filter(event_id=event.pk).exists()  # empty groups are dropped when folding


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps differences and folds them")
def test_folding_keeps_every_sum(event, monkeypatch):
    # what a fold sees when another fold holds some of the rows: an added secret and the deletion of a used one,
    # without the row that marked it used
    PoolCount.objects.create(event_id=event.pk, item_id=0, variation_id=0, subevent_id=0, total=1, unused=1)
    PoolCount.objects.create(event_id=event.pk, item_id=0, variation_id=0, subevent_id=0, total=-1, unused=0)
    monkeypatch.setattr(pool, "COMPACT_AFTER", 0)
    pool.read_counts(event.pk)
    assert list(PoolCount.objects.filter(event_id=event.pk).values_list("total", "unused")) == [(0, 1)]


def test_allocation_query_reads_the_allocation_index(event, item):
    # SQLite only uses the expression index when the query spells COALESCE(..., 0) the same way (no bound 0).
    # Enough secrets of another group that the event's index alone would clearly read too much, with statistics that
    # say so: PostgreSQL plans a nearly empty table by whatever statistics an earlier test left behind.
    with scopes_disabled():
        pool.insert_rows(event, [{"secret": f"S-{i:05}", "used": False, "item": None, "variation": None,
                                  "subevent": None} for i in range(3000)])
    add_secret(event, "x", item=item)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {ImportedSecret._meta.db_table}")
            cursor.execute("SET LOCAL enable_seqscan = off")
    with scopes_disabled():
        plan = pool.unused_in_group(event, pool.Group(item.pk)).order_by("id").explain()
    assert "importedsecret_alloc_idx" in plan


@pytest.mark.parametrize("prefix", ["A", "AB-1", "ab", "Z\U0010ffff", "\U0010ffff", "\ud7ff", "é", "%", "_"])
def test_starting_with_matches_exactly_the_secrets_with_that_beginning(event, prefix):
    secrets = ["A", "AB-1", "AB-10", "AB-2", "ab-1", "AB1", "B", "Z\U0010ffff", "Z\U0010ffffX", "Z\U0010fffe",
               "\U0010ffff", "\U0010ffffA", "\ud7ffX", "\ue000", "é", "éa", "e", "%x", "_y", "xy"]
    for secret in secrets:
        add_secret(event, secret)
    with scopes_disabled():
        found = set(pool.starting_with(ImportedSecret.of_event(event), prefix).values_list("secret", flat=True))
    assert found == {s for s in secrets if s.startswith(prefix)}


def test_search_reads_the_search_index(event):
    with scopes_disabled():
        pool.insert_rows(event, [{"secret": f"S-{i:05}", "used": False, "item": None, "variation": None,
                                            "subevent": None} for i in range(3000)] + [
            {"secret": "AB-1", "used": False, "item": None, "variation": None, "subevent": None}])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {ImportedSecret._meta.db_table}")
    with scopes_disabled():
        qs = pool.starting_with(ImportedSecret.of_event(event), "AB")
        assert "importedsecret_search_idx" in qs.order_by("secret").explain()
        assert "importedsecret_search_idx" in ImportedSecret.of_event(event).filter(secret="AB-1").explain()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan")
def test_on_tickets_after_looks_each_ticket_up_by_its_secret(event, event2):
    """
    The lookup after a COPY reads the pool through the (organizer, secret) index, however the statistics stand: with the
    event and the ID inside the lookup, a planner with statistics from before the COPY took the (event, ID) index and
    read all of the imported rows for every ticket.
    """
    from django.test.utils import CaptureQueriesContext

    from tests.helpers import add_ticket
    from tests.test_paging import fill, scans
    add_ticket(event2, "ON-A-TICKET")
    fill(event2, "OTHER-", 20_000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ImportedSecret._meta.db_table}")  # statistics without the rows to come
    after = pool.last_id()
    fill(event, "NEW-", 20_000)
    with CaptureQueriesContext(connection) as queries:
        assert not pool.on_tickets_after(event, after, 20_000)
    lookup = queries[-1]["sql"]
    assert [node.get("Index Name") for node in scans(lookup)] == ["importedsecret_organizer_secret_uniq"]
    add_secret(event, "ON-A-TICKET-2")
    add_ticket(event2, "ON-A-TICKET-2")
    assert pool.on_tickets_after(event, after, 20_001)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan")
def test_on_tickets_looks_each_secret_up_in_the_tickets_secret_index(event):
    """
    pretix indexes a ticket's secret and its organizer each alone as well: asked for both in the lookup, a planner
    without statistics of the tickets took the organizer's index and read every ticket of the organizer per secret.
    """
    from django.test.utils import CaptureQueriesContext

    from tests.helpers import add_ticket
    for i in range(3):
        add_ticket(event, f"TICKET-{i}")
    with CaptureQueriesContext(connection) as queries:
        assert pool.on_tickets(event.organizer_id, ["TICKET-1", "NONE"]) == {"TICKET-1"}
    tickets = "pretixbase_orderposition"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {queries[-1]['sql']}")
        nodes, found = [cursor.fetchone()[0][0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == tickets:
            found.append(node.get("Index Cond", ""))
    assert len(found) == 1 and "secret" in found[0] and "organizer" not in found[0], found
