import pytest

from .conftest import add_secret, make_team

pytestmark = pytest.mark.django_db


def settings_url(event):
    return f"/control/event/{event.organizer.slug}/{event.slug}/secrets_import/settings"


def test_settings_page_shows_pool_and_generator_hint(backend_client, event, item):
    add_secret(event, "A")
    add_secret(event, "B", used=True)
    page = backend_client.get(settings_url(event)).content.decode()
    assert "1 unused secret" in page
    assert "ticket code generator" in page
    event.settings.ticket_secret_generator = "imported_secrets"
    page = backend_client.get(settings_url(event)).content.decode()
    assert "1 secret is left" in page
    general_settings = f"/control/event/{event.organizer.slug}/{event.slug}/settings/"
    assert "Secrets Import" in backend_client.get(general_settings).content.decode()


def test_settings_page_saves_products_and_fallback(backend_client, event, item, item2):
    resp = backend_client.post(settings_url(event), {
        "secrets_import_products": [str(item2.pk)], "secrets_import_when_empty": "random",
    })
    assert resp.status_code == 302
    event.settings.flush()
    assert event.settings.secrets_import_products == [item2.pk]
    assert event.settings.secrets_import_when_empty == "random"
    page = backend_client.get(settings_url(event)).content.decode()
    assert f'value="{item2.pk}"' in page and "checked" in page


def test_settings_page_rejects_foreign_product(backend_client, event, event2_item):
    resp = backend_client.post(settings_url(event), {
        "secrets_import_products": [str(event2_item.pk)], "secrets_import_when_empty": "refuse",
    })
    assert resp.status_code == 200
    assert "is not one of the available choices" in resp.content.decode()
    event.settings.flush()
    assert event.settings.secrets_import_products == []


@pytest.mark.parametrize("permissions,status", [
    (["event.orders:read", "event.orders:write"], 403),
    (["event.settings.general:write"], 200),
])
def test_settings_page_needs_settings_permission(client, organizer, user, event, permissions, status):
    make_team(organizer, permissions).members.add(user)
    client.login(email=user.email, password="dummy")
    assert client.get(settings_url(event)).status_code == status
