from django.utils.translation import gettext_lazy as _

from pretix.base.logentrytypes import EventLogEntryType, log_entry_types


@log_entry_types.new_from_dict({
    "pretix_secrets_import.secret.added": _("An imported ticket secret was added."),
    "pretix_secrets_import.secret.changed": _("An imported ticket secret was changed."),
    "pretix_secrets_import.secret.deleted": _("An imported ticket secret was deleted."),
})
class ImportedSecretLogEntryType(EventLogEntryType):
    pass


@log_entry_types.new("pretix_secrets_import.secrets.bulk_added", _("{count} imported ticket secrets were added."))
class ImportedSecretsBulkLogEntryType(EventLogEntryType):
    pass
