"""
The operator's settings of the plugin, from the ``[pretix_secrets_import]`` section of pretix.cfg (or the matching
``PRETIX_PRETIX_SECRETS_IMPORT_*`` environment variables, as pretix reads every option). Read when used, so that
tests can change pretix' configuration.
"""
from django.conf import settings

SECTION = "pretix_secrets_import"


def _int(option, default):
    return settings.CONFIG_FILE.getint(SECTION, option, fallback=default)


def import_queue():
    """The Celery queue of file imports; ``None``: pretix' default queue."""
    return settings.CONFIG_FILE.get(SECTION, "queue", fallback="") or None


def import_time_limit() -> int:
    """Seconds after which a file import is stopped and rolled back."""
    return _int("import_time_limit", 1800)


def lost_after() -> int:
    """Seconds without a sign of life after which a started import counts as lost (its worker died)."""
    return _int("lost_after", 60)


def start_within() -> int:
    """Seconds a queued import may wait for a worker before it is given up."""
    return _int("start_within", 120)


def max_lines_in_request() -> int:
    """The largest file (in lines) imported inside the web request when pretix runs without a task queue."""
    return _int("max_lines_in_request", 100_000)
