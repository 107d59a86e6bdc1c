"""The imported_secrets generator, driven through pretix' own order code paths."""
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.utils.timezone import now
from django_scopes import scope, scopes_disabled

from pretix.base.models import CartPosition, Order, OrderPosition
from pretix.base.services.cart import CartError
from pretix.base.services.orders import (
    OrderChangeManager, OrderError, cancel_order, perform_order,
)

from pretix_secrets_import.models import ImportedSecret
from pretix_secrets_import.sales.generator import allocate_secret, check_cart
from tests.helpers import add_secret

pytestmark = pytest.mark.django_db


def use_generator(event):
    event.live = True
    event.save()
    event.settings.ticket_secret_generator = "imported_secrets"


@pytest.fixture
def shop(event):
    use_generator(event)
    ticket = event.items.create(name="Ticket", default_price=0, admission=True)
    workshop = event.items.create(name="Workshop", default_price=0, admission=True)
    morning = workshop.variations.create(value="Morning")
    afternoon = workshop.variations.create(value="Afternoon")
    shirt = event.items.create(name="Shirt", default_price=0, admission=False)
    quota = event.quotas.create(name="All", size=None)
    quota.items.add(ticket, workshop, shirt)
    quota.variations.add(morning, afternoon)
    return SimpleNamespace(event=event, ticket=ticket, workshop=workshop, morning=morning, afternoon=afternoon,
                           shirt=shirt)


@pytest.fixture
def series_shop(series, subevent, subevent2):
    use_generator(series)
    ticket = series.items.create(name="Day pass", default_price=0, admission=True)
    for se in (subevent, subevent2):
        series.quotas.create(name=str(se.name), size=None, subevent=se).items.add(ticket)
    return SimpleNamespace(event=series, ticket=ticket, day1=subevent, day2=subevent2)


def orders_url(event, suffix=""):
    return f"/api/v1/organizers/{event.organizer.slug}/events/{event.slug}/orders/{suffix}"


def api_order(client, event, *positions, **extra):
    return client.post(orders_url(event), {
        "email": "buyer@example.org", "locale": "en", "sales_channel": "web", "payment_provider": "free",
        "positions": [{"price": "0.00", **p} for p in positions], **extra,
    }, format="json")


def pool_state(event):
    with scopes_disabled():
        return {s.secret: s.used for s in ImportedSecret.objects.filter(event=event)}


def ticket_secrets(event):
    with scopes_disabled():
        return sorted(OrderPosition.all.filter(order__event=event).values_list("secret", flat=True))


def position(order_code, event):
    with scopes_disabled():
        return OrderPosition.objects.get(order__code=order_code, order__event=event)


# --- allocation -----------------------------------------------------------------------------------------------------


def test_api_order_gets_pool_secret(token_client, shop):
    add_secret(shop.event, "POOL-1")
    add_secret(shop.event, "POOL-2")
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk})
    assert resp.status_code == 201, resp.content
    assert resp.data["positions"][0]["secret"] == "POOL-1"
    assert pool_state(shop.event) == {"POOL-1": True, "POOL-2": False}
    with scopes_disabled():
        assert ImportedSecret.objects.get(secret="POOL-1").used_at is not None


def test_most_specific_secret_wins(token_client, shop):
    add_secret(shop.event, "FREE")
    add_secret(shop.event, "OTHER-VARIATION", item=shop.workshop, variation=shop.afternoon)
    add_secret(shop.event, "ITEM", item=shop.workshop)
    add_secret(shop.event, "VARIATION", item=shop.workshop, variation=shop.morning)
    add_secret(shop.event, "OTHER-ITEM", item=shop.ticket)
    got = []
    for _ in range(3):
        resp = api_order(token_client, shop.event, {"item": shop.workshop.pk, "variation": shop.morning.pk})
        got.append(resp.data["positions"][0]["secret"])
    assert got == ["VARIATION", "ITEM", "FREE"]
    resp = api_order(token_client, shop.event, {"item": shop.workshop.pk, "variation": shop.morning.pk})
    assert resp.status_code == 400
    assert pool_state(shop.event)["OTHER-VARIATION"] is False
    assert pool_state(shop.event)["OTHER-ITEM"] is False


def test_ties_go_in_import_order(token_client, shop):
    for i in (3, 1, 2):
        add_secret(shop.event, f"S{i}")
    got = [api_order(token_client, shop.event, {"item": shop.ticket.pk}).data["positions"][0]["secret"]
           for _ in range(3)]
    assert got == ["S3", "S1", "S2"]


def test_date_bound_before_undated(token_client, series_shop):
    add_secret(series_shop.event, "UNDATED")
    add_secret(series_shop.event, "DAY2", subevent=series_shop.day2)
    add_secret(series_shop.event, "DAY1", subevent=series_shop.day1)
    add_secret(series_shop.event, "DAY1-ITEM", subevent=series_shop.day1, item=series_shop.ticket)
    day1_ticket = {"item": series_shop.ticket.pk, "subevent": series_shop.day1.pk}
    got = [api_order(token_client, series_shop.event, day1_ticket).data["positions"][0]["secret"] for _ in range(3)]
    assert got == ["DAY1-ITEM", "DAY1", "UNDATED"]
    assert pool_state(series_shop.event)["DAY2"] is False


def test_several_positions_in_one_order(token_client, shop):
    for i in range(3):
        add_secret(shop.event, f"S{i}")
    resp = api_order(token_client, shop.event, *[{"item": shop.ticket.pk}] * 3)
    assert sorted(p["secret"] for p in resp.data["positions"]) == ["S0", "S1", "S2"]


def test_non_admission_product_gets_random_secret(token_client, shop):
    add_secret(shop.event, "POOL")
    resp = api_order(token_client, shop.event, {"item": shop.shirt.pk})
    assert resp.status_code == 201
    assert resp.data["positions"][0]["secret"] != "POOL"
    assert pool_state(shop.event) == {"POOL": False}


def test_chosen_products_draw_from_pool(token_client, shop):
    shop.event.settings.secrets_import_products = [shop.shirt.pk]
    add_secret(shop.event, "POOL")
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk}, {"item": shop.shirt.pk})
    secrets = {p["item"]: p["secret"] for p in resp.data["positions"]}
    assert secrets[shop.shirt.pk] == "POOL"
    assert secrets[shop.ticket.pk] != "POOL"


def test_explicit_secret_bypasses_pool(token_client, shop):
    add_secret(shop.event, "POOL")
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk, "secret": "given-by-client"})
    assert resp.data["positions"][0]["secret"] == "given-by-client"
    assert pool_state(shop.event) == {"POOL": False}


def test_pool_secret_already_on_a_ticket_is_skipped_and_burnt(token_client, shop):
    add_secret(shop.event, "TAKEN")
    add_secret(shop.event, "FREE")
    api_order(token_client, shop.event, {"item": shop.ticket.pk, "secret": "TAKEN"})
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk})
    assert resp.data["positions"][0]["secret"] == "FREE"
    assert pool_state(shop.event) == {"TAKEN": True, "FREE": True}
    assert ticket_secrets(shop.event) == ["FREE", "TAKEN"]


def test_rolled_back_order_gives_its_secret_back(shop):
    add_secret(shop.event, "POOL")
    with scope(organizer=shop.event.organizer):
        with pytest.raises(RuntimeError), transaction.atomic():
            assert allocate_secret(shop.event, shop.ticket) == "POOL"
            raise RuntimeError()
    assert pool_state(shop.event) == {"POOL": False}


# --- empty pool -----------------------------------------------------------------------------------------------------


def test_empty_pool_refuses_api_order(token_client, shop, caplog):
    add_secret(shop.event, "ONLY-ONE")
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk}, {"item": shop.ticket.pk})
    assert resp.status_code == 400
    assert "no ticket code left" in resp.data["detail"]
    assert pool_state(shop.event) == {"ONLY-ONE": False}
    with scopes_disabled():
        assert not Order.objects.filter(event=shop.event).exists()
    # the operator sees the refusal in the server log, without the secret the first ticket had taken
    refusals = [r for r in caplog.records if r.name == "pretix_secrets_import.sales.generator"]
    assert [r.levelname for r in refusals] == ["WARNING"]
    assert f"product {shop.ticket.pk}" in refusals[0].getMessage()
    assert "the sale was refused" in refusals[0].getMessage() and "ONLY-ONE" not in caplog.text


def test_empty_pool_can_fall_back_to_random(token_client, shop, caplog):
    shop.event.settings.secrets_import_when_empty = "random"
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk})
    assert resp.status_code == 201
    assert len(resp.data["positions"][0]["secret"]) == 32
    assert "a random secret was issued instead" in caplog.text


# --- shop checkout --------------------------------------------------------------------------------------------------


def checkout(event, item):
    with scopes_disabled():
        cp = CartPosition.objects.create(
            event=event, item=item, price=0, cart_id="cart-1", expires=now() + timedelta(minutes=10),
        )
    result = perform_order.apply(kwargs=dict(
        event=event.pk, payments=[{"id": "p0", "provider": "free", "max_value": None, "min_value": None,
                                   "multi_use_supported": False, "info_data": {}}],
        positions=[cp.id], email="buyer@example.org", locale="en", sales_channel="web",
    ))
    return cp, result


def test_shop_checkout_gets_pool_secret(shop):
    add_secret(shop.event, "SHOP-1")
    cp, result = checkout(shop.event, shop.ticket)
    assert result.successful(), result.result
    assert ticket_secrets(shop.event) == ["SHOP-1"]
    assert pool_state(shop.event) == {"SHOP-1": True}


def test_shop_checkout_with_empty_pool_keeps_cart(shop):
    cp, result = checkout(shop.event, shop.ticket)
    assert isinstance(result.result, OrderError)
    assert type(result.result).__name__ == "OrderError"  # what the checkout's known_errortypes match
    assert "no ticket code left" in str(result.result)
    with scopes_disabled():
        assert CartPosition.objects.filter(pk=cp.pk).exists()
        assert not Order.objects.filter(event=shop.event).exists()


# --- changes to existing orders -------------------------------------------------------------------------------------


@pytest.fixture
def workshop_order(token_client, shop):
    add_secret(shop.event, "ITEM-BOUND", item=shop.workshop)
    resp = api_order(token_client, shop.event, {"item": shop.workshop.pk, "variation": shop.morning.pk})
    assert resp.data["positions"][0]["secret"] == "ITEM-BOUND"
    return resp.data["code"]


def change(shop, code, **ops):
    with scope(organizer=shop.event.organizer):
        order = Order.objects.get(code=code, event=shop.event)
        ocm = OrderChangeManager(order)
        pos = order.positions.first()
        for name, args in ops.items():
            getattr(ocm, name)(pos, *args)
        ocm.commit()
    return position(code, shop.event)


def test_cancel_keeps_secret_and_burns_nothing(shop, workshop_order):
    add_secret(shop.event, "SPARE")
    with scopes_disabled():
        cancel_order(Order.objects.get(code=workshop_order).pk)
        assert OrderPosition.all.get(order__code=workshop_order).secret == "ITEM-BOUND"
    assert pool_state(shop.event) == {"ITEM-BOUND": True, "SPARE": False}


def test_change_variation_keeps_fitting_secret(shop, workshop_order):
    add_secret(shop.event, "SPARE")
    pos = change(shop, workshop_order, change_item=(shop.workshop, shop.afternoon))
    assert pos.secret == "ITEM-BOUND"
    assert pool_state(shop.event)["SPARE"] is False


def test_change_product_draws_new_secret(shop, workshop_order):
    add_secret(shop.event, "FOR-TICKET", item=shop.ticket)
    pos = change(shop, workshop_order, change_item=(shop.ticket, None))
    assert pos.secret == "FOR-TICKET"
    assert pool_state(shop.event) == {"ITEM-BOUND": True, "FOR-TICKET": True}


def test_change_product_with_empty_pool_is_refused(shop, workshop_order):
    with pytest.raises(OrderError):
        change(shop, workshop_order, change_item=(shop.ticket, None))
    assert position(workshop_order, shop.event).item == shop.workshop


def test_change_date_draws_new_secret_when_bound(token_client, series_shop):
    add_secret(series_shop.event, "DAY1", subevent=series_shop.day1)
    add_secret(series_shop.event, "DAY2", subevent=series_shop.day2)
    add_secret(series_shop.event, "ANY")
    day1_ticket = {"item": series_shop.ticket.pk, "subevent": series_shop.day1.pk}
    code = api_order(token_client, series_shop.event, day1_ticket).data["code"]
    with scope(organizer=series_shop.event.organizer):
        order = Order.objects.get(code=code)
        ocm = OrderChangeManager(order)
        ocm.change_subevent(order.positions.first(), series_shop.day2)
        ocm.commit()
    assert position(code, series_shop.event).secret == "DAY2"
    assert pool_state(series_shop.event) == {"DAY1": True, "DAY2": True, "ANY": False}


def test_add_position_draws_secret(shop, workshop_order):
    add_secret(shop.event, "ADDED")
    with scope(organizer=shop.event.organizer):
        order = Order.objects.get(code=workshop_order)
        ocm = OrderChangeManager(order)
        ocm.add_position(shop.ticket, None, 0)
        ocm.commit()
    assert ticket_secrets(shop.event) == ["ADDED", "ITEM-BOUND"]


def test_add_position_through_api(token_client, shop, workshop_order):
    add_secret(shop.event, "ADDED")
    resp = token_client.post(orders_url(shop.event, f"{workshop_order}/change/"), {
        "create_positions": [{"item": shop.ticket.pk, "price": "0.00"}],
    }, format="json")
    assert resp.status_code == 200, resp.content
    assert ticket_secrets(shop.event) == ["ADDED", "ITEM-BOUND"]
    resp = token_client.post(orders_url(shop.event, f"{workshop_order}/change/"), {
        "create_positions": [{"item": shop.ticket.pk, "price": "0.00"}],
    }, format="json")
    assert resp.status_code == 400
    assert len(ticket_secrets(shop.event)) == 2


def test_regenerate_order_through_api(token_client, shop, workshop_order):
    add_secret(shop.event, "NEW")
    resp = token_client.post(orders_url(shop.event, f"{workshop_order}/regenerate_secrets/"))
    assert resp.status_code == 200, resp.content
    assert ticket_secrets(shop.event) == ["NEW"]
    assert pool_state(shop.event) == {"ITEM-BOUND": True, "NEW": True}
    resp = token_client.post(orders_url(shop.event, f"{workshop_order}/regenerate_secrets/"))
    assert resp.status_code == 400
    assert ticket_secrets(shop.event) == ["NEW"]


def test_regenerate_position_through_api(token_client, shop, workshop_order):
    add_secret(shop.event, "NEW")
    pos = position(workshop_order, shop.event)
    url = f"/api/v1/organizers/{shop.event.organizer.slug}/events/{shop.event.slug}/orderpositions/{pos.pk}/"
    resp = token_client.post(url + "regenerate_secrets/")
    assert resp.status_code == 200, resp.content
    assert resp.data["secret"] == "NEW"
    resp = token_client.post(url + "regenerate_secrets/")
    assert resp.status_code == 400
    assert position(workshop_order, shop.event).secret == "NEW"


def test_regenerate_in_backend_change_form(shop, workshop_order):
    add_secret(shop.event, "NEW")
    with scope(organizer=shop.event.organizer):
        order = Order.objects.get(code=workshop_order)
        ocm = OrderChangeManager(order)
        ocm.regenerate_secret(order.positions.first())
        ocm.commit()
    assert ticket_secrets(shop.event) == ["NEW"]


def test_split_draws_new_secret(shop, token_client):
    add_secret(shop.event, "A")
    add_secret(shop.event, "B")
    add_secret(shop.event, "SPLIT")
    code = api_order(token_client, shop.event, {"item": shop.ticket.pk}, {"item": shop.ticket.pk}).data["code"]
    with scope(organizer=shop.event.organizer):
        order = Order.objects.get(code=code)
        ocm = OrderChangeManager(order)
        ocm.split(order.positions.last())
        ocm.commit()
    assert ticket_secrets(shop.event) == ["A", "SPLIT"]
    assert all(pool_state(shop.event).values())


def test_deleting_an_order_does_not_free_its_secret(token_client, shop):
    add_secret(shop.event, "ONCE")
    resp = api_order(token_client, shop.event, {"item": shop.ticket.pk}, testmode=True)
    assert resp.data["testmode"] is True
    assert token_client.delete(orders_url(shop.event, f"{resp.data['code']}/")).status_code == 204
    assert pool_state(shop.event) == {"ONCE": True}
    assert api_order(token_client, shop.event, {"item": shop.ticket.pk}).status_code == 400


# --- the cart check -------------------------------------------------------------------------------------------------


def test_checkout_refuses_a_cart_without_secrets_when_the_quota_is_shared(shop, client):
    """
    The shop shows the ticket as sold out, but the quota "All" also holds the shirt and is not capped, so adding to
    the cart takes it: the check runs when the customer starts checkout.
    """
    add_secret(shop.event, "W", item=shop.workshop)
    shop_url = f"/{shop.event.organizer.slug}/{shop.event.slug}"
    assert f'name="item_{shop.ticket.pk}"' not in client.get(f"{shop_url}/").content.decode()
    client.post(f"{shop_url}/cart/add", {f"item_{shop.ticket.pk}": "1"})
    resp = client.get(f"{shop_url}/checkout/start", follow=True)
    page = resp.content.decode()
    assert 'There is no ticket code left for &quot;Ticket&quot;' in page
    assert "/checkout/" not in resp.redirect_chain[-1][0]  # back to the shop, the cart kept
    with scopes_disabled():
        assert CartPosition.objects.filter(event=shop.event).count() == 1
        CartPosition.objects.filter(event=shop.event).delete()
    # the shirt and the workshop (which has its secret) check out
    client.post(f"{shop_url}/cart/add", {f"item_{shop.shirt.pk}": "1", f"variation_{shop.workshop.pk}_"
                                         f"{shop.morning.pk}": "1"})
    resp = client.get(f"{shop_url}/checkout/start", follow=True)
    assert "/checkout/" in resp.redirect_chain[-1][0]
    assert "no ticket code left" not in resp.content.decode()


def test_cart_check_counts_shared_secrets_once(shop):
    add_secret(shop.event, "ANY")
    with scopes_disabled():
        positions = [CartPosition(event=shop.event, item=shop.ticket, price=0, expires=now(), cart_id="c")
                     for _ in range(2)]
        check_cart(shop.event, positions[:1])
        with pytest.raises(CartError, match='no ticket code left for "Ticket"'):
            check_cart(shop.event, positions)
        shop.event.settings.secrets_import_when_empty = "random"
        check_cart(shop.event, positions)


# --- check-in -------------------------------------------------------------------------------------------------------


def test_pool_secret_is_accepted_by_pretix_checkin(token_client, shop):
    add_secret(shop.event, "GATE-0001")
    with scopes_disabled():
        checkin_list = shop.event.checkin_lists.create(name="Entrance", all_products=True)
    order = api_order(token_client, shop.event, {"item": shop.ticket.pk})
    assert order.data["status"] == "p"
    redeem = f"/api/v1/organizers/{shop.event.organizer.slug}/checkinrpc/redeem/"
    resp = token_client.post(redeem, {"secret": "GATE-0001", "lists": [checkin_list.pk]}, format="json")
    assert resp.status_code == 201, resp.content
    assert resp.data["status"] == "ok"
    assert resp.data["position"]["order"] == order.data["code"]
    resp = token_client.post(redeem, {"secret": "GATE-0001", "lists": [checkin_list.pk]}, format="json")
    assert resp.data["status"] == "error" and resp.data["reason"] == "already_redeemed"


def test_changed_ticket_keeps_a_secret_from_outside_the_pool(token_client, shop):
    """Documented: a non-pool secret (random or given explicitly) survives a product change; regenerating draws."""
    add_secret(shop.event, "POOL")
    code = api_order(token_client, shop.event, {"item": shop.shirt.pk}).data["code"]
    random_secret = position(code, shop.event).secret
    with scope(organizer=shop.event.organizer):
        order = Order.objects.get(code=code)
        ocm = OrderChangeManager(order)
        ocm.change_item(order.positions.get(), shop.ticket, None)
        ocm.commit()
    assert position(code, shop.event).secret == random_secret
    assert pool_state(shop.event) == {"POOL": False}
    assert token_client.post(orders_url(shop.event, f"{code}/regenerate_secrets/")).status_code == 200
    assert position(code, shop.event).secret == "POOL"
