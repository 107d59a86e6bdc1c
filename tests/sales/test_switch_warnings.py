"""
Warnings where the pool silently stops being used: disabling the plugin on pretix' plugins page, or choosing another
ticket code generator on pretix' ticket settings page. Driven through pretix' real backend views, so that these tests
fail when pretix changes the pages, their URL names or the ``html_page_start`` signal the warnings rely on.
"""
import pytest
from django.test import Client
from django_scopes import scopes_disabled

from pretix.base.models import Event, LogEntry, User

from tests.helpers import add_secret, make_team

pytestmark = pytest.mark.django_db

WARNING = 'id="secrets-import-switch-warning"'


def plugins_url(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/settings/plugins"


def dashboard_url(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/"


def tickets_url(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/settings/tickets"


def page(client, url):
    resp = client.get(url)
    assert resp.status_code == 200
    return resp.content.decode()


def messages_of(resp):
    return [str(m) for m in resp.context["messages"]]


def log_entries(event, action_type):
    with scopes_disabled():
        return list(LogEntry.objects.filter(event=event, action_type=action_type))


@pytest.fixture
def in_use(event):
    add_secret(event, "LEFT-1")
    add_secret(event, "LEFT-2")
    add_secret(event, "GONE", used=True)
    event.settings.ticket_secret_generator = "imported_secrets"
    return event


def test_plugins_page_warns_before_disabling(backend_client, in_use):
    html = page(backend_client, plugins_url(in_use))
    assert WARNING in html
    assert "which has 2 unused secrets left. If you disable Secrets Import, new tickets get random secrets" in html
    assert f'href="{tickets_url(in_use)}"' in html
    # the plugin's description says so too, also for events that do not use the pool
    assert "Before you disable it for an event whose tickets get imported secrets" in html


def test_disabling_on_the_plugins_page_warns_and_logs(backend_client, in_use):
    resp = backend_client.post(plugins_url(in_use), {"plugin:pretix_secrets_import": "disable"}, follow=True)
    assert resp.request["PATH_INFO"] == plugins_url(in_use)
    assert messages_of(resp) == ["The plugin has been disabled."]
    html = resp.content.decode()
    assert WARNING in html and "alert-danger" in html
    assert ("Secrets Import is disabled for this event, but “Imported secrets” is still its ticket code generator: "
            "new tickets get random secrets now") in html
    assert "2 unused imported secrets remain in the pool." in html
    assert f'<form method="post" action="{plugins_url(in_use)}"' in html
    assert 'name="plugin:pretix_secrets_import" value="enable"' in html
    with scopes_disabled():
        in_use.refresh_from_db()
    assert "pretix_secrets_import" not in in_use.get_plugins()
    assert in_use.ticket_secret_generator.identifier == "random"  # what pretix silently does now

    [entry] = log_entries(in_use, "pretix_secrets_import.plugin.disabled")
    assert entry.parsed_data == {"unused": 2}
    assert "new tickets get random secrets now" in str(entry.display())
    assert log_entries(in_use, "pretix.event.plugins.disabled")  # pretix' own entry, with the user

    # The ticket settings page says the same while the plugin is off.
    assert "Secrets Import is disabled for this event" in page(backend_client, tickets_url(in_use))

    # The event's dashboard, which shows the plugin's widgets only while it is enabled, says so as well.
    assert "Secrets Import is disabled for this event" in page(backend_client, dashboard_url(in_use))

    # Its button enables the plugin again, which brings the pool back; the warning turns into the one before
    # disabling.
    resp = backend_client.post(plugins_url(in_use), {"plugin:pretix_secrets_import": "enable"}, follow=True)
    html = resp.content.decode()
    assert "Secrets Import is disabled for this event" not in html
    assert "If you disable Secrets Import" in html
    with scopes_disabled():
        assert Event.objects.get(pk=in_use.pk).ticket_secret_generator.identifier == "imported_secrets"


def test_disabled_plugin_with_another_generator_is_not_mentioned(backend_client, event):
    add_secret(event, "LEFT-1")
    backend_client.post(plugins_url(event), {"plugin:pretix_secrets_import": "disable"})
    assert WARNING not in page(backend_client, plugins_url(event))
    assert WARNING not in page(backend_client, tickets_url(event))
    assert not log_entries(event, "pretix_secrets_import.plugin.disabled")


def test_switching_the_generator_away_warns_and_logs(backend_client, in_use):
    html = page(backend_client, tickets_url(in_use))
    assert WARNING not in html  # the pool is in use
    resp = backend_client.post(tickets_url(in_use), {"ticket_secret_generator": "random", "ticket_secret_length": "32"},
                               follow=True)
    assert resp.request["PATH_INFO"] == tickets_url(in_use)
    assert messages_of(resp) == ["Your changes have been saved."]
    in_use.settings.flush()
    assert in_use.settings.ticket_secret_generator == "random"
    html = resp.content.decode()
    assert WARNING in html
    assert ("The pool of Secrets Import holds 2 unused imported secrets, but new tickets get their secrets from "
            "“Random (default, works with all pretix apps)”") in html

    [entry] = log_entries(in_use, "pretix_secrets_import.generator.switched_away")
    assert entry.parsed_data == {"generator": "random", "unused": 2}
    assert str(entry.display()) == (
        'Tickets no longer get their secrets from the imported pool: the ticket code generator is now "Random '
        '(default, works with all pretix apps)". New tickets get secrets that your access control may not accept. '
        '2 unused secrets stay in the pool.'
    )

    # Switching back ends the warning; switching between two other generators is no switch away from the pool.
    backend_client.post(tickets_url(in_use), {"ticket_secret_generator": "imported_secrets",
                                              "ticket_secret_length": "32"})
    assert WARNING not in page(backend_client, tickets_url(in_use))
    in_use.settings.ticket_secret_generator = "random"
    in_use.settings.ticket_secret_generator = "pretix_sig1"
    assert len(log_entries(in_use, "pretix_secrets_import.generator.switched_away")) == 2


def test_switch_away_through_the_settings_api_and_by_reset_is_logged(token_client, in_use):
    resp = token_client.patch(f"/api/v1/organizers/{in_use.organizer.slug}/events/{in_use.slug}/settings/",
                              {"ticket_secret_generator": "random"}, format="json")
    assert resp.status_code == 200, resp.content
    in_use.settings.ticket_secret_generator = "imported_secrets"
    in_use.settings.delete("ticket_secret_generator")  # back to pretix' default
    entries = log_entries(in_use, "pretix_secrets_import.generator.switched_away")
    assert [e.parsed_data for e in entries] == [{"generator": "random", "unused": 2}] * 2


def test_ticket_settings_without_unused_secrets_show_nothing(backend_client, event):
    add_secret(event, "GONE", used=True)
    assert WARNING not in page(backend_client, tickets_url(event))
    add_secret(event, "LEFT")
    assert "holds 1 unused imported secret, but" in page(backend_client, tickets_url(event))


def test_warnings_only_on_these_pages(backend_client, in_use):
    assert WARNING not in page(backend_client, dashboard_url(in_use))


def test_warnings_need_the_settings_permission(organizer, user, in_use):
    client = Client()
    make_team(organizer, ["event.orders:read"]).members.add(user)
    client.login(email=user.email, password="dummy")
    resp = client.get(plugins_url(in_use))
    assert resp.status_code == 403  # pretix' error page, rendered for the plugins page's URL
    assert WARNING not in resp.content.decode()
    # The dashboard does not tell who cannot enable the plugin again.
    backend = Client()
    make_team(organizer, ["event.settings.general:write", "event.orders:read"]).members.add(
        admin := User.objects.create_user("settings@example.org", "dummy"))
    backend.login(email=admin.email, password="dummy")
    backend.post(plugins_url(in_use), {"plugin:pretix_secrets_import": "disable"})
    assert "Secrets Import is disabled for this event" in page(backend, dashboard_url(in_use))
    assert WARNING not in page(client, dashboard_url(in_use))
