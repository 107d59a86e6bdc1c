"""Product, variation and date cells of a file resolved to the event's objects by ID or by name, in any language."""
import re
from datetime import date, time

from django.utils.formats import date_format
from django.utils.translation import gettext as _, ngettext

from pretix.base.i18n import LazyI18nString
from pretix.base.models import ItemVariation

# A date's start as people write it: ISO (2030-12-31) or day first as in German (31.12.2030, 31.12.30), each with or
# without a time (19:00, 19:00:00); ISO also with the T that spreadsheets and programs write between day and time.
ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
DAY_FIRST = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4}|[0-9]{2})")
CLOCK = re.compile(r"(?:T|,?\s+)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
DATES_NAMED = 5  # the dates an ambiguous value is said to match; the others are counted


def _names(value):
    """Every translation of a (possibly multilingual) name, normalised for matching."""
    if isinstance(value, LazyI18nString):
        data = value.data
        texts = data.values() if isinstance(data, dict) else [data]
    else:
        texts = [value]
    return {str(t).strip().casefold() for t in texts if t}


def parse_start(text):
    """
    ``(day, clock)`` of a date's start written as ``2030-12-31``, ``31.12.2030`` or ``31.12.30``, optionally followed
    by a time (``clock``: ``(hour, minute, second or None)``, else ``None``); ``None`` if the text is no such start.
    """
    for pattern, day_first in ((ISO_DAY, False), (DAY_FIRST, True)):
        found = pattern.match(text)
        if found:
            break
    else:
        return None
    first, month, last = (int(part) for part in found.groups())
    year, day = (last, first) if day_first else (first, last)
    if day_first and len(found.group(3)) == 2:
        year += 2000  # dates of events to come, not of the last century
    clock, rest = None, text[found.end():]
    if rest:
        found = CLOCK.fullmatch(rest)
        if found is None:
            return None
        hour, minute, second = found.groups()
        clock = (int(hour), int(minute), None if second is None else int(second))
    try:
        if clock is not None:
            time(clock[0], clock[1], clock[2] or 0)
        return date(year, month, day), clock
    except ValueError:  # no such day or time (31.02., 25:00)
        return None


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
        self.subevents, self.subevent_names, self.subevent_days = {}, {}, {}
        self.starts, self.labels = {}, {}  # per date: its local start; its name and start in messages (when needed)
        if event.has_subevents:
            tz = event.timezone
            for subevent in event.subevents.all():
                self.subevents[str(subevent.pk)] = subevent
                self.starts[subevent.pk] = start = subevent.date_from.astimezone(tz)
                self.subevent_days.setdefault(start.date(), []).append(subevent.pk)
                for key in _names(subevent.name):
                    self.subevent_names.setdefault(key, set()).add(subevent.pk)

    def as_rows(self) -> list:
        """Every product, variation and date a cell can name, as rows for ``rules.Restrictions``."""
        return [{"item": pk} for pk in self.items.values()] + [
            {"variation": pk} for pk, _item in self.variations.values()] + [
            {"subevent": subevent.pk} for subevent in self.subevents.values()]

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
        """The date with this ID, name, or local start (day, or day and time) as ``parse_start`` reads it."""
        value = value.strip()
        if value in self.subevents:
            return self.subevents[value].pk
        matches = set(self.subevent_names.get(value.casefold(), ()))
        start = parse_start(value)
        if start is not None:
            day, clock = start
            matches.update(pk for pk in self.subevent_days.get(day, ()) if clock is None or self._at(pk, *clock))
        if not matches:
            raise ValueError(_('Unknown date "{value}".').format(value=value))
        if len(matches) > 1:
            raise ValueError(self._ambiguous_date(value, sorted(matches, key=lambda pk: (self.starts[pk], pk))))
        return matches.pop()

    def _at(self, pk, hour, minute, second):
        start = self.starts[pk]
        return (start.hour, start.minute) == (hour, minute) and second in (None, start.second)

    def _ambiguous_date(self, value, matches):
        """The message for a value that matches several dates (``matches``, by start): it names them."""
        dates = ", ".join(self._label(pk) for pk in matches[:DATES_NAMED])
        if len(matches) > DATES_NAMED:
            others = len(matches) - DATES_NAMED
            dates = ngettext("{dates} and {count} other", "{dates} and {count} others", others).format(
                dates=dates, count=others)
        if len({self.starts[pk] for pk in matches}) == len(matches):
            message = _('"{value}" matches more than one date: {dates}. Please use the start date and time, or the '
                        'ID.')
        else:
            message = _('"{value}" matches more than one date: {dates}. Please use the ID.')
        return message.format(value=value, dates=dates)

    def _label(self, pk):
        if pk not in self.labels:  # in the language of the import, which does not change during it
            self.labels[pk] = _("{name} ({start}, ID {id})").format(
                name=self.subevents[str(pk)].name, start=date_format(self.starts[pk], "SHORT_DATETIME_FORMAT"), id=pk)
        return self.labels[pk]
