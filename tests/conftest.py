import importlib
import inspect
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client, utils
from django.utils.timezone import now
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from pretix.api.models import OAuthAccessToken, OAuthApplication
from pretix.base.models import Device, Event, Organizer, Team, User
from pretix.base.models.devices import generate_api_token

from pretix_secrets_import.models import ImportedSecret

PLUGINS = "pretix.plugins.banktransfer,pretix_secrets_import"
URL = "/api/v1/organizers/{orga}/events/{event}/imported_secrets/"

# Creating the test database runs outside of any django-scopes scope.
utils.setup_databases = scopes_disabled()(utils.setup_databases)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pretix' test settings create the tables without migrations; the pool's counting triggers come from one."""
    migration = importlib.import_module("pretix_secrets_import.migrations.0005_poolcount")
    with django_db_blocker.unblock():
        migration.create_triggers(None, SimpleNamespace(connection=connection))


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Like pretix' own test suite: fixtures build data without having to activate a scope."""
    if inspect.isgeneratorfunction(fixturedef.func):
        yield
    else:
        with scopes_disabled():
            yield


def make_event(organizer, slug, plugins=PLUGINS, has_subevents=False):
    return Event.objects.create(
        organizer=organizer, name=slug.title(), slug=slug,
        date_from=datetime(2030, 12, 27, 10, 0, 0, tzinfo=timezone.utc),
        plugins=plugins, has_subevents=has_subevents,
    )


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


def make_team(organizer, permissions=None, events=None):
    """A team with all event permissions, or only ``permissions``; for all events, or only ``events``."""
    with scopes_disabled():
        team = Team.objects.create(
            organizer=organizer, name="Team",
            all_events=events is None,
            all_event_permissions=permissions is None,
            limit_event_permissions={p: True for p in (permissions or [])},
        )
        if events:
            team.limit_events.set(events)
    return team


@pytest.fixture
def team(organizer):
    return make_team(organizer)


@pytest.fixture
def client():
    return APIClient()


def token_client_for(team):
    client = APIClient()
    with scopes_disabled():
        token = team.tokens.create(name="Token")
    client.credentials(HTTP_AUTHORIZATION="Token " + token.token)
    return client


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


def device_client_for(organizer, security_profile="full"):
    with scopes_disabled():
        device = Device.objects.create(
            organizer=organizer, all_events=True, name="Scanner", initialized=now(),
            api_token=generate_api_token(), security_profile=security_profile,
        )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Device " + device.api_token)
    return client


def oauth_client_for(user, organizers, scope):
    with scopes_disabled():
        application = OAuthApplication.objects.create(
            name="App", redirect_uris="https://example.org", client_type="confidential",
            authorization_grant_type="authorization-code",
        )
        token = OAuthAccessToken.objects.create(
            application=application, user=user, token="oauth-" + generate_api_token(),
            expires=now() + timedelta(days=1), scope=scope,
        )
        token.organizers.set(organizers)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + token.token)
    return client


def url(event, pk=None, suffix=""):
    base = URL.format(orga=event.organizer.slug, event=event.slug)
    if pk is not None:
        base += f"{pk}/"
    return base + suffix


def add_secret(event, secret, **kwargs):
    with scopes_disabled():
        return ImportedSecret.objects.create(event=event, organizer=event.organizer, secret=secret, **kwargs)


def add_ticket(event, secret, item=None):
    """A paid order with one ticket carrying ``secret``, as pretix stores it."""
    from pretix.base.models import Order
    with scopes_disabled():
        item = item or event.items.create(name="Admission", default_price=0, admission=True)
        order = Order.objects.create(
            event=event, total=0, status=Order.STATUS_PAID, datetime=now(), expires=now(),
            sales_channel=event.organizer.sales_channels.get(identifier="web"),
        )
        return order.positions.create(item=item, price=0, secret=secret)


def pytest_report_header(config):
    from django.conf import settings
    return f"database: {settings.DATABASES['default']['ENGINE']} {settings.DATABASES['default']['NAME']}"
