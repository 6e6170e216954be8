"""Forms of the order pages. They only parse input; every write goes through the services,
which have the last word (their refusals are put next to the field by `core.web.form_error`)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from etabli.clients.models import Channel, ClientKind
from etabli.documents.forms import ACCEPTED_FILES, upload_help
from etabli.documents.models import DocumentKind, Visibility
from etabli.production.models import SkipReason
from etabli.workshops.models import StepKind

from .models import LAUNCH_CHECKLIST, ChecklistSection, OrderStatus

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
BAD_DATE = _("Enter a date such as 2025-06-30.")


def _date_field(label, *, required: bool = False, help_text: str = "") -> forms.DateField:
    return forms.DateField(label=label, required=required, widget=DATE_INPUT,
                           help_text=help_text, input_formats=["%Y-%m-%d", "%d/%m/%Y"],
                           error_messages={"invalid": BAD_DATE})


class OrderFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100,
                        widget=forms.TextInput(attrs={
                            "type": "search",
                            "placeholder": _("Order, client, client ref. or piece serial")}))
    status = forms.ChoiceField(label=_("Status"), required=False)
    client = forms.TypedChoiceField(label=_("Client"), required=False, coerce=int,
                                    empty_value=None)

    def __init__(self, *args, clients=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("All statuses"))] + list(OrderStatus.choices)
        self.fields["client"].choices = [("", _("All clients"))] + [
            (c.pk, c.name) for c in clients]


class OrderHeaderForm(forms.Form):
    """What the launch sheet says about the order as a whole (step 1 of the intake)."""

    client_reference = forms.CharField(
        label=_("Client's reference"), required=False, max_length=60,
        help_text=_("The client's own purchase order number, if they gave one."))
    promised_date = _date_field(
        _("Promised date"),
        help_text=_("The date promised to the client. The launch checks it against the route."))
    route_template = forms.ChoiceField(
        label=_("Route"),
        help_text=_("The steps the pieces go through. Changing it replaces the order's route "
                    "(workshops chosen so far are reset)."))
    notes = forms.CharField(label=_("Notes"), required=False, max_length=8000,
                            widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, templates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["route_template"].choices = [(t.code, _(t.name)) for t in templates]


class OrderStartForm(OrderHeaderForm):
    """Step 1 of a new order: the client (existing or new) and the order's header."""

    client = forms.TypedChoiceField(label=_("Client"), required=False, coerce=int,
                                    empty_value=None)
    new_client_name = forms.CharField(label=_("Name"), required=False, max_length=160)
    new_client_code = forms.SlugField(
        label=_("Short code"), required=False, max_length=30,
        help_text=_("Letters, digits and dashes; made from the name if left empty."))
    new_client_kind = forms.ChoiceField(label=_("Kind"), choices=ClientKind.choices,
                                        initial=ClientKind.B2B, required=False)
    new_client_channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices,
                                           initial=Channel.DIRECT, required=False)
    new_client_email = forms.EmailField(label=_("E-mail"), required=False)
    new_client_phone = forms.CharField(label=_("Phone"), required=False, max_length=40)

    field_order = ["client", "new_client_name", "new_client_code", "new_client_kind",
                   "new_client_channel", "new_client_email", "new_client_phone",
                   "client_reference", "promised_date", "route_template", "notes"]

    def __init__(self, *args, clients=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["client"].choices = [("", _("— choose a client —"))] + [
            (c.pk, c.name) for c in clients]

    def clean(self):
        data = super().clean()
        existing, new_name = data.get("client"), (data.get("new_client_name") or "").strip()
        if existing and new_name:
            self.add_error("client", _("Choose an existing client or create a new one, "
                                       "not both."))
        elif not existing and not new_name and "client" not in self.errors:
            self.add_error("client", _("Choose the client, or give the name of a new client "
                                       "below."))
        return data


class LineForm(forms.Form):
    description = forms.CharField(
        label=_("Description"), max_length=240,
        error_messages={"required": _("Describe the piece (e.g. 'Solitaire ring, 1 ct').")})
    model_reference = forms.CharField(
        label=_("Catalogue model"), required=False, max_length=60,
        help_text=_("The model reference; leave empty for a custom design."))
    is_custom_design = forms.BooleanField(label=_("Custom design"), required=False)
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=1, max_value=500, initial=1,
        error_messages={"min_value": _("Quantity is a whole number between 1 and 500."),
                        "max_value": _("Quantity is a whole number between 1 and 500."),
                        "invalid": _("Quantity is a whole number between 1 and 500."),
                        "required": _("Quantity is a whole number between 1 and 500.")})
    size = forms.CharField(label=_("Size"), required=False, max_length=30,
                           help_text=_("Ring size, chain length, …"))
    alloy = forms.ChoiceField(
        label=_("Alloy"), required=False,
        error_messages={"invalid_choice": _("Choose one of the alloys in the list.")})
    stones = forms.CharField(label=_("Stones"), required=False, max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Type, size, count, quality."))
    customisations = forms.CharField(label=_("Customisations"), required=False,
                                     max_length=4000, widget=forms.Textarea(attrs={"rows": 2}),
                                     help_text=_("Engraving, finish, special requests."))
    specifications = forms.CharField(label=_("Specifications"), required=False, max_length=8000,
                                     widget=forms.Textarea(attrs={"rows": 2}))
    target_price = forms.DecimalField(
        label=_("Target price"), required=False, min_value=0, max_digits=12, decimal_places=2,
        error_messages={"min_value": _("The target price cannot be negative."),
                        "invalid": _("Enter an amount such as 1200.00.")})

    budget_metal_g = forms.DecimalField(
        label=_("Metal budget per piece (g)"), required=False, min_value=Decimal("0.001"),
        max_digits=7, decimal_places=3,
        error_messages={"invalid": _("Enter a weight in grams such as 6.5."),
                        "min_value": _("The budget is more than 0 g.")})
    budget_stone_count = forms.IntegerField(
        label=_("Stones per piece"), required=False, min_value=0, max_value=100000,
        error_messages={"invalid": _("The stone budget is a whole number of stones.")})
    budget_stone_ct = forms.DecimalField(
        label=_("Stone carats per piece"), required=False, min_value=Decimal("0.001"),
        max_digits=8, decimal_places=3,
        error_messages={"invalid": _("Enter carats such as 0.75.")})

    def __init__(self, *args, alloys=(), show_price: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["alloy"].choices = [("", _("— not chosen yet —"))] + [
            (a.code, _(a.name)) for a in alloys]
        if not show_price:
            del self.fields["target_price"]

    def service_data(self) -> dict:
        """The cleaned values as the line services take them."""
        d = self.cleaned_data
        data = {name: d.get(name) or "" for name in (
            "description", "model_reference", "size", "alloy", "stones", "customisations",
            "specifications")}
        data["is_custom_design"] = bool(d.get("is_custom_design"))
        data["quantity"] = d["quantity"]
        for name in ("budget_metal_g", "budget_stone_count", "budget_stone_ct"):
            value = d.get(name)
            data[name] = "" if value is None else str(value)
        if "target_price" in self.fields:
            price = d.get("target_price")
            data["target_price"] = "" if price is None else str(price)
        return data


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple) and data:
            files = [single(d, initial) for d in data]
        else:
            files = [single(data or None, initial)]
        return [f for f in files if f]


class DocumentUploadForm(forms.Form):
    files = MultipleFileField(
        label=_("Files"),
        widget=MultipleFileInput(attrs={"multiple": True, "accept": ACCEPTED_FILES}),
        error_messages={"required": _("Choose at least one file.")})
    kind = forms.ChoiceField(label=_("What it is"), choices=DocumentKind.choices,
                             initial=DocumentKind.REFERENCE_PHOTO)
    line = forms.TypedChoiceField(label=_("For"), required=False, coerce=int, empty_value=None)
    visibility = forms.ChoiceField(label=_("Who may see it"), choices=Visibility.choices,
                                   initial=Visibility.WORKSHOPS)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["files"].help_text = upload_help() + " " + str(
            _("You can choose several at once."))
        if lines:
            self.fields["line"].choices = [("", _("The whole order"))] + [
                (line.pk, f"{line.position}. {line.description}") for line in lines]
        else:
            del self.fields["line"]


class RouteStepForm(forms.Form):
    workshop = forms.TypedChoiceField(label=_("Workshop"), required=False, coerce=int,
                                      empty_value=None)
    planned_days = forms.IntegerField(
        label=_("Planned days"), min_value=1, max_value=120,
        error_messages={"min_value": _("Planned days are between 1 and 120."),
                        "max_value": _("Planned days are between 1 and 120."),
                        "invalid": _("Planned days are between 1 and 120.")})

    def __init__(self, *args, workshops=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop"].choices = [("", _("— choose a workshop —"))] + [
            (w.pk, w.name) for w in workshops]


class RouteSkipForm(forms.Form):
    reason = forms.ChoiceField(label=_("Why skip it"),
                               error_messages={"invalid_choice": _(
                                   "Choose one of the reasons in the list.")})
    comment = forms.CharField(label=_("Comment"), required=False, max_length=4000)
    reference = forms.CharField(
        label=_("Document reference"), required=False, max_length=200,
        help_text=_("E.g. the reference of the client's signed acceptance of the risk."))
    document = forms.TypedChoiceField(
        label=_("Client's written acceptance"), required=False, coerce=int, empty_value=None,
        help_text=_("Needed when the client accepts the risk: upload the signed document to "
                    "the order's documents, then choose it here."))

    def __init__(self, *args, step: str = "", documents=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = list(SkipReason.choices)
        if step == StepKind.PROTOTYPING:
            # Only three reasons allow skipping the prototype (DESIGN.md).
            choices = [c for c in choices if c[0] != SkipReason.OTHER]
            self.fields["document"].choices = [("", _("— none —"))] + [
                (d.pk, d.original_name) for d in documents]
        else:
            del self.fields["document"]
        self.fields["reason"].choices = [("", _("— choose —"))] + choices


SECTION_ORDER = [ChecklistSection.FEASIBILITY, ChecklistSection.INFORMATION,
                 ChecklistSection.COMMERCIAL]


class ChecklistForm(forms.Form):
    """The launch sheet's twelve items: a checkbox and a note each."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for code, _section, label in LAUNCH_CHECKLIST:
            self.fields[code] = forms.BooleanField(label=label, required=False)
            self.fields[f"{code}_note"] = forms.CharField(
                label=_("Note"), required=False, max_length=2000)


class LaunchForm(forms.Form):
    override_reason = forms.CharField(
        label=_("Why launch with this date anyway"), required=False, max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Recorded on the order. Only needed when the promised date is earlier "
                    "than the earliest realistic date."))


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Why cancel this order"), max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": _("Say why the order is cancelled.")})


class ChangeRequestForm(forms.Form):
    description = forms.CharField(
        label=_("Change asked for"), max_length=8000, widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Describe the change asked for.")})


class AssessForm(forms.Form):
    impact_days = forms.IntegerField(
        label=_("Impact (days)"), min_value=-365, max_value=365,
        help_text=_("How many days the plan moves if the change is approved (negative: "
                    "earlier)."),
        error_messages={"required": _("Give the impact in days (0 if none)."),
                        "min_value": _("Impact is a number of days between -365 and 365."),
                        "max_value": _("Impact is a number of days between -365 and 365."),
                        "invalid": _("Impact is a number of days between -365 and 365.")})
    new_promised_date = _date_field(
        _("New promised date"),
        help_text=_("Leave empty to move the promised date by the impact."))
    assessment = forms.CharField(label=_("Assessment"), required=False, max_length=8000,
                                 widget=forms.Textarea(attrs={"rows": 2}))


class DecideForm(forms.Form):
    comment = forms.CharField(label=_("Comment"), required=False, max_length=8000)
