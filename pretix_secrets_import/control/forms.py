from django import forms
from django.utils.translation import gettext_lazy as _, pgettext_lazy

from pretix.base.forms import SettingsForm
from pretix.base.models import ItemVariation

from pretix_secrets_import import event_settings
from pretix_secrets_import.importing.columns import ColumnMapping, Source
from pretix_secrets_import.importing.files import ENCODINGS, MAX_UPLOAD_SIZE
from pretix_secrets_import.pool import format_change
from pretix_secrets_import.pool.rules import SECRET_MAX_LENGTH
from pretix_secrets_import.pool.store import starting_with
from pretix_secrets_import.pool.validation import clean_rows

# The settings' fields as declared in event_settings, collected by Django's form metaclass like declared ones.
_SettingsFields = type(SettingsForm)("_SettingsFields", (SettingsForm,), {
    **event_settings.form_fields(), "__module__": __name__,
})


class SecretsImportSettingsForm(_SettingsFields):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial = event_settings.show_blanks(self.initial)
        self.fields["secrets_import_products"].choices = [
            (str(item.pk), str(item.name)) for item in self.obj.items.all()
        ]
        self.initial["secrets_import_products"] = [str(pk) for pk in self.obj.settings.secrets_import_products]

    def clean_secrets_import_products(self):
        return [int(pk) for pk in self.cleaned_data["secrets_import_products"]]

    def clean(self):
        data = super().clean()
        data.update(event_settings.fill_blanks(data))
        if not self.errors:
            try:
                format_change.check_change(self.obj, {**self.obj.settings.freeze(), **data}, html=True)
            except forms.ValidationError as e:
                self.add_error(None, e)
        return data


def _restriction_choices(event):
    """Choices for the product (with variations) and date a secret may be restricted to."""
    items = [(str(i.pk), str(i)) for i in event.items.all()]
    variations = [
        (str(v.pk), f"{v.item} – {v.value}")
        for v in ItemVariation.objects.filter(item__event=event).select_related("item")
    ]
    subevents = [(str(s.pk), str(s)) for s in event.subevents.all()] if event.has_subevents else []
    return items, variations, subevents


# The filter value for secrets without that restriction. pretix' own page context reads ?subevent= as a date's ID and
# fails on anything else, so there it has to be a number.
UNRESTRICTED = {"item": "none", "subevent": "0"}


class PoolFilterForm(forms.Form):
    # A longer text cannot be part of a secret, and SQLite refuses LIKE patterns over 50,000 bytes with an error.
    search = forms.CharField(
        label=_("Search secret"), required=False, max_length=SECRET_MAX_LENGTH,
        help_text=_("Finds the secrets that begin with this text. Upper and lower case count."),
    )
    used = forms.ChoiceField(label=_("Status"), required=False, choices=[
        ("", _("All")), ("no", _("Unused")), ("yes", _("Used")),
    ])
    item = forms.ChoiceField(label=_("Product"), required=False)
    subevent = forms.ChoiceField(label=pgettext_lazy("subevent", "Date"), required=False)

    def __init__(self, *args, event, **kwargs):
        super().__init__(*args, **kwargs)
        items, _variations, subevents = _restriction_choices(event)
        self.fields["item"].choices = [("", _("All")), (UNRESTRICTED["item"], _("Any product"))] + items
        if event.has_subevents:
            self.fields["subevent"].choices = [
                ("", _("All")), (UNRESTRICTED["subevent"], pgettext_lazy("subevent", "Any date")),
            ] + subevents
        else:
            del self.fields["subevent"]

    def count_filters(self):
        """The filters as arguments of ``pool.count``; ``None`` for a search, which needs a query."""
        data = self.cleaned_data
        if data.get("search", "").strip():
            return None
        return {"used": {"yes": True, "no": False}.get(data.get("used")), **self.group_filters()}

    def group_filters(self):
        """The product and date chosen, as arguments of ``pool.count`` and ``pool.matching`` (0: "unrestricted")."""
        data = self.cleaned_data
        return {name: (0 if data.get(name) == UNRESTRICTED[name] else int(data[name]) if data.get(name) else None)
                for name in ("item", "subevent")}

    def group_labels(self):
        """``(field label, choice)`` of the product and date chosen, to say what the pool's counters count."""
        return [(self.fields[name].label, dict(self.fields[name].choices)[self.cleaned_data[name]])
                for name in ("item", "subevent") if self.cleaned_data.get(name)]

    def sellable_filters(self):
        """The product and date chosen, as arguments of ``sellable.sellable`` ("unrestricted" chooses none)."""
        return {name: int(value) if value and value != UNRESTRICTED[name] else None
                for name, value in ((name, self.cleaned_data.get(name)) for name in ("item", "subevent"))}

    def filter(self, qs):
        data = self.cleaned_data
        if data.get("search"):
            qs = starting_with(qs, data["search"].strip())
        if data.get("used"):
            qs = qs.filter(used=data["used"] == "yes")
        for name in ("item", "subevent"):
            if data.get(name) == UNRESTRICTED[name]:
                qs = qs.filter(**{f"{name}__isnull": True})
            elif data.get(name):
                qs = qs.filter(**{f"{name}_id": int(data[name])})
        return qs


class AddSecretForm(forms.Form):
    # Neither stripped nor limited here: the pool's rules trim the secret before they check its length, as for
    # every other way in.
    secret = forms.CharField(label=pgettext_lazy("ticket_secret", "Secret"), strip=False)
    item = forms.ChoiceField(label=_("Product"), required=False,
                             help_text=_("Leave empty if the secret may go to any product."))
    variation = forms.ChoiceField(label=_("Variation"), required=False)
    subevent = forms.ChoiceField(label=pgettext_lazy("subevent", "Date"), required=False)

    def __init__(self, *args, event, **kwargs):
        super().__init__(*args, **kwargs)
        self.event = event
        items, variations, subevents = _restriction_choices(event)
        self.fields["item"].choices = [("", _("Any product"))] + items
        self.fields["variation"].choices = [("", _("Any variation"))] + variations
        if event.has_subevents:
            self.fields["subevent"].choices = [("", pgettext_lazy("subevent", "Any date"))] + subevents
        else:
            del self.fields["subevent"]

    def clean(self):
        data = super().clean()
        data.update(event_settings.fill_blanks(data))
        if self.errors:
            return data  # a field is already invalid (e.g. no secret); the pool rules would only repeat it
        row = {name: int(data[name]) if data.get(name) else None for name in ("item", "variation", "subevent")}
        row["secret"] = data.get("secret")
        cleaned, errors = clean_rows(self.event, [row])
        for name, messages in errors[0].items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        self.row = cleaned[0]
        self.trimmed = self.row is not None and self.row["secret"] != row["secret"]
        return data


class UploadForm(forms.Form):
    file = forms.FileField(label=_("File"), help_text=_(
        "A CSV file (any delimiter and character encoding) or an Excel file (XLSX) with one secret per line."
    ))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".tsv", ".xlsx")):
            raise forms.ValidationError(_("Please upload a CSV or XLSX file."))
        if upload.size > MAX_UPLOAD_SIZE:
            raise forms.ValidationError(_("Please do not upload files larger than {size} MB.").format(
                size=MAX_UPLOAD_SIZE // 1024 // 1024))
        return upload


class ImportForm(forms.Form):
    """How to read the uploaded file and which column means what."""
    encoding = forms.ChoiceField(label=_("Character encoding"), choices=[(e, e) for e in ENCODINGS])
    delimiter = forms.ChoiceField(label=_("Column delimiter"), choices=[
        (",", _("Comma (,)")), (";", _("Semicolon (;)")), ("\t", _("Tab")), ("|", _("Vertical bar (|)")),
    ])
    has_header = forms.BooleanField(label=_("The first line holds column names"), required=False)
    secret = forms.ChoiceField(label=pgettext_lazy("ticket_secret", "Secret"))
    item = forms.ChoiceField(label=_("Product"), required=False)
    variation = forms.ChoiceField(label=_("Variation"), required=False)
    subevent = forms.ChoiceField(label=pgettext_lazy("subevent", "Date"), required=False)
    skip_existing = forms.BooleanField(
        label=_("Pass over secrets already in the pool"), required=False,
        help_text=_("For a list that has been imported before and has grown since: secrets that this event's pool "
                    "holds with the same product, variation and date are counted and left as they are. A secret "
                    "in the pool with another restriction, or used elsewhere in the organizer, is still an error."),
    )

    def __init__(self, *args, event, fmt, columns, **kwargs):
        super().__init__(*args, **kwargs)
        if fmt.kind == "xlsx":
            del self.fields["encoding"], self.fields["delimiter"]
        elif fmt.encoding not in dict(self.fields["encoding"].choices):
            self.fields["encoding"].choices = [*self.fields["encoding"].choices, (fmt.encoding, fmt.encoding)]
        column_choices = [(str(Source.column(index)), name) for index, name in enumerate(columns)]
        self.fields["secret"].choices = column_choices
        items, variations, subevents = _restriction_choices(event)
        fixed_choices = {"item": items, "variation": variations, "subevent": subevents}
        any_labels = {"item": _("Any product"), "variation": _("Any variation"),
                      "subevent": pgettext_lazy("subevent", "Any date")}
        for name, fixed in fixed_choices.items():
            self.fields[name].choices = [
                ("", any_labels[name]),
                (_("Column with an ID or name"), column_choices),
                (_("The same for every line"), [(str(Source.fixed(pk)), label) for pk, label in fixed]),
            ]
            self.fields[name].help_text = {
                "item": _("A column may hold product IDs or names (in any language or the internal name)."),
                "variation": _("A column may hold variation IDs or names."),
                "subevent": _("A column may hold date IDs, the start date (2030-12-31 or 31.12.2030) or start date "
                              "and time (2030-12-31 19:00 or 31.12.2030 19:00), or the name of the date."),
            }[name]
        if not event.has_subevents:
            del self.fields["subevent"]

    @staticmethod
    def initial_from(mapping: ColumnMapping) -> dict:
        """The form's values for a column mapping."""
        return {"secret": str(Source.column(mapping.secret)),
                **{name: str(source) if source else "" for name, source in mapping.restrictions()}}

    def mapping(self) -> ColumnMapping:
        data = self.cleaned_data
        return ColumnMapping(secret=Source.parse(data["secret"]).value, **{
            name: Source.parse(data[name]) if data.get(name) else None for name in ("item", "variation", "subevent")
        })
