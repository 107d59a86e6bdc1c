import inspect
from datetime import datetime, timezone

import pytest
from django.core.management import call_command
from django.test import Client, utils
from django.utils import translation
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from pretix.base.models import Organizer, User

from tests import database
from tests.helpers import make_event, make_team, token_client_for


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb,
                    django_db_modify_db_settings):
    """
    pytest-django's database set-up with the schema built once per run (tests/database.py). pretix' migrations leave
    data behind (a first admin user), which a transactional test's flush removes: empty the tables once, so that every
    test starts from the same state, whichever ran before it.
    """
    verbosity = request.config.option.verbose
    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock(), scopes_disabled():
        databases = database.set_up(keepdb, verbosity)
        call_command("flush", interactive=False, verbosity=0)
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            utils.teardown_databases(databases, verbosity=verbosity)


@pytest.fixture(autouse=True)
def english_again():
    """A request in another language leaves that language active in the thread: every test starts in English."""
    yield
    translation.activate("en")


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Like pretix' own test suite: fixtures build data without having to activate a scope."""
    if inspect.isgeneratorfunction(fixturedef.func):
        yield
    else:
        with scopes_disabled():
            yield


@pytest.fixture
def organizer():
    return Organizer.objects.create(name="Big Events", slug="bigevents")


@pytest.fixture
def other_organizer():
    return Organizer.objects.create(name="Other", slug="other")


@pytest.fixture
def event(organizer):
    return make_event(organizer, "sampleconf")


@pytest.fixture
def event2(organizer):
    return make_event(organizer, "otherconf")


@pytest.fixture
def disabled_event(organizer):
    return make_event(organizer, "noplugin", plugins="pretix.plugins.banktransfer")


@pytest.fixture
def other_organizer_event(other_organizer):
    return make_event(other_organizer, "foreign")


@pytest.fixture
def series(organizer):
    return make_event(organizer, "series", has_subevents=True)


@pytest.fixture
def subevent(series):
    return series.subevents.create(name="Day 1", date_from=datetime(2030, 1, 1, 10, tzinfo=timezone.utc))


@pytest.fixture
def subevent2(series):
    return series.subevents.create(name="Day 2", date_from=datetime(2030, 1, 2, 10, tzinfo=timezone.utc))


@pytest.fixture
def item(event):
    return event.items.create(name="Ticket", default_price=10, admission=True)


@pytest.fixture
def item2(event):
    return event.items.create(name="Shirt", default_price=20)


@pytest.fixture
def variation(item2):
    return item2.variations.create(value="S")


@pytest.fixture
def variation2(item2):
    return item2.variations.create(value="M")


@pytest.fixture
def series_item(series):
    return series.items.create(name="Day ticket", default_price=10, admission=True)


@pytest.fixture
def event2_item(event2):
    return event2.items.create(name="Other ticket", default_price=10)


@pytest.fixture
def user():
    return User.objects.create_user("dummy@dummy.dummy", "dummy")


@pytest.fixture
def team(organizer):
    return make_team(organizer)


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def backend_client(organizer, user):
    """A team member with all permissions, logged into pretix' backend."""
    make_team(organizer).members.add(user)
    client = Client()
    client.login(email=user.email, password="dummy")
    return client


@pytest.fixture
def token_client(team):
    return token_client_for(team)


def pytest_report_header(config):
    from django.conf import settings
    return f"database: {settings.DATABASES['default']['ENGINE']} {settings.DATABASES['default']['NAME']}"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs what the transactions inside leave for after their commit, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.hookimpl(trylast=True)  # after pytest-django's ordering, which this keeps otherwise
def pytest_collection_modifyitems(items):
    """The heavy suites first, so that the pytest-xdist workers end together."""
    items.sort(key=lambda item: not item.get_closest_marker("heavy"))
