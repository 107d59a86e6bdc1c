"""Helpers the tests share; the fixtures built from them are in conftest.py."""
from datetime import datetime, timedelta, timezone

from django.db.models import Count, F, Q
from django.utils.timezone import now
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from pretix.api.models import OAuthAccessToken, OAuthApplication
from pretix.base.models import Device, Event, Order, Team
from pretix.base.models.devices import generate_api_token

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.pool import store as pool

PLUGINS = "pretix.plugins.banktransfer,pretix_secrets_import"
URL = "/api/v1/organizers/{orga}/events/{event}/imported_secrets/"


def make_event(organizer, slug, plugins=PLUGINS, has_subevents=False):
    return Event.objects.create(
        organizer=organizer, name=slug.title(), slug=slug,
        date_from=datetime(2030, 12, 27, 10, 0, 0, tzinfo=timezone.utc),
        plugins=plugins, has_subevents=has_subevents,
    )


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


def token_client_for(team):
    client = APIClient()
    with scopes_disabled():
        token = team.tokens.create(name="Token")
    client.credentials(HTTP_AUTHORIZATION="Token " + token.token)
    return client


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
    with scopes_disabled():
        item = item or event.items.create(name="Admission", default_price=0, admission=True)
        order = Order.objects.create(
            event=event, total=0, status=Order.STATUS_PAID, datetime=now(), expires=now(),
            sales_channel=event.organizer.sales_channels.get(identifier="web"),
        )
        return order.positions.create(item=item, price=0, secret=secret)


def counted_summary(event):
    """``pool_summary`` computed the slow way, from every row of the pool."""
    with scopes_disabled():
        rows = (
            ImportedSecret.objects.filter(event=event).values("item", "variation", "subevent")
            .annotate(total=Count("id"), unused=Count("id", filter=Q(used=False)))
            .order_by(F("item").asc(nulls_first=True), F("variation").asc(nulls_first=True),
                      F("subevent").asc(nulls_first=True))
        )
        return [{**row, "used": row["total"] - row["unused"]} for row in rows]


def pool_summary(event):
    """``pool.summary`` in the shape of the summary API, to compare with ``counted_summary``."""
    with scopes_disabled():
        return [counted.as_dict() for counted in pool.summary(event)]
