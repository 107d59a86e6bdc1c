"""
Pages of the pool in a shared installation: PostgreSQL's plans of every page read in import order, with a big pool
behind the rows of another event created first. A page must never read the other event's rows.
"""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from pretix_secrets_import import paging
from pretix_secrets_import.models import ImportedSecret
from tests.helpers import url

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the plans of PostgreSQL's planner"),
]
TABLE = ImportedSecret._meta.db_table
# The planner's mistake needs a pool that is most of the table, behind the other event's rows (lower IDs).
OTHER_ROWS, POOL_ROWS = 10_000, 90_000


def fill(event, prefix, rows):
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (organizer_id, event_id, secret, used, created, modified) "
            "SELECT %s, %s, %s || g, false, now(), now() FROM generate_series(1, %s) g",
            [event.organizer_id, event.pk, prefix, rows])


@pytest.fixture
def shared(event, event2):
    """``event``'s pool of 90,000 behind 10,000 of ``event2``, with statistics (as autovacuum would keep them)."""
    fill(event2, "OTHER-", OTHER_ROWS)
    fill(event, "POOL-", POOL_ROWS)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    return event


def scans(sql):
    """The scan nodes of the pool's table in the plan of ``sql`` as run (EXPLAIN ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    nodes, found = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == TABLE:
            found.append(node)
    return found


def foreign_reads(node) -> str:
    """Why ``node`` reads rows of other events ("" if it does not)."""
    if node["Node Type"] == "Seq Scan":
        return "a sequential scan"
    if node.get("Index Name") == f"{TABLE}_pkey":
        return f"the primary key, {node.get('Rows Removed by Filter', 0)} rows removed by the filter"
    if node.get("Rows Removed by Filter"):
        return f"{node['Rows Removed by Filter']} rows removed by the filter {node.get('Filter')}"
    return ""


def page_queries(request):
    """The queries of ``request()`` that read a page of the pool (ordered, limited) and their plans' pool scans."""
    with CaptureQueriesContext(connection) as queries:
        response = request()
    assert response.status_code == 200, response.content[:500]
    pages = [q["sql"] for q in queries if f'FROM "{TABLE}"' in q["sql"] and "ORDER BY" in q["sql"]
             and "LIMIT" in q["sql"]]
    assert pages, [q["sql"] for q in queries]
    return {sql: scans(sql) for sql in pages}


def assert_no_foreign_reads(request):
    for sql, nodes in page_queries(request).items():
        assert nodes, sql
        for node in nodes:
            assert not foreign_reads(node), f"{foreign_reads(node)}: {sql}"


def test_the_setup_has_the_planners_mistake(shared):
    """With the event as an equality, the first page walks the primary key through the other event's rows."""
    with scopes_disabled():
        sql = str(ImportedSecret.of_event(shared).order_by("id")[:101].query)
    assert [foreign_reads(node) for node in scans(sql)] == [f"the primary key, {OTHER_ROWS} rows removed by the filter"]


def test_in_pool_order_reads_only_the_event(shared):
    with scopes_disabled():
        for qs in (paging.in_pool_order(shared), paging.in_pool_order(shared).filter(used=False),
                   paging.in_pool_order(shared).reverse()):
            for node in scans(str(qs[:101].query)):
                assert not foreign_reads(node), foreign_reads(node)


def test_feed_pages(shared, token_client):
    """The pool's feed: its first page, a big one, a next one; the first page of a check-in list's feed."""
    with scopes_disabled():
        after = ImportedSecret.of_event(shared).order_by("id")[50].pk
        checkinlist = shared.checkin_lists.create(name="Entrance", all_products=True)
    for params in ("", "?page_size=1000", f"?after={after}", f"?checkinlist={checkinlist.pk}"):
        assert_no_foreign_reads(lambda: token_client.get(url(shared, suffix="gate_feed/") + params))


def test_api_list_pages(shared, token_client):
    for params in ("", "?page=1", "?ordering=-id", f"?page={POOL_ROWS // 50}", "?used=false"):
        assert_no_foreign_reads(lambda: token_client.get(url(shared) + params))


def test_backend_pool_pages(shared, backend_client):
    with scopes_disabled():
        ids = list(ImportedSecret.of_event(shared).order_by("id").values_list("pk", flat=True)[:100])
    page = f"/control/event/{shared.organizer.slug}/{shared.slug}/secrets_import/"
    for params in ("", "?last=1", "?used=no", f"?after={ids[0]}&page=2", f"?before={ids[-1]}&page=2"):
        assert_no_foreign_reads(lambda: backend_client.get(page + params))
