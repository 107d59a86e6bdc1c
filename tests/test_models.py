import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django_scopes import scopes_disabled

from pretix_secrets_import.models import (
    ImportedSecret, PoolCount, validate_secret,
)

from .conftest import add_secret, add_ticket, make_event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["foobar", "A" * 255, "abc-123_:/+=", "Ünïcödé€"])
def test_validate_secret_accepts(value):
    validate_secret(value)


@pytest.mark.parametrize("value,code", [
    ("", "blank"),
    (None, "blank"),
    (123, "blank"),
    ("A" * 256, "max_length"),
    ("foo bar", "whitespace"),
    (" foo", "whitespace"),
    ("foo\n", "whitespace"),
    ("foo\tbar", "whitespace"),
    ("foo\u00a0bar", "whitespace"),
    ("foo\x00bar", "unprintable"),
    ("foo\x07", "unprintable"),
    ("foo\u200bbar", "unprintable"),
])
def test_validate_secret_rejects(value, code):
    with pytest.raises(ValidationError) as e:
        validate_secret(value)
    assert e.value.code == code


def clean(event, rows, instance=None):
    with scopes_disabled():
        return ImportedSecret.clean_rows(event, rows, instance=instance)


def test_clean_rows_resolves_ids(event, item2, variation):
    cleaned, errors = clean(event, [{"secret": "a", "item": item2.pk, "variation": variation.pk}])
    assert errors == [{}]
    assert cleaned[0]["item"] == item2
    assert cleaned[0]["variation"] == variation
    assert cleaned[0]["used"] is False


def test_clean_rows_variation_fills_item(event, item2, variation):
    cleaned, errors = clean(event, [{"secret": "a", "variation": variation.pk}])
    assert errors == [{}]
    assert cleaned[0]["item"] == item2


def test_clean_rows_variation_of_other_item(event, item, variation):
    cleaned, errors = clean(event, [{"secret": "a", "item": item.pk, "variation": variation.pk}])
    assert cleaned == [None]
    assert "variation" in errors[0]


def test_clean_rows_foreign_objects(event, event2_item, subevent):
    cleaned, errors = clean(event, [{"secret": "a", "item": event2_item.pk}, {"secret": "b", "subevent": subevent.pk}])
    assert cleaned == [None, None]
    assert "item" in errors[0]
    assert "subevent" in errors[1]


def test_clean_rows_subevent_of_series(series, subevent, event):
    cleaned, errors = clean(series, [{"secret": "a", "subevent": subevent.pk}])
    assert errors == [{}]
    assert cleaned[0]["subevent"] == subevent


def test_clean_rows_duplicates(event, event2, other_organizer_event):
    add_secret(event2, "in-other-event")
    add_secret(other_organizer_event, "in-other-organizer")
    cleaned, errors = clean(event, [
        {"secret": "new"}, {"secret": "new"}, {"secret": "in-other-event"}, {"secret": "in-other-organizer"},
    ])
    assert errors[0] == {}
    assert "entry 1" in str(errors[1]["secret"][0])
    assert "already been imported" in str(errors[2]["secret"][0])
    assert errors[3] == {}


def test_clean_rows_ticket_secret(event, event2):
    add_ticket(event2, "issued")
    cleaned, errors = clean(event, [{"secret": "issued"}])
    assert "already used by a ticket" in str(errors[0]["secret"][0])


def test_clean_rows_excludes_instance(event):
    secret = add_secret(event, "keep")
    cleaned, errors = clean(event, [{"secret": "keep"}], instance=secret)
    assert errors == [{}]


def test_clean_rows_query_count_is_constant(event, item, item2, variation, django_assert_max_num_queries):
    rows = [{"secret": f"s{i}", "item": item2.pk, "variation": variation.pk} for i in range(500)]
    with django_assert_max_num_queries(4):
        cleaned, errors = clean(event, rows)
    assert not any(errors)


def test_database_enforces_unique_secret_per_organizer(event, event2):
    add_secret(event, "x")
    with pytest.raises(IntegrityError), transaction.atomic():
        add_secret(event2, "x")


def test_deleting_item_deletes_unused_and_keeps_used(event, item, item2, variation):
    unused = add_secret(event, "unused", item=item)
    used = add_secret(event, "used", item=item, used=True)
    unrestricted = add_secret(event, "free")
    var_unused = add_secret(event, "var-unused", item=item2, variation=variation)
    var_used = add_secret(event, "var-used", item=item2, variation=variation, used=True)
    with scopes_disabled():
        item.delete()
        variation.delete()
        assert not ImportedSecret.objects.filter(pk__in=[unused.pk, var_unused.pk]).exists()
        used.refresh_from_db()
        assert used.used and used.item is None
        var_used.refresh_from_db()
        assert var_used.used and var_used.variation is None and var_used.item == item2
        assert ImportedSecret.objects.filter(pk=unrestricted.pk).exists()


def test_deleting_subevent_deletes_unused_and_keeps_used(series, subevent, subevent2):
    unused = add_secret(series, "unused", subevent=subevent)
    used = add_secret(series, "used", subevent=subevent, used=True)
    other = add_secret(series, "other", subevent=subevent2)
    with scopes_disabled():
        subevent.delete()
        assert not ImportedSecret.objects.filter(pk=unused.pk).exists()
        used.refresh_from_db()
        assert used.used and used.subevent is None
        assert ImportedSecret.objects.filter(pk=other.pk).exists()


def test_deleting_item_with_variation_keeps_used(event, item2, variation):
    used = add_secret(event, "used", item=item2, variation=variation, used=True)
    add_secret(event, "unused", item=item2, variation=variation)
    with scopes_disabled():
        item2.delete()
        used.refresh_from_db()
        assert used.used and used.item is None and used.variation is None
        assert list(ImportedSecret.objects.values_list("secret", flat=True)) == ["used"]


def test_summary_counts_per_restriction_group(event, item, variation):
    add_secret(event, "FREE-1")
    add_secret(event, "FREE-2", used=True)
    add_secret(event, "ITEM-1", item=item)
    add_secret(event, "VAR-1", item=variation.item, variation=variation)
    with scopes_disabled():
        summary = ImportedSecret.summary(event)
    assert summary == [
        {"item": None, "variation": None, "subevent": None, "total": 2, "used": 1, "unused": 1},
        {"item": item.pk, "variation": None, "subevent": None, "total": 1, "used": 0, "unused": 1},
        {"item": variation.item_id, "variation": variation.pk, "subevent": None, "total": 1, "used": 0,
         "unused": 1},
    ]


# --- counters (PoolCount, kept by the triggers of migration 0005) ----------------------------------------------

def counted_summary(event):
    """``ImportedSecret.summary`` computed the slow way, from every row of the pool."""
    with scopes_disabled():
        rows = (
            ImportedSecret.objects.filter(event=event).values("item", "variation", "subevent")
            .annotate(total=Count("id"), unused=Count("id", filter=Q(used=False)))
            .order_by(F("item").asc(nulls_first=True), F("variation").asc(nulls_first=True),
                      F("subevent").asc(nulls_first=True))
        )
        return [{**row, "used": row["total"] - row["unused"]} for row in rows]


def assert_counted(*events):
    with scopes_disabled():
        for event in events:
            assert ImportedSecret.summary(event) == counted_summary(event)


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
        ImportedSecret.insert_rows(event, [
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
    assert ImportedSecret.count(event) == sum(group["total"] for group in counted_summary(event))


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
        assert ImportedSecret.count(event) == 4
        assert ImportedSecret.count(event, used=True) == 2
        assert ImportedSecret.count(event, used=False) == 2
        assert ImportedSecret.count(event, item=0) == 2
        assert ImportedSecret.count(event, item=item2.pk) == 1
        assert ImportedSecret.count(event, item=item2.pk, used=False) == 0
        assert ImportedSecret.count(event, variation=variation.pk) == 1
        assert ImportedSecret.count(event, subevent=0) == 4
        assert ImportedSecret.count(event, item=10 ** 12) == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps differences and folds them")
def test_counters_fold_differences_without_changing_sums(event, item, monkeypatch):
    monkeypatch.setattr(PoolCount, "COMPACT_AFTER", 3)
    for i in range(10):
        add_secret(event, f"s{i}", item=item if i % 2 else None)
    with scopes_disabled():
        ImportedSecret.objects.filter(secret__in=["s1", "s2"]).update(used=True)
        assert PoolCount.objects.filter(event_id=event.pk).count() == 12  # one row per statement and group
        assert_counted(event)  # reads, and folds: more than 3 rows beyond the groups
        assert PoolCount.objects.filter(event_id=event.pk).count() == 2
        assert_counted(event)
        ImportedSecret.objects.all().delete()
        monkeypatch.setattr(PoolCount, "COMPACT_AFTER", 0)
        assert ImportedSecret.summary(event) == []
        assert not PoolCount.objects.filter(event_id=event.pk).exists()  # empty groups are dropped when folding


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL keeps differences and folds them")
def test_folding_keeps_every_sum(event, monkeypatch):
    # what a fold sees when another fold holds some of the rows: an added secret and the deletion of a used one,
    # without the row that marked it used
    PoolCount.objects.create(event_id=event.pk, item_id=0, variation_id=0, subevent_id=0, total=1, unused=1)
    PoolCount.objects.create(event_id=event.pk, item_id=0, variation_id=0, subevent_id=0, total=-1, unused=0)
    monkeypatch.setattr(PoolCount, "COMPACT_AFTER", 0)
    PoolCount.groups(event.pk)
    assert list(PoolCount.objects.filter(event_id=event.pk).values_list("total", "unused")) == [(0, 1)]


def test_allocation_query_reads_the_allocation_index(event, item):
    # SQLite only uses the expression index when the query spells COALESCE(..., 0) the same way (no bound 0)
    add_secret(event, "x", item=item)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would be read whole
    with scopes_disabled():
        plan = ImportedSecret.unused_in_group(event, item_id=item.pk).order_by("id").explain()
    assert "importedsecret_alloc_idx" in plan


@pytest.mark.parametrize("prefix", ["A", "AB-1", "ab", "Z\U0010ffff", "\U0010ffff", "\ud7ff", "é", "%", "_"])
def test_starting_with_matches_exactly_the_secrets_with_that_beginning(event, prefix):
    secrets = ["A", "AB-1", "AB-10", "AB-2", "ab-1", "AB1", "B", "Z\U0010ffff", "Z\U0010ffffX", "Z\U0010fffe",
               "\U0010ffff", "\U0010ffffA", "\ud7ffX", "\ue000", "é", "éa", "e", "%x", "_y", "xy"]
    for secret in secrets:
        add_secret(event, secret)
    with scopes_disabled():
        found = set(ImportedSecret.starting_with(ImportedSecret.of_event(event), prefix).values_list("secret",
                                                                                                     flat=True))
    assert found == {s for s in secrets if s.startswith(prefix)}


def test_search_reads_the_search_index(event):
    with scopes_disabled():
        ImportedSecret.insert_rows(event, [{"secret": f"S-{i:05}", "used": False, "item": None, "variation": None,
                                            "subevent": None} for i in range(3000)] + [
            {"secret": "AB-1", "used": False, "item": None, "variation": None, "subevent": None}])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {ImportedSecret._meta.db_table}")
    with scopes_disabled():
        qs = ImportedSecret.starting_with(ImportedSecret.of_event(event), "AB")
        assert "importedsecret_search_idx" in qs.order_by("secret").explain()
        assert "importedsecret_search_idx" in ImportedSecret.of_event(event).filter(secret="AB-1").explain()
