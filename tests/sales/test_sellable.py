"""What can still be sold: per product (variation, date), the unused secrets that fit it, own and shared."""
from datetime import timedelta

import pytest
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix.base.models import SubEventItem
from pretix.base.signals import event_live_issues

from pretix_secrets_import.pool.store import Group
from pretix_secrets_import.sales.sellable import (
    Sellable, sellable, shortfall, sold_out, targets,
)
from tests.helpers import add_secret, url
from tests.sales import test_generator
from tests.sales.test_alerts import dashboard
from tests.sales.test_generator import use_generator

pytestmark = pytest.mark.django_db
shop, series_shop = test_generator.shop, test_generator.series_shop  # the same fixtures


def rows(event, **filters):
    with scopes_disabled():
        return sellable(event, **filters)


def test_targets_are_the_active_products_that_draw_from_the_pool(shop):
    with scopes_disabled():
        assert set(targets(shop.event)) == {
            Group(shop.ticket.pk), Group(shop.workshop.pk, shop.morning.pk), Group(shop.workshop.pk, shop.afternoon.pk),
        }  # not the shirt: it is no admission product
        shop.afternoon.active = False
        shop.afternoon.save()
        assert Group(shop.workshop.pk, shop.afternoon.pk) in targets(shop.event)  # the backend can still sell it
        assert Group(shop.workshop.pk, shop.afternoon.pk) not in targets(shop.event, on_sale=True)
        shop.event.settings.secrets_import_products = [shop.shirt.pk]
        assert targets(shop.event) == [Group(shop.shirt.pk)]


def test_a_product_whose_variations_are_all_inactive_is_not_on_sale(shop):
    with scopes_disabled():
        shop.workshop.variations.update(active=False)
        assert targets(shop.event, on_sale=True) == [Group(shop.ticket.pk)]  # not the workshop without a variation
        assert len(targets(shop.event)) == 3


def test_own_and_shared_secrets(shop):
    for i in range(3):
        add_secret(shop.event, f"MORNING-{i}", item=shop.workshop, variation=shop.morning)
    for i in range(2):
        add_secret(shop.event, f"WORKSHOP-{i}", item=shop.workshop)
    for i in range(4):
        add_secret(shop.event, f"ANY-{i}")
    add_secret(shop.event, "GONE", used=True)
    assert rows(shop.event) == [  # fewest first
        Sellable(Group(shop.ticket.pk), own=0, shared=4),
        Sellable(Group(shop.workshop.pk, shop.afternoon.pk), own=0, shared=6),
        Sellable(Group(shop.workshop.pk, shop.morning.pk), own=3, shared=6),
    ]
    # a product filter still counts secrets as shared when other products can take them
    assert rows(shop.event, item=shop.ticket.pk) == [Sellable(Group(shop.ticket.pk), own=0, shared=4)]
    # with only the ticket drawing from the pool, the unrestricted secrets are all its own
    shop.event.settings.secrets_import_products = [shop.ticket.pk]
    assert rows(shop.event) == [Sellable(Group(shop.ticket.pk), own=4, shared=0)]


def test_series_counts_per_date(series_shop):
    event, ticket, day1, day2 = series_shop.event, series_shop.ticket, series_shop.day1, series_shop.day2
    with scopes_disabled():
        event.subevents.update(active=True)
    add_secret(event, "DAY1", subevent=day1)
    add_secret(event, "PASS", item=ticket)
    assert rows(event) == [
        Sellable(Group(ticket.pk, None, day2.pk), own=0, shared=1),
        Sellable(Group(ticket.pk, None, day1.pk), own=1, shared=1),
    ]
    assert rows(event, subevent=day1.pk) == [Sellable(Group(ticket.pk, None, day1.pk), own=1, shared=1)]
    with scopes_disabled():
        SubEventItem.objects.create(subevent=day2, item=ticket, disabled=True)
        assert targets(event) == [Group(ticket.pk, None, day1.pk)]
        day1.date_from = now() - timedelta(days=3)  # over: no longer on sale
        day1.save()
        assert targets(event) == []


def test_shortfall_hands_out_secrets_as_the_generator_does(shop):
    add_secret(shop.event, "MORNING", item=shop.workshop, variation=shop.morning)
    add_secret(shop.event, "ANY")
    morning, ticket = Group(shop.workshop.pk, shop.morning.pk), Group(shop.ticket.pk)
    with scopes_disabled():
        assert shortfall(shop.event, [morning, ticket]) == []  # the morning ticket takes its own secret first
        assert shortfall(shop.event, [ticket, morning]) == []
        assert shortfall(shop.event, [ticket, ticket]) == [ticket]
        assert shortfall(shop.event, [morning, morning, morning]) == [morning]


# --- API ------------------------------------------------------------------------------------------------------------


def test_sellable_api_pages_fewest_first(token_client, shop):
    add_secret(shop.event, "MORNING", item=shop.workshop, variation=shop.morning)
    add_secret(shop.event, "ANY")
    resp = token_client.get(url(shop.event, suffix="sellable/"))
    assert resp.status_code == 200, resp.content
    assert resp.data["count"] == 3 and resp.data["next"] is None
    assert resp.data["results"] == [
        {"item": shop.ticket.pk, "variation": None, "subevent": None, "left": 1, "own": 0, "shared": 1},
        {"item": shop.workshop.pk, "variation": shop.afternoon.pk, "subevent": None, "left": 1, "own": 0,
         "shared": 1},
        {"item": shop.workshop.pk, "variation": shop.morning.pk, "subevent": None, "left": 2, "own": 1, "shared": 1},
    ]
    resp = token_client.get(url(shop.event, suffix=f"sellable/?item={shop.ticket.pk}"))
    assert [r["item"] for r in resp.data["results"]] == [shop.ticket.pk]
    summary = token_client.get(url(shop.event, suffix="summary/")).data
    assert summary["sellable"] == {"products": 3, "sold_out": 0, "lowest": resp.data["results"][0]}


@pytest.mark.parametrize("query", ["item=abc", "subevent=-1", "item=99999999999999999999"])
def test_sellable_api_rejects_bad_filters(token_client, shop, query):
    resp = token_client.get(url(shop.event, suffix=f"sellable/?{query}"))
    assert resp.status_code == 400
    assert set(resp.data) <= {"item", "subevent"}


def test_sellable_api_pages(token_client, series):
    use_generator(series)
    with scopes_disabled():
        ticket = series.items.create(name="Day", default_price=0, admission=True)
        for day in range(60):
            series.subevents.create(name=f"Day {day}", active=True, date_from=now() + timedelta(days=day + 1))
    resp = token_client.get(url(series, suffix="sellable/?page=2"))
    assert resp.data["count"] == 60
    assert len(resp.data["results"]) == 10 and resp.data["previous"]
    assert all(r["item"] == ticket.pk and r["left"] == 0 for r in resp.data["results"])


# --- shop not ready, dashboard --------------------------------------------------------------------------------------


def test_shop_not_ready_names_the_sold_out_products(shop):
    add_secret(shop.event, "T", item=shop.ticket)
    issues = [str(r) for _, r in event_live_issues.send(shop.event) if r]
    assert len(issues) == 1
    assert "no unused secret is left for: Workshop – Morning, Workshop – Afternoon." in issues[0] \
        or "no unused secret is left for: Workshop – Afternoon, Workshop – Morning." in issues[0]
    with scopes_disabled():
        assert set(sold_out(shop.event)) == {Group(shop.workshop.pk, shop.morning.pk),
                                             Group(shop.workshop.pk, shop.afternoon.pk)}
    add_secret(shop.event, "W", item=shop.workshop)
    assert [r for _, r in event_live_issues.send(shop.event) if r] == []


def test_dashboard_names_the_sold_out_products(shop, backend_client):
    add_secret(shop.event, "T", item=shop.ticket)
    page = dashboard(backend_client, shop.event)
    assert "No imported ticket secret is left for these products on sale" in page
    assert "Workshop – Morning: none left, sold out" in page
    assert "Ticket:" not in page


def test_pool_page_shows_what_can_still_be_sold(shop, backend_client):
    add_secret(shop.event, "MORNING", item=shop.workshop, variation=shop.morning)
    add_secret(shop.event, "ANY")
    page = backend_client.get(f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/secrets_import/")
    html = page.content.decode()
    assert "Tickets that can still get a secret" in html
    table = html[html.index('id="pool-sellable"'):]
    assert table.index("Ticket") < table.index("Workshop – Afternoon") < table.index("Workshop – Morning")
