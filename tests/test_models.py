"""The schema and clean_rows of the pool (models.py)."""
import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool.validation import clean_rows
from tests.helpers import add_secret, add_ticket

pytestmark = pytest.mark.django_db


def clean(event, rows, instance=None):
    with scopes_disabled():
        return clean_rows(event, rows, instance=instance)


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


def test_clean_rows_query_count_is_constant(event, item, item2, variation):
    def queries(count):
        rows = [{"secret": f"s{count}-{i}", "item": item2.pk, "variation": variation.pk} for i in range(count)]
        with CaptureQueriesContext(connection) as context:
            cleaned, errors = clean(event, rows)
        assert not any(errors)
        # the event's code format is read from its settings, which pretix caches in production
        return len([q for q in context.captured_queries if "settingsstore" not in q["sql"]])

    assert queries(1) == queries(500) == 4


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
