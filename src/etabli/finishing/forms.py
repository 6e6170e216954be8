"""The small forms of the finishing panels: one per operation, a waiver, the assay office's
step, and the hallmark exemptions. Each carries a one-time `client_ref` made when the page is
drawn, so a second tap records nothing new."""

from __future__ import annotations

import re
import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from etabli.materials.models import Metal

from . import services
from .models import CleaningMethod, EngravingPosition, Finish, RecordOperation, RecordStatus


def new_ref() -> str:
    return uuid.uuid4().hex


class RecordForm(forms.Form):
    client_ref = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    comment = forms.CharField(label=_("Comment"), required=False, max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def data_for_service(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k not in ("client_ref", "comment")}


class PolishingForm(RecordForm):
    finish = forms.ChoiceField(label=_("Finish"), choices=Finish.choices,
                               widget=forms.RadioSelect)
    field_order = ["finish", "comment"]


class PlatingForm(RecordForm):
    thickness_um = forms.CharField(
        label=_("Rhodium thickness (µm)"), max_length=10,
        help_text=_("%(min)s to %(max)s µm; a usual flash is 0.10 to 0.50.")
        % {"min": services.PLATING_MIN_UM, "max": services.PLATING_MAX_UM},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    field_order = ["thickness_um", "comment"]

    def clean_thickness_um(self):
        return self.cleaned_data["thickness_um"].strip().replace(",", ".")


class EngravingForm(RecordForm):
    text = forms.CharField(label=_("Text engraved"), max_length=services.ENGRAVING_MAX_CHARS,
                           help_text=_("As engraved, at most %(n)s characters.")
                           % {"n": services.ENGRAVING_MAX_CHARS},
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))
    position = forms.ChoiceField(label=_("Where"), choices=EngravingPosition.choices)
    field_order = ["text", "position", "comment"]


class SerialEngravingForm(RecordForm):
    text = forms.CharField(label=_("Serial engraved"), max_length=services.SERIAL_MAX_CHARS,
                           required=False, help_text=_("The piece's serial unless you change it."),
                           widget=forms.TextInput(attrs={"autocomplete": "off",
                                                         "autocapitalize": "characters"}))
    position = forms.ChoiceField(label=_("Where"), required=False,
                                 choices=[("", "—")] + list(EngravingPosition.choices))
    field_order = ["text", "position", "comment"]


HALLMARK_CHOICES = [
    (RecordStatus.DONE, _("Marks struck")),
    (RecordStatus.EXEMPT, _("Exempt (under the weight threshold)")),
    (RecordStatus.REFUSED, _("Refused by the assay office")),
]


class HallmarkingForm(RecordForm):
    status = forms.ChoiceField(label=_("Outcome"), choices=HALLMARK_CHOICES,
                               widget=forms.RadioSelect, initial=RecordStatus.DONE)
    maker_mark = forms.CharField(label=_("Maker's mark"), required=False,
                                 max_length=services.MAKER_MARK_MAX_CHARS,
                                 help_text=_("Its initials and symbol, as registered."))
    fineness_mark = forms.CharField(label=_("Fineness mark"), required=False, max_length=10,
                                    widget=forms.TextInput(attrs={"readonly": True}),
                                    help_text=_("From the alloy."))
    reason = forms.CharField(label=_("Why refused"), required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("The piece goes on hold (quality stop)."))
    field_order = ["status", "maker_mark", "fineness_mark", "reason", "comment"]


class CleaningForm(RecordForm):
    method = forms.ChoiceField(label=_("Method"), choices=CleaningMethod.choices,
                               widget=forms.RadioSelect)
    field_order = ["method", "comment"]


OPERATION_FORMS: dict[str, type[RecordForm]] = {
    RecordOperation.POLISHING: PolishingForm,
    RecordOperation.PLATING: PlatingForm,
    RecordOperation.ENGRAVING: EngravingForm,
    RecordOperation.SERIAL_ENGRAVING: SerialEngravingForm,
    RecordOperation.HALLMARKING: HallmarkingForm,
    RecordOperation.CLEANING: CleaningForm,
}

_QUOTED = re.compile(r"['‘’\"“”«]\s*([^'‘’\"“”»]{1,60}?)\s*['‘’\"“”»]")


def suggested_engraving(customisations: str) -> str:
    """The quoted words of the order line's customisations ("Engraving inside: 'Toujours'")."""
    match = _QUOTED.search(customisations or "")
    text = match.group(1).strip() if match else ""
    return text if len(text) <= services.ENGRAVING_MAX_CHARS else ""


def blank_form(operation: str, piece, requirement=None) -> RecordForm:
    """The form drawn for `operation` on `piece`, with what the house already knows."""
    initial: dict = {"client_ref": new_ref()}
    if operation == RecordOperation.ENGRAVING:
        initial["text"] = suggested_engraving(piece.line.customisations)
        initial["position"] = EngravingPosition.INSIDE_BAND
    elif operation == RecordOperation.SERIAL_ENGRAVING:
        initial["text"] = piece.serial
    elif operation == RecordOperation.HALLMARKING and requirement is not None:
        initial["fineness_mark"] = requirement.fineness_mark
        initial["status"] = RecordStatus.DONE if requirement.required else RecordStatus.EXEMPT
    return OPERATION_FORMS[operation](prefix=operation, initial=initial)


class WaiveForm(forms.Form):
    client_ref = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    operation = forms.ChoiceField(label=_("Operation"), choices=())
    reason = forms.CharField(label=_("Why it is not done"), max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, operations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operation"].choices = [(op, RecordOperation(op).label)
                                            for op in operations]


class AssayStepForm(forms.Form):
    workshop_id = forms.TypedChoiceField(label=_("Assay office"), coerce=int, choices=())

    def __init__(self, *args, offices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop_id"].choices = [(w.pk, w.name) for w in offices]


class ExemptionForm(forms.Form):
    country = forms.CharField(label=_("Country"), max_length=8,
                              help_text=_("Two-letter ISO code: FR, GB, …"))
    metal = forms.ChoiceField(label=_("Metal"), choices=Metal.choices)
    under_weight_g = forms.CharField(
        label=_("Exempt under (g)"), max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    legal_reference = forms.CharField(label=_("Legal reference"), required=False,
                                      max_length=200)

    def clean_under_weight_g(self):
        return self.cleaned_data["under_weight_g"].strip().replace(",", ".")


class ExemptionEditForm(forms.Form):
    under_weight_g = forms.CharField(
        label=_("Exempt under (g)"), max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    legal_reference = forms.CharField(label=_("Legal reference"), required=False,
                                      max_length=200)

    def clean_under_weight_g(self):
        return self.cleaned_data["under_weight_g"].strip().replace(",", ".")
