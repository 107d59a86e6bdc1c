"""Product, variation and date cells of a file resolved to the event's objects by ID or by name, in any language."""
from django.utils.translation import gettext as _

from pretix.base.i18n import LazyI18nString
from pretix.base.models import ItemVariation


def _names(value):
    """Every translation of a (possibly multilingual) name, normalised for matching."""
    if isinstance(value, LazyI18nString):
        data = value.data
        texts = data.values() if isinstance(data, dict) else [data]
    else:
        texts = [value]
    return {str(t).strip().casefold() for t in texts if t}


class Resolver:
    """Turns a cell naming a product, variation or date (by ID or name) into its ID."""

    def __init__(self, event):
        self.event = event
        self.items, self.item_names = {}, {}
        for item in event.items.all():
            self.items[str(item.pk)] = item.pk
            for name in _names(item.name) | _names(item.internal_name or ""):
                self.item_names.setdefault(name, set()).add(item.pk)
        self.variations, self.variation_names = {}, {}
        for variation in ItemVariation.objects.filter(item__event=event):
            self.variations[str(variation.pk)] = (variation.pk, variation.item_id)
            for name in _names(variation.value):
                self.variation_names.setdefault(name, set()).add((variation.pk, variation.item_id))
        self.subevents, self.subevent_names = {}, {}
        if event.has_subevents:
            tz = event.timezone
            for subevent in event.subevents.all():
                self.subevents[str(subevent.pk)] = subevent.pk
                start = subevent.date_from.astimezone(tz)
                keys = {start.date().isoformat(), start.strftime("%Y-%m-%d %H:%M")} | _names(subevent.name)
                for key in keys:
                    self.subevent_names.setdefault(key, set()).add(subevent.pk)

    @staticmethod
    def _one(matches, value, unknown, ambiguous):
        # Whole sentences per kind: languages with grammatical gender cannot fill in a translated noun.
        if not matches:
            raise ValueError(unknown.format(value=value))
        if len(matches) > 1:
            raise ValueError(ambiguous.format(value=value))
        return next(iter(matches))

    def resolve(self, name, value, item_id=None):
        """
        The ID of the product, variation or date (``name``: "item", "variation", "subevent") that ``value`` names; a
        variation only among those of the product ``item_id``, if given. Raises ``ValueError`` with the message.
        """
        if name == "variation":
            return self.variation(value, item_id)
        return getattr(self, name)(value)

    def item(self, value):
        value = value.strip()
        if value in self.items:
            return self.items[value]
        return self._one(self.item_names.get(value.casefold(), ()), value, _('Unknown product "{value}".'),
                         _('"{value}" matches more than one product; please use the ID.'))

    def variation(self, value, item_id=None):
        value = value.strip()
        if value in self.variations:
            return self.variations[value][0]
        matches = self.variation_names.get(value.casefold(), set())
        if item_id is not None:
            matches = {m for m in matches if m[1] == item_id}
        return self._one({pk for pk, _item in matches}, value, _('Unknown variation "{value}".'),
                         _('"{value}" matches more than one variation; please use the ID.'))

    def subevent(self, value):
        value = value.strip()
        if value in self.subevents:
            return self.subevents[value]
        return self._one(self.subevent_names.get(value.casefold(), ()), value, _('Unknown date "{value}".'),
                         _('"{value}" matches more than one date; please use the ID.'))
