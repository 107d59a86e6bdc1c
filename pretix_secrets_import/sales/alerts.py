"""
Running-low alerts: one notification when a sale leaves a product (variation, date) that draws from the pool with
fewer fitting unused secrets than the event's threshold (``sellable``), and the list of such products on the event
dashboard.
"""
from django.db import IntegrityError, transaction
from django.template.loader import get_template
from django.utils.translation import (
    gettext, gettext_lazy as _, ngettext, pgettext_lazy,
)
from django_scopes import scopes_disabled

from pretix.base.models import Event, Item, ItemVariation, SubEvent
from pretix.base.notifications import Notification, NotificationType
from pretix.helpers.urls import mainreverse_absolute

from pretix_secrets_import import after_commit
from pretix_secrets_import.links import event_url
from pretix_secrets_import.models import PoolAlert
from pretix_secrets_import.pool.store import Group, summary
from pretix_secrets_import.sales.sellable import (
    fits, left_for, sellable, sold_out, targets, unused_by_group,
)

ACTION_TYPE = "pretix_secrets_import.pool.running_low"
# A limit that keeps the number an organizer types sensible; the check reads the pool's counters at any threshold.
THRESHOLD_MAX = 10000
# The dashboard lists this many of the products with the fewest secrets left.
DASHBOARD_LINES = 10


def _check_after_commit(groups_by_event):
    with scopes_disabled():
        for event_id, event in Event.objects.select_related("organizer").in_bulk(groups_by_event).items():
            check_groups(event, groups_by_event[event_id])


def schedule_check(event, group: Group):
    """
    Note that ``group`` of ``event``'s pool just lost an unused secret, inside the transaction that took it.

    The check runs once the transaction has committed, because
    - a rolled back sale must not alert;
    - an open transaction does not see the secrets that concurrent sales took, so two sales that together leave a
      product below the threshold could each count enough left; after the commit, the later one sees both;
    - writing the alert must not make the sale wait for another sale's transaction.
    """
    if not event.settings.secrets_import_low_threshold:
        return
    after_commit.collect("alert_checks", _check_after_commit, event.pk, group)


def _one(values):
    return next(iter(values)) if len(values) == 1 else None


def check_groups(event, groups):
    """
    Alert for each product (variation, date) that secrets of ``groups`` fit, has fewer fitting unused secrets than the
    threshold left and was not alerted yet.
    """
    threshold = event.settings.secrets_import_low_threshold
    if not threshold:
        return
    unused = unused_by_group(event)
    alerted = {Group.of(alert) for alert in PoolAlert.objects.filter(event=event)}
    # A secret restricted to a product or date only affects that product or date: read only those.
    candidates = targets(event, item=_one({g.item for g in groups}), subevent=_one({g.subevent for g in groups}))
    low = [(target, left_for(target, unused)) for target in candidates
           if target not in alerted and any(fits(group, target) for group in groups)]
    low = [(target, left) for target, left in low if left < threshold]
    for (target, left), names in zip(low, group_names(event, [target for target, _left in low])):
        try:
            with transaction.atomic():
                PoolAlert.objects.create(event=event, **target.as_filter())
                event.log_action(ACTION_TYPE, data={
                    **target._asdict(), **names, "remaining": left, "threshold": threshold,
                })
        except IntegrityError:
            pass  # a concurrent sale stored the alert first (PostgreSQL makes us wait until it committed)


@scopes_disabled()
def pool_grew(event, groups=None):
    """
    Unused secrets were added to ``groups`` of ``event``'s pool (``None``: to any groups), or moved there: re-arm the
    alerts of the products (variations, dates) they fit that have reached the threshold again. Every write that adds
    secrets calls this in its transaction (tests/sales/test_alerts.py checks every such write path).
    """
    alerts = [alert for alert in PoolAlert.objects.filter(event=event)
              if groups is None or any(fits(group, Group.of(alert)) for group in groups)]
    if not alerts:
        return
    threshold = event.settings.secrets_import_low_threshold
    unused = unused_by_group(event)
    for alert in alerts:
        if not threshold or left_for(Group.of(alert), unused) >= threshold:
            alert.delete()


@scopes_disabled()
def rearm_all(event_id):
    PoolAlert.objects.filter(event_id=event_id).delete()


def group_names(event, groups):
    """For each ``Group``, the names of its restrictions."""
    def names(model, field, **filters):
        pks = {getattr(g, field) for g in groups} - {None}
        return {o.pk: str(o) for o in model.objects.filter(pk__in=pks, **filters)} if pks else {}

    items = names(Item, "item", event=event)
    variations = names(ItemVariation, "variation", item__event=event)
    subevents = names(SubEvent, "subevent", event=event)
    return [{
        "item_name": items.get(g.item),
        "variation_name": variations.get(g.variation),
        "subevent_name": subevents.get(g.subevent),
    } for g in groups]


def group_label(item_name=None, variation_name=None, subevent_name=None) -> str:
    """
    A restriction group in one line: product – variation (date). The date as pretix names it ("Day 2 - Sat, Feb. 6")
    in brackets, so that its own dash does not read as one more part.
    """
    label = " – ".join(str(p) for p in (item_name or gettext("any product"), variation_name) if p)
    return f"{label} ({subevent_name})" if subevent_name else label


def labels(event, groups) -> list:
    """A one-line name (product – variation – date) per ``Group``."""
    return [group_label(**names) for names in group_names(event, groups)]


@scopes_disabled()
def sold_out_labels(event, shown=3) -> str:
    """The products (variations, dates) without a fitting unused secret, the first ``shown`` by name."""
    gone = sold_out(event)
    if not gone:
        return ""
    text = ", ".join(labels(event, gone[:shown]))
    if len(gone) > shown:
        text += " " + ngettext("and {n} more", "and {n} more", len(gone) - shown).format(n=len(gone) - shown)
    return text


@scopes_disabled()
def pool_warnings(event):
    """
    For the dashboard: the products (variations, dates) on sale with fewer fitting secrets than the threshold (none left
    without a threshold), fewest first, at most ``DASHBOARD_LINES`` of them with names, their number, and whether
    the pool has no unused secret at all.
    """
    threshold = event.settings.secrets_import_low_threshold
    groups = summary(event)
    low = [s for s in sellable(event, on_sale=True, groups=groups) if s.left < max(threshold, 1)]
    shown = low[:DASHBOARD_LINES]
    rows = [{**s.as_dict(), "label": label} for s, label in zip(shown, labels(event, [s.target for s in shown]))]
    return rows, len(low), not any(counted.unused for counted in groups)


def dashboard_widgets(event):
    """A warning on the event dashboard while a product runs low or has nothing left, or the pool is empty."""
    rows, low, empty = pool_warnings(event)
    if not low and not empty:
        return []
    return [{
        "display_size": "big",
        "priority": 900,  # a warning: right after the shop state
        "content": get_template("pretix_secrets_import/dashboard_widget.html").render({
            "rows": rows, "more": low - len(rows), "empty": empty,
            "threshold": event.settings.secrets_import_low_threshold,
        }),
        "url": event_url(event, "pool"),
    }]


class PoolRunningLowNotificationType(NotificationType):
    action_type = ACTION_TYPE
    verbose_name = _("Imported ticket secrets are running low")
    required_permission = "event.orders:read"

    def build_notification(self, logentry):
        event = logentry.event
        data = logentry.parsed_data
        group = Group(data["item"], data["variation"], data["subevent"])
        # Names in the recipient's language while the objects exist, else as they were logged.
        names = {key: value or data.get(key) for key, value in group_names(event, [group])[0].items()}
        url = mainreverse_absolute("plugins:pretix_secrets_import:pool", kwargs={
            "organizer": event.organizer.slug, "event": event.slug,
        })
        if data["remaining"]:
            title = ngettext(
                "Only {remaining} ticket secret left for {group}", "Only {remaining} ticket secrets left for {group}",
                data["remaining"],
            )
        else:
            title = gettext("No ticket secrets left for {group}")
        n = Notification(
            event=event,
            title=title.format(remaining=data["remaining"], group=group_label(**names)),
            detail=gettext(
                "Fewer than {threshold} unused imported ticket secrets are left for these tickets. Import more "
                "secrets before the pool runs dry."
            ).format(threshold=data["threshold"]),
            url=url,
        )
        n.add_attribute(_("Event"), str(event.name))
        n.add_attribute(_("Product"), names["item_name"] or gettext("any product"))
        if names["variation_name"]:
            n.add_attribute(_("Variation"), names["variation_name"])
        if names["subevent_name"]:
            n.add_attribute(pgettext_lazy("subevent", "Date"), names["subevent_name"])
        n.add_attribute(_("Unused secrets left"), str(data["remaining"]))
        n.add_attribute(_("Warning threshold"), str(data["threshold"]))
        n.add_action(_("Show the pool"), url)
        return n
