from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.urls import resolve
from django.utils.translation import gettext_lazy as _, ngettext
from django_scopes import scopes_disabled
from rest_framework import serializers

from pretix.api.signals import register_webhook_events
from pretix.api.webhooks import ParametrizedWebhookEvent
from pretix.base.logentrytypes import EventLogEntryType, log_entry_types
from pretix.base.models import Event, Event_SettingsStore, LogEntry, Order
from pretix.base.services import tickets
from pretix.base.settings import settings_hierarkey
from pretix.base.signals import (
    api_event_settings_fields, event_copy_data, event_live_issues,
    order_gracefully_delete, order_import_columns, quota_availability,
    register_data_exporters, register_notification_types,
    register_ticket_secret_generators, validate_cart, validate_event_settings,
)
from pretix.control.signals import (
    event_dashboard_widgets, html_page_start, nav_event, nav_event_settings,
)

from pretix_secrets_import import event_settings
from pretix_secrets_import.exporters import (
    AdmittedSecretsExporter, ImportedSecretExporter, RefusedSecretsExporter,
)
from pretix_secrets_import.gate import states as gate
from pretix_secrets_import.links import event_url
from pretix_secrets_import.models import PoolCount
from pretix_secrets_import.pool import format_change, store as pool
from pretix_secrets_import.sales import alerts, switch_warnings
from pretix_secrets_import.sales.availability import cap_quota_availability
from pretix_secrets_import.sales.generator import (
    ImportedSecretGenerator, check_cart, generator_switched, uses_pool,
)
from pretix_secrets_import.sales.order_import import PoolCheckColumn
from pretix_secrets_import.tickets import barcodes

for setting in event_settings.SETTINGS:
    settings_hierarkey.add_default(setting.key, setting.default, setting.type)


@receiver(register_ticket_secret_generators, dispatch_uid="secrets_import_generator")
def register_generator(sender, **kwargs):
    return [ImportedSecretGenerator]


@receiver(register_data_exporters, dispatch_uid="secrets_import_exporter")
def register_exporter(sender, **kwargs):
    return ImportedSecretExporter


@receiver(register_data_exporters, dispatch_uid="secrets_import_gate_admitted_exporter")
def register_admitted_exporter(sender, **kwargs):
    return AdmittedSecretsExporter


@receiver(register_data_exporters, dispatch_uid="secrets_import_gate_refused_exporter")
def register_refused_exporter(sender, **kwargs):
    return RefusedSecretsExporter


@receiver(nav_event_settings, dispatch_uid="secrets_import_nav_settings")
def nav_settings(sender, request, **kwargs):
    if not request.user.has_event_permission(request.organizer, request.event, "event.settings.general:write",
                                             request=request):
        return []
    return [{
        "label": _("Secrets Import"),
        "url": event_url(request.event, "settings"),
        "active": resolve(request.path_info).url_name == "settings"
        and resolve(request.path_info).namespace == "plugins:pretix_secrets_import",
    }]


@receiver(nav_event, dispatch_uid="secrets_import_nav")
def nav_pool(sender, request, **kwargs):
    if not request.user.has_event_permission(request.organizer, request.event, "event.orders:read",
                                             request=request):
        return []
    url = resolve(request.path_info)
    return [{
        "label": _("Ticket secrets"),
        "url": event_url(request.event, "pool"),
        "icon": "barcode",
        "active": url.namespace == "plugins:pretix_secrets_import" and url.url_name != "settings",
    }]


@receiver(quota_availability, dispatch_uid="secrets_import_quota_availability")
def limit_quota_to_pool(sender, quota, result, **kwargs):
    return cap_quota_availability(sender, quota, result)


@receiver(event_copy_data, dispatch_uid="secrets_import_copy_data")
def copy_settings(sender, other, item_map, **kwargs):
    # pretix copies the settings (generator included) but not our pool: a copy starts with an empty pool.
    # The chosen products still name the old event's products, so point them at their copies.
    chosen = other.settings.secrets_import_products
    if chosen:
        sender.settings.secrets_import_products = [item_map[pk].pk for pk in chosen if pk in item_map]


@receiver(event_live_issues, dispatch_uid="secrets_import_live_issues")
def sold_out_issue(sender, **kwargs):
    if not uses_pool(sender):
        return None
    gone = alerts.sold_out_labels(sender)
    if not gone:
        if pool.count(sender, used=False):
            return None
        return _("Tickets of this event get their secrets from the imported pool, but the pool has no unused secrets "
                 "left. Import secrets or choose another ticket code generator.")
    return _("Tickets of this event get their secrets from the imported pool, but no unused secret is left for: "
             "{products}. Import secrets for them or choose another ticket code generator.").format(products=gone)


@receiver(validate_cart, dispatch_uid="secrets_import_validate_cart")
def refuse_cart_without_secrets(sender, positions, **kwargs):
    check_cart(sender, positions)


@receiver(register_notification_types, dispatch_uid="secrets_import_notification_types")
def register_notifications(sender, **kwargs):
    return [alerts.PoolRunningLowNotificationType(sender)]


@receiver(event_dashboard_widgets, dispatch_uid="secrets_import_dashboard_widgets")
def dashboard_widgets(sender, **kwargs):
    # pretix only asks for widgets for users who may see the orders (event.orders:read).
    return alerts.dashboard_widgets(sender) if uses_pool(sender) else []


@receiver(post_save, sender=Event_SettingsStore, dispatch_uid="secrets_import_rearm_after_threshold_saved")
@receiver(post_delete, sender=Event_SettingsStore, dispatch_uid="secrets_import_rearm_after_threshold_deleted")
def rearm_after_threshold_change(sender, instance, **kwargs):
    # pretix' settings form and settings API only write a setting that changed.
    if instance.key == "secrets_import_low_threshold":
        alerts.rearm_all(instance.object_id)


@receiver(pre_save, sender=Event_SettingsStore, dispatch_uid="secrets_import_generator_saving")
def remember_previous_generator(sender, instance, **kwargs):
    if instance.key == "ticket_secret_generator" and instance.pk:
        # pretix changes the stored row in place: only the database still knows the old value.
        instance.secrets_import_previous = sender.objects.filter(pk=instance.pk).values_list("value", flat=True).first()


@receiver(post_save, sender=Event_SettingsStore, dispatch_uid="secrets_import_generator_saved")
@receiver(post_delete, sender=Event_SettingsStore, dispatch_uid="secrets_import_generator_deleted")
def log_generator_switch(sender, instance, signal, **kwargs):
    if instance.key == "ticket_secret_generator":
        with scopes_disabled():
            event = Event.objects.filter(pk=instance.object_id).select_related("organizer").first()
        if event is not None:  # None while the event itself is deleted
            event.settings.flush()
            previous = instance.value if signal is post_delete else getattr(instance, "secrets_import_previous", None)
            generator_switched(event, previous)


@receiver(html_page_start, dispatch_uid="secrets_import_switch_warnings")
def switch_warning(sender, **kwargs):
    return switch_warnings.page_warning(sender)


@receiver(post_save, sender=LogEntry, dispatch_uid="secrets_import_order_logged")
def order_logged(sender, instance, created, **kwargs):
    """Every change pretix makes to an order is logged on it: derive its secrets' gate states (gate.py)."""
    if (created and instance.event_id and not instance.action_type.startswith("pretix_secrets_import.")
            and instance.content_type_id == ContentType.objects.get_for_model(Order).pk):
        gate.order_logged(instance.event_id, instance.object_id, instance.action_type)


@receiver(post_save, sender=LogEntry, dispatch_uid="secrets_import_symbology_changed")
def symbology_changed(sender, instance, created, **kwargs):
    """
    A changed symbology or barcode text (settings page or settings API, both log it) makes pretix render the event's
    tickets anew: it keeps PDFs it rendered before, as it does for its own ticket settings.
    """
    if (created and instance.action_type == "pretix.event.settings" and instance.event_id
            and {barcodes.SETTING, barcodes.TEXT_SETTING} & set(instance.parsed_data)):
        event_id = instance.event_id
        transaction.on_commit(lambda: tickets.invalidate_cache.apply_async(kwargs={"event": event_id}))


@receiver(order_gracefully_delete, dispatch_uid="secrets_import_order_deleted")
def order_deleting(sender, order, **kwargs):
    gate.order_deleted(sender, order)


class GateChangedWebhookEvent(ParametrizedWebhookEvent):
    """pretix' payload of an order webhook, and the feed cursor to poll with to get the change."""

    def build_payload(self, logentry):
        return {
            "notification_id": logentry.pk,
            "organizer": logentry.organizer.slug,
            "event": logentry.event.slug,
            "code": logentry.parsed_data.get("code"),
            "action": logentry.action_type,
            "cursor": logentry.parsed_data.get("cursor"),
        }


@receiver(register_webhook_events, dispatch_uid="secrets_import_webhook_events")
def webhook_events(sender, **kwargs):
    return GateChangedWebhookEvent(
        gate.CHANGED_ACTION, _("Imported ticket secrets changed their gate state"),
        _("Sent once per order whenever one of its imported secrets becomes valid, pending or void (or moves to "
          "another ticket); poll the gate feed with the cursor given to read the changes."),
    )


@receiver(post_delete, sender=Event, dispatch_uid="secrets_import_drop_counts")
def drop_counts(sender, instance, **kwargs):
    # PoolCount has no foreign key to the event: deleting the event's secrets adds rows to it until the very end.
    PoolCount.objects.filter(event_id=instance.pk).delete()


@receiver(order_import_columns, dispatch_uid="secrets_import_order_import_columns")
def order_import_check(sender, **kwargs):
    if not uses_pool(sender):
        return []
    return [PoolCheckColumn(sender)]


@receiver(api_event_settings_fields, dispatch_uid="secrets_import_api_settings")
def api_settings_fields(sender, **kwargs):
    return {
        # pretix does not expose the generator choice in its settings API; with the plugin on, we do.
        "ticket_secret_generator": serializers.ChoiceField(
            choices=[(g.identifier, str(g.verbose_name)) for g in sender.ticket_secret_generators.values()],
        ),
        **event_settings.api_fields(),
    }


@receiver(validate_event_settings, dispatch_uid="secrets_import_validate_settings")
def validate_settings(sender, settings_dict, **kwargs):
    products = settings_dict.get("secrets_import_products") or []
    unknown = set(products) - set(sender.items.filter(pk__in=products).values_list("pk", flat=True))
    if unknown:
        raise ValidationError({"secrets_import_products": [
            _("These products do not belong to this event: {ids}").format(ids=", ".join(map(str, sorted(unknown))))
        ]})
    format_change.check_change(sender, settings_dict)


@log_entry_types.new_from_dict({
    "pretix_secrets_import.secret.added": _("An imported ticket secret was added."),
    "pretix_secrets_import.secret.changed": _("An imported ticket secret was changed."),
    "pretix_secrets_import.secret.deleted": _("An imported ticket secret was deleted."),
})
class ImportedSecretLogEntryType(EventLogEntryType):
    pass


@log_entry_types.new_from_dict({
    "pretix_secrets_import.secrets.bulk_added": _("{count} imported ticket secrets were added."),
    "pretix_secrets_import.secrets.imported": _("{count} ticket secrets were imported from a file."),
})
class ImportedSecretsBulkLogEntryType(EventLogEntryType):
    pass


@log_entry_types.new("pretix_secrets_import.secrets.deleted", _("Unused imported ticket secrets were deleted."))
class ImportedSecretsDeletedLogEntryType(EventLogEntryType):
    """One entry per deletion: the count, and the first of the secrets in its data ("codes"), not in its text."""

    def display(self, logentry, data):
        count = data.get("count") or 0
        return ngettext("{count} unused imported ticket secret was deleted.",
                        "{count} unused imported ticket secrets were deleted.", count).format(count=count)


class UnusedLeftLogEntryType(EventLogEntryType):
    """A log entry that ends by saying how many unused secrets (``unused``) stay in the pool."""

    def display(self, logentry, data):
        unused = data.get("unused") or 0
        return " ".join((super().display(logentry, data), ngettext(
            "{unused} unused secret stays in the pool.", "{unused} unused secrets stay in the pool.", unused,
        ).format(unused=unused)))


@log_entry_types.new(
    "pretix_secrets_import.plugin.disabled",
    _("Secrets Import was disabled while tickets got their secrets from the imported pool: new tickets get random "
      "secrets now, which your access control may not accept."),
)
class PluginDisabledLogEntryType(UnusedLeftLogEntryType):
    pass


@log_entry_types.new(
    "pretix_secrets_import.generator.switched_away",
    _("Tickets no longer get their secrets from the imported pool: the ticket code generator is now \"{generator}\". "
      "New tickets get secrets that your access control may not accept."),
)
class GeneratorSwitchedAwayLogEntryType(UnusedLeftLogEntryType):
    def display(self, logentry, data):
        generator = logentry.event.ticket_secret_generators.get(data.get("generator"))
        return super().display(logentry, {**data, "generator": generator.verbose_name if generator else
                                          data.get("generator")})


@log_entry_types.new(
    gate.CHANGED_ACTION,
    _("The gate states of imported ticket secrets of this order changed."),
)
class GateChangedLogEntryType(EventLogEntryType):
    def display(self, logentry, data):
        changes = data.get("changes") or 0
        return ngettext(
            "The gate state of {changes} imported ticket secret of this order changed (gate feed cursor {cursor}).",
            "The gate state of {changes} imported ticket secrets of this order changed (gate feed cursor {cursor}).",
            changes,
        ).format(changes=changes, cursor=data.get("cursor"))


@log_entry_types.new(
    alerts.ACTION_TYPE,
    _("Unused ticket secrets for {group} fell below the warning threshold of {threshold}: {remaining} left."),
)
class PoolRunningLowLogEntryType(EventLogEntryType):
    def display(self, logentry, data):
        return super().display(logentry, {**data, "group": alerts.group_label(
            data.get("item_name"), data.get("variation_name"), data.get("subevent_name"),
        )})
