import pytest

from .conftest import url

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
    assert token_client.get(url(event)).status_code == 200
