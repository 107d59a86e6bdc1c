import pytest
from django_scopes import scopes_disabled

from pretix.base.models import LogEntry
from pretix.base.signals import event_live_issues

from pretix_secrets_import.models import ImportedSecret
from tests.helpers import add_secret, make_event, url

pytestmark = pytest.mark.django_db


def settings_url(event):
    return f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/settings/"


def test_generator_is_offered_in_ticket_settings(event):
    assert "imported_secrets" in event.ticket_secret_generators


def test_generator_only_with_plugin_enabled(disabled_event):
    assert "imported_secrets" not in disabled_event.ticket_secret_generators


def test_settings_api_selects_generator(token_client, event):
    resp = token_client.get(settings_url(event))
    assert resp.data["ticket_secret_generator"] == "random"
    assert resp.data["secrets_import_products"] == []
    assert resp.data["secrets_import_when_empty"] == "refuse"
    resp = token_client.patch(settings_url(event), {"ticket_secret_generator": "imported_secrets"}, format="json")
    assert resp.status_code == 200, resp.content
    event.settings.flush()
    assert event.settings.ticket_secret_generator == "imported_secrets"
    assert event.ticket_secret_generator.identifier == "imported_secrets"


def test_settings_api_products_and_fallback(token_client, event, item, item2):
    resp = token_client.patch(settings_url(event), {
        "secrets_import_products": [item.pk, item2.pk], "secrets_import_when_empty": "random",
    }, format="json")
    assert resp.status_code == 200, resp.content
    event.settings.flush()
    assert event.settings.secrets_import_products == [item.pk, item2.pk]
    assert event.settings.secrets_import_when_empty == "random"


@pytest.mark.parametrize("payload", [
    {"ticket_secret_generator": "nonsense"},
    {"secrets_import_when_empty": "maybe"},
    {"secrets_import_products": ["abc"]},
    {"secrets_import_products": "abc"},
    {"secrets_import_products": [2 ** 70]},
])
def test_settings_api_rejects_invalid_values(token_client, event, payload):
    resp = token_client.patch(settings_url(event), payload, format="json")
    assert resp.status_code == 400
    assert list(payload)[0] in resp.data


def test_settings_api_rejects_foreign_products(token_client, event, event2_item):
    resp = token_client.patch(settings_url(event), {"secrets_import_products": [event2_item.pk]}, format="json")
    assert resp.status_code == 400
    assert "secrets_import_products" in resp.data


def test_api_route_is_registered(token_client, event):
    add_secret(event, "ROUTED")
    resp = token_client.get(url(event))
    assert resp.status_code == 200
    assert [row["secret"] for row in resp.data["results"]] == ["ROUTED"]


def test_copied_event_keeps_settings_but_not_the_pool(organizer, event, item, item2):
    event.settings.ticket_secret_generator = "imported_secrets"
    event.settings.secrets_import_products = [item2.pk]
    add_secret(event, "ORIGINAL")
    with scopes_disabled():
        copy = make_event(organizer, "copy")
        copy.copy_data_from(event)
        copy.settings.flush()
        copied_item2 = copy.items.get(name="Shirt")
        assert copy.settings.ticket_secret_generator == "imported_secrets"
        assert copy.settings.secrets_import_products == [copied_item2.pk]
        assert not ImportedSecret.objects.filter(event=copy).exists()


def test_empty_pool_is_a_shop_not_ready_issue(event):
    def issues():
        return [r for _, r in event_live_issues.send(event) if r]

    assert issues() == []  # generator not in use
    event.settings.ticket_secret_generator = "imported_secrets"
    assert any("no unused secrets" in str(r) for r in issues())
    add_secret(event, "A")
    assert issues() == []


def test_disabling_the_plugin_while_its_generator_is_on_warns_in_the_log(event, caplog):
    add_secret(event, "LEFT-1")
    event.settings.ticket_secret_generator = "imported_secrets"
    with scopes_disabled():
        event.disable_plugin("pretix_secrets_import")
        event.save()
        entry = LogEntry.objects.get(event=event, action_type="pretix_secrets_import.plugin.disabled")
    assert entry.parsed_data == {"unused": 1}
    assert "new tickets get random secrets now" in str(entry.display())
    assert "1 unused secrets stay in the pool" in caplog.text
    # pretix keeps the setting, so enabling the plugin again brings the pool back
    event.settings.flush()
    assert event.settings.ticket_secret_generator == "imported_secrets"
    with scopes_disabled():
        event.enable_plugin("pretix_secrets_import")
        event.save()
    assert event.ticket_secret_generator.identifier == "imported_secrets"


def test_disabling_the_plugin_with_another_generator_logs_nothing(event, caplog):
    with scopes_disabled():
        event.disable_plugin("pretix_secrets_import")
        event.save()
        assert not LogEntry.objects.filter(action_type="pretix_secrets_import.plugin.disabled").exists()
    assert "Secrets Import was disabled" not in caplog.text


def test_switching_the_generator_is_logged(event, caplog):
    event.settings.ticket_secret_generator = "imported_secrets"
    assert "Tickets of bigevents/sampleconf get imported secrets from now on; 0 unused in the pool" in caplog.text
    assert caplog.records[-1].levelname == "WARNING"  # an empty pool refuses every sale
    add_secret(event, "S-1")
    event.settings.ticket_secret_generator = "random"
    assert ("Tickets of bigevents/sampleconf no longer get imported secrets (generator random); 1 unused secrets "
            "stay in the pool") in caplog.text
    caplog.clear()
    event.settings.delete("ticket_secret_generator")  # back to pretix' default
    assert "no longer get imported secrets (generator random)" in caplog.text
