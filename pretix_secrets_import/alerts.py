"""
Running-low alerts: one notification when a sale leaves a restriction group of the pool with fewer unused secrets
than the event's threshold, and the list of such groups on the event dashboard.
"""
import threading

from django.db import IntegrityError, transaction
from django.template.loader import get_template
from django.urls import reverse
from django.utils.translation import (
    gettext, gettext_lazy as _, ngettext, pgettext_lazy,
)
from django_scopes import scopes_disabled

from pretix.base.models import Event, Item, ItemVariation, SubEvent
from pretix.base.notifications import Notification, NotificationType
from pretix.helpers.urls import mainreverse_absolute

from .models import PoolAlert
from .pool import Group, summary, unused_in_group

ACTION_TYPE = "pretix_secrets_import.pool.running_low"
# Every sale counts up to this many unused secrets of its group, so the threshold must stay small enough to be cheap.
THRESHOLD_MAX = 10000

_local = threading.local()


def unused_count(event, group: Group, limit: int) -> int:
    """The group's unused secrets, counted only up to ``limit``."""
    return unused_in_group(event, group).values("pk")[:limit].count()


class _PendingChecks:
    """The groups that lost unused secrets in the current transaction; checked once after it commits."""

    def __init__(self):
        self.groups = set()
        self.done = False

    def __call__(self):
        self.done = True
        with scopes_disabled():
            events = Event.objects.select_related("organizer").in_bulk({event_id for event_id, _group in self.groups})
            for event_id, group in self.groups:
                if event_id in events:
                    check_group(events[event_id], group)


def schedule_check(event, group: Group):
    """
    Note that ``group`` of ``event``'s pool just lost an unused secret, inside the transaction that took it.

    The check runs once the transaction has committed, because
    - a rolled back sale must not alert;
    - an open transaction does not see the secrets that concurrent sales took, so two sales that together leave the
      group below the threshold could each count enough left; after the commit, the later one sees both;
    - writing the alert must not make the sale wait for another sale's transaction.
    """
    if not event.settings.secrets_import_low_threshold:
        return
    pending = getattr(_local, "pending", None)
    registered = [func for _sids, func, *_rest in transaction.get_connection().run_on_commit]
    # Like pretix' own order checks: a rolled back transaction dropped its callback, so start afresh.
    if pending is None or pending.done or pending not in registered:
        pending = _local.pending = _PendingChecks()
        transaction.on_commit(pending, robust=True)  # a failing alert must not fail the committed sale
    pending.groups.add((event.pk, group))


def check_group(event, group: Group):
    """Send the alert for ``group`` if it has fewer unused secrets than the threshold and was not alerted yet."""
    threshold = event.settings.secrets_import_low_threshold
    if not threshold:
        return
    remaining = unused_count(event, group, threshold)
    if remaining >= threshold or PoolAlert.objects.filter(event=event, **group.as_filter()).exists():
        return
    names = group_names(event, [group])[0]
    try:
        with transaction.atomic():
            PoolAlert.objects.create(event=event, **group.as_filter())
            event.log_action(ACTION_TYPE, data={
                **group._asdict(), **names, "remaining": remaining, "threshold": threshold,
            })
    except IntegrityError:
        pass  # a concurrent sale stored the alert first (PostgreSQL makes us wait until it committed)


@scopes_disabled()
def pool_grew(event, groups=None):
    """
    Unused secrets were added to ``groups`` of ``event``'s pool (``None``: to any groups), or moved there: re-arm the
    alerts of those groups that have reached the threshold again. Every write that adds secrets calls this in its
    transaction (tests/test_alerts.py checks every such write path).
    """
    threshold = event.settings.secrets_import_low_threshold
    for alert in PoolAlert.objects.filter(event=event):
        group = Group.of(alert)
        if groups is not None and group not in groups:
            continue
        if not threshold or unused_count(event, group, threshold) >= threshold:
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
    """A restriction group in one line: product – variation – date."""
    parts = [item_name or gettext("any product"), variation_name, subevent_name]
    return " – ".join(str(p) for p in parts if p)


@scopes_disabled()
def pool_warnings(event):
    """
    The groups of ``event``'s pool below the threshold, with names and counts, and whether no unused secret is left
    at all; for the dashboard.
    """
    groups = summary(event)
    threshold = event.settings.secrets_import_low_threshold
    low = [counted for counted in groups if counted.unused < threshold] if threshold else []
    names = group_names(event, [counted.group for counted in low])
    return ([{**counted.as_dict(), "label": group_label(**n)} for counted, n in zip(low, names)],
            not any(counted.unused for counted in groups))


def dashboard_widgets(event):
    """A warning on the event dashboard while a group is below the threshold or the pool is empty."""
    low, empty = pool_warnings(event)
    if not low and not empty:
        return []
    return [{
        "display_size": "big",
        "priority": 900,  # a warning: right after the shop state
        "content": get_template("pretix_secrets_import/dashboard_widget.html").render({
            "groups": low, "empty": empty, "threshold": event.settings.secrets_import_low_threshold,
        }),
        "url": reverse("plugins:pretix_secrets_import:pool", kwargs={
            "organizer": event.organizer.slug, "event": event.slug,
        }),
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
