"""
A pytest plugin for pretix' own test suite (``make pretix-suite``): every event pretix' tests create has Secrets
Import enabled, as an organizer would have it.
"""
from django.db.models.signals import pre_save

PLUGIN = "pretix_secrets_import"


def enable(sender, instance, **kwargs):
    plugins = [p for p in (instance.plugins or "").split(",") if p]
    if PLUGIN not in plugins:
        instance.plugins = ",".join(plugins + [PLUGIN])


def pytest_configure(config):
    from pretix.base.models import Event
    pre_save.connect(enable, sender=Event, dispatch_uid="pretix_suite_enable_secrets_import")
