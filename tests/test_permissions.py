"""Who may do what on the imported_secrets API: the same rules as pretix' own order-related endpoints."""
import pytest
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from pretix_secrets_import.models import ImportedSecret

from .conftest import (
    add_secret, device_client_for, make_team, oauth_client_for,
    token_client_for, url,
)

pytestmark = pytest.mark.django_db

READ = "read"
WRITE = "write"


# Every endpoint, as (kind, method, url suffix, payload); "{pk}" stands for a freshly made secret.
OPERATIONS = [
    (READ, "get", "", None),
    (READ, "get", "{pk}/", None),
    (WRITE, "post", "", {"secret": "new-one"}),
    (WRITE, "post", "bulk_create/", [{"secret": "new-two"}]),
    (WRITE, "patch", "{pk}/", {"used": False}),
    (WRITE, "put", "{pk}/", {"secret": "existing"}),
    (WRITE, "delete", "{pk}/", None),
]
SUCCESS = {"get": 200, "post": 201, "patch": 200, "put": 200, "delete": 204}


def check(client, event, readable, writable, denied_status=403):
    """Run every operation on a fresh pool and compare with the expected status."""
    for kind, method, suffix, payload in OPERATIONS:
        with scopes_disabled():
            ImportedSecret.objects.filter(organizer=event.organizer).delete()
        secret = add_secret(event, "existing")
        target = url(event) + suffix.format(pk=secret.pk)
        resp = getattr(client, method)(target, payload, format="json")
        allowed = readable if kind == READ else writable
        expected = SUCCESS[method] if allowed else denied_status
        assert resp.status_code == expected, (kind, method, target, resp.status_code, resp.content)
        if not allowed:
            assert "existing" not in resp.content.decode()


def test_no_credentials_is_401(event):
    check(APIClient(), event, readable=False, writable=False, denied_status=401)


def test_invalid_token_is_401(event):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token doesnotexist")
    check(client, event, readable=False, writable=False, denied_status=401)


def test_inactive_token_is_401(event, team):
    client = token_client_for(team)
    with scopes_disabled():
        team.tokens.update(active=False)
    check(client, event, readable=False, writable=False, denied_status=401)


@pytest.mark.parametrize("permissions,readable,writable", [
    (None, True, True),  # all event permissions
    (["event.orders:read", "event.orders:write"], True, True),
    (["event.orders:read"], True, False),
    (["event.orders:checkin"], False, False),
    (["event.vouchers:read", "event.vouchers:write", "event.items:write"], False, False),
    ([], False, False),
])
def test_team_token_permissions(organizer, event, permissions, readable, writable):
    check(token_client_for(make_team(organizer, permissions)), event, readable, writable)


def test_team_token_limited_to_other_event(organizer, event, event2):
    client = token_client_for(make_team(organizer, events=[event2]))
    check(client, event, readable=False, writable=False)
    check(client, event2, readable=True, writable=True)


def test_team_token_of_other_organizer(other_organizer, event):
    check(token_client_for(make_team(other_organizer)), event, readable=False, writable=False)


def test_unknown_organizer_or_event_is_403(token_client, event):
    assert token_client.get("/api/v1/organizers/bigevents/events/nope/imported_secrets/").status_code == 403
    assert token_client.get("/api/v1/organizers/nope/events/sampleconf/imported_secrets/").status_code == 403
    assert token_client.post("/api/v1/organizers/nope/events/nope/imported_secrets/bulk_create/", [],
                             format="json").status_code == 403


def test_device_with_full_access(organizer, event):
    # Devices hold event.orders:read/write, like for pretix' own order endpoints.
    check(device_client_for(organizer), event, readable=True, writable=True)


@pytest.mark.parametrize("profile", ["pretixscan", "pretixscan_online_kiosk", "pretixscan_online_noorders"])
def test_device_with_restricted_security_profile(organizer, event, profile):
    check(device_client_for(organizer, profile), event, readable=False, writable=False)


def test_device_of_other_organizer(other_organizer, event):
    check(device_client_for(other_organizer), event, readable=False, writable=False, denied_status=403)


@pytest.mark.parametrize("scope,readable,writable", [
    ("read write", True, True),
    ("read", True, False),
    ("write", False, True),
])
def test_oauth_scopes(organizer, event, user, scope, readable, writable):
    make_team(organizer).members.add(user)
    check(oauth_client_for(user, [organizer], scope), event, readable, writable)


def test_oauth_token_not_granted_for_organizer(organizer, other_organizer, event, user):
    make_team(organizer).members.add(user)
    check(oauth_client_for(user, [other_organizer], "read write"), event, readable=False, writable=False)


def test_oauth_user_without_team(organizer, event, user):
    check(oauth_client_for(user, [organizer], "read write"), event, readable=False, writable=False)


def test_oauth_user_with_read_only_team(organizer, event, user):
    make_team(organizer, ["event.orders:read"]).members.add(user)
    check(oauth_client_for(user, [organizer], "read write"), event, readable=True, writable=False)
