"""The plugin's name as pretix knows it, at the ground of the package: every layer asks whether it is enabled."""

NAME = "pretix_secrets_import"


def enabled_for(event) -> bool:
    """Whether the plugin is enabled for ``event``: pretix checks that for its own pages only, not for ours."""
    return NAME in event.get_plugins()
