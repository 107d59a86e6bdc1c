from datetime import date, datetime, timezone

import pytest
from django.utils import translation
from django_scopes import scopes_disabled

from pretix_secrets_import.importing.columns import ColumnMapping, Source
from pretix_secrets_import.importing.resolver import Resolver, parse_start
from tests.importing.test_importer import messages, pool, run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("text,start", [
    ("2027-02-05", (date(2027, 2, 5), None)),
    ("2027-02-05 19:00", (date(2027, 2, 5), (19, 0, None))),
    ("2027-02-05T19:00:30", (date(2027, 2, 5), (19, 0, 30))),
    ("05.02.2027", (date(2027, 2, 5), None)),
    ("5.2.2027", (date(2027, 2, 5), None)),
    ("05.02.27", (date(2027, 2, 5), None)),
    ("05.02.2027 19:00", (date(2027, 2, 5), (19, 0, None))),
    ("05.02.2027, 9:05", (date(2027, 2, 5), (9, 5, None))),
    ("05.02.27 19:00:00", (date(2027, 2, 5), (19, 0, 0))),
    ("31.02.2027", None), ("05.02.2027 25:00", None), ("05.02.2027 19", None), ("05.02.", None),
    ("05.02.027", None), ("2027-02-05 19:00 Uhr", None), ("Day 1", None), ("05/02/2027", None),
])
def test_starts_as_people_write_them(text, start):
    assert parse_start(text) == start


@pytest.fixture
def berlin(series):
    series.settings.timezone = "Europe/Berlin"
    with scopes_disabled():
        return [
            series.subevents.create(name="Matinee", date_from=datetime(2027, 2, 5, 10, tzinfo=timezone.utc)),
            series.subevents.create(name="Evening", date_from=datetime(2027, 2, 5, 18, tzinfo=timezone.utc)),
            series.subevents.create(name="Evening", date_from=datetime(2027, 2, 6, 18, tzinfo=timezone.utc)),
        ]


def resolver(series):
    with scopes_disabled():
        return Resolver(series)


def test_dates_by_their_local_start_in_iso_and_day_first(series, berlin):
    matinee, evening, next_evening = berlin
    dates = resolver(series)
    for text, subevent in [
        ("2027-02-05 11:00", matinee), ("05.02.2027 19:00", evening), ("05.02.27 19:00", evening),
        ("6.2.2027", next_evening), ("06.02.27", next_evening), ("2027-02-06", next_evening),
        ("06.02.2027 19:00:00", next_evening), (f" {matinee.pk} ", matinee), ("matinee", matinee),
    ]:
        assert dates.subevent(text) == subevent.pk, text
    for text in ["05.02.2027 18:00", "2027-02-05 10:00", "07.02.2027", "05.02.2027 19:00:30", "31.02.2027"]:
        with pytest.raises(ValueError, match=f'^Unknown date "{text}".$'):
            dates.subevent(text)


def test_a_value_matching_several_dates_names_them(series, berlin):
    matinee, evening, next_evening = berlin
    dates = resolver(series)
    with pytest.raises(ValueError) as e:
        dates.subevent("05.02.2027")
    assert str(e.value) == (
        f'"05.02.2027" matches more than one date: Matinee (2027-02-05 11:00, ID {matinee.pk}), Evening '
        f'(2027-02-05 19:00, ID {evening.pk}). Please use the start date and time, or the ID.'
    )
    with pytest.raises(ValueError, match=f"^\"Evening\" matches more than one date: Evening \\(2027-02-05 19:00, "
                                         f"ID {evening.pk}\\), Evening \\(2027-02-06 19:00, ID {next_evening.pk}\\)"):
        dates.subevent("Evening")
    with translation.override("de"):
        with pytest.raises(ValueError, match=r"Evening \(05\.02\.2027 19:00, ID "):  # as German spreadsheets write it
            resolver(series).subevent("Evening")


def test_dates_at_the_same_time_can_only_be_told_apart_by_the_id(series, berlin):
    with scopes_disabled():
        hall = series.subevents.create(name="Hall B", date_from=berlin[1].date_from)
    with pytest.raises(ValueError) as e:
        resolver(series).subevent("05.02.2027 19:00")
    assert str(e.value) == (
        f'"05.02.2027 19:00" matches more than one date: Evening (2027-02-05 19:00, ID {berlin[1].pk}), Hall B '
        f'(2027-02-05 19:00, ID {hall.pk}). Please use the ID.'
    )


def test_many_matching_dates_are_counted_beyond_the_first_ones(series):
    with scopes_disabled():
        slots = [series.subevents.create(name="Tour", date_from=datetime(2027, 2, 5, hour, tzinfo=timezone.utc))
                 for hour in range(8, 16)]
    with pytest.raises(ValueError) as e:
        resolver(series).subevent("Tour")
    assert str(e.value).startswith(f'"Tour" matches more than one date: Tour (2027-02-05 08:00, ID {slots[0].pk}), ')
    assert f"Tour (2027-02-05 12:00, ID {slots[4].pk}) and 3 others. Please use the start date and time" in str(e.value)
    assert "13:00" not in str(e.value)


def test_a_german_series_file_with_day_first_dates_is_imported(series, berlin, series_item):
    data = "Code;Datum\nG-1;05.02.2027 11:00\nG-2;06.02.27\nG-3;05.02.2027\n".encode("cp1252")
    mapping = ColumnMapping(secret=0, subevent=Source.column(1))
    result = run(series, data, mapping)
    assert [line for line, *_rest in messages(result)] == [4]
    assert messages(result)[0][1:3] == ("Date", "05.02.2027")
    assert "matches more than one date: Matinee" in messages(result)[0][3]
    run(series, data.replace(b"G-3;05.02.2027\n", b""), mapping)
    assert [(secret, subevent) for secret, _i, _v, subevent in pool(series)] == [
        ("G-1", berlin[0].pk), ("G-2", berlin[2].pk),
    ]
