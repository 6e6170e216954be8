"""Forms of the quality pages. They only parse what a person typed: numbers stay text here so
the services check them (and say why) the same way for the pages and the API."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import (
    CRITERION_ORDER,
    TOLERANCES,
    CriterionKind,
    FinenessMethod,
    FunctionResult,
    PhotoMoment,
    RootCause,
)
from .services import MAX_DIMENSIONS

BLANK_DIMENSION_ROWS = 3


def _number(label, *, step: str, help_text: str = "", mode: str = "decimal"):
    return forms.CharField(
        label=label, required=False, help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": mode, "autocomplete": "off",
                                      "data-step": step, "class": "num"}))


class MeasurementForm(forms.Form):
    """Everything an inspector measures; the dimension rows are `dimensions.N.name` etc., the
    names the services use when they point at a field."""

    theoretical_weight_g = _number(_("Theoretical weight (g)"), step="0.001",
                                   help_text=_("Only when the piece has none."))
    measured_weight_g = _number(_("Measured weight (g)"), step="0.001",
                                help_text=_("On the scale, to the milligram."))
    fineness_method = forms.ChoiceField(label=_("Fineness test"), required=False,
                                        choices=[("", "—")] + list(FinenessMethod.choices))
    fineness_reading_permille = _number(_("Fineness reading (‰)"), step="0.1")
    surface_defects = _number(_("Visible defects under the loupe"), step="1", mode="numeric")
    stones_mechanical_test = forms.ChoiceField(
        label=_("Stones: mechanical test"), required=False,
        choices=[("", "—"), ("yes", _("Passed")), ("no", _("Failed"))])
    loose_stones = _number(_("Loose stones"), step="1", mode="numeric")
    function_result = forms.ChoiceField(label=_("Clasps and hinges"), required=False,
                                        choices=[("", "—")] + list(FunctionResult.choices))
    notes = forms.CharField(label=_("Notes"), required=False, max_length=4000,
                            widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, data=None, *, rows: int = BLANK_DIMENSION_ROWS, stones: bool = True,
                 weight_editable: bool = True, **kwargs):
        super().__init__(data, **kwargs)
        self.row_count = min(rows, MAX_DIMENSIONS)
        for i in range(self.row_count):
            self.fields[f"dimensions.{i}.name"] = forms.CharField(
                label=_("Dimension"), required=False, max_length=60)
            self.fields[f"dimensions.{i}.target_mm"] = _number(_("Target (mm)"), step="0.001")
            self.fields[f"dimensions.{i}.measured_mm"] = _number(_("Measured (mm)"),
                                                                 step="0.001")
        if not stones:
            del self.fields["stones_mechanical_test"]
            del self.fields["loose_stones"]
        if not weight_editable:
            self.fields["theoretical_weight_g"].disabled = True
            self.fields["theoretical_weight_g"].help_text = _(
                "The piece's theoretical weight: it is changed on the piece, not here.")

    @staticmethod
    def initial_for(ins, dims) -> dict:
        def text(v):
            return "" if v is None else str(v)

        initial = {
            "theoretical_weight_g": text(ins.theoretical_weight_g),
            "measured_weight_g": text(ins.measured_weight_g),
            "fineness_method": ins.fineness_method,
            "fineness_reading_permille": text(ins.fineness_reading_permille),
            "surface_defects": text(ins.surface_defects),
            "stones_mechanical_test": {True: "yes", False: "no"}.get(ins.stones_mechanical_test,
                                                                    ""),
            "loose_stones": text(ins.loose_stones),
            "function_result": ins.function_result, "notes": ins.notes,
        }
        for i, d in enumerate(dims):
            initial |= {f"dimensions.{i}.name": d.name,
                        f"dimensions.{i}.target_mm": text(d.target_mm),
                        f"dimensions.{i}.measured_mm": text(d.measured_mm)}
        return initial

    def dimension_rows(self):
        return [(self[f"dimensions.{i}.name"], self[f"dimensions.{i}.target_mm"],
                 self[f"dimensions.{i}.measured_mm"]) for i in range(self.row_count)]

    def measurements(self) -> dict:
        """The keyword arguments of services.inspection_measure (after is_valid)."""
        data = self.cleaned_data
        test = data.get("stones_mechanical_test", "")
        values = {
            "measured_weight_g": data.get("measured_weight_g") or None,
            "fineness_method": data.get("fineness_method", ""),
            "fineness_reading_permille": data.get("fineness_reading_permille") or None,
            "surface_defects": data.get("surface_defects") or None,
            "stones_mechanical_test": {"yes": True, "no": False}.get(test),
            "loose_stones": data.get("loose_stones") or None,
            "function_result": data.get("function_result", ""),
            "notes": data.get("notes", ""),
            "dimensions": [{"name": data.get(f"dimensions.{i}.name", ""),
                            "target_mm": data.get(f"dimensions.{i}.target_mm") or None,
                            "measured_mm": data.get(f"dimensions.{i}.measured_mm") or None}
                           for i in range(self.row_count)],
        }
        if not self.fields["theoretical_weight_g"].disabled:
            values["theoretical_weight_g"] = data.get("theoretical_weight_g") or None
        # "0" defects or loose stones is a measure, not an empty field.
        for name in ("surface_defects", "loose_stones"):
            if data.get(name, "").strip() == "0":
                values[name] = 0
        return values


class NewInspectionForm(forms.Form):
    template_id = forms.TypedChoiceField(label=_("Template"), coerce=int, required=False,
                                         empty_value=None)

    def __init__(self, data=None, *, templates=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["template_id"].choices = [(t.pk, t.name) for t in templates]


class PhotoForm(forms.Form):
    moment = forms.ChoiceField(label=_("When"), choices=PhotoMoment.choices)
    file = forms.ImageField(label=_("Photo"),
                            widget=forms.ClearableFileInput(attrs={"accept": "image/*",
                                                                   "capture": "environment"}))
    client_ref = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["client_ref"] = uuid.uuid4().hex


class SignForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I inspected this piece myself and sign these results. Once signed, they "
                "cannot change."), required=True)


class CauseForm(forms.Form):
    root_cause = forms.ChoiceField(label=_("Root cause"),
                                   choices=[("", "—")] + list(RootCause.choices))
    corrective_action = forms.CharField(label=_("Corrective action"), max_length=4000,
                                        widget=forms.Textarea(attrs={"rows": 3}))


class ReworkForm(forms.Form):
    target_run_id = forms.TypedChoiceField(label=_("Step that redoes the work"), coerce=int)
    comment = forms.CharField(label=_("Instructions for the workshop"), required=False,
                              max_length=3000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, data=None, *, targets=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["target_run_id"].choices = list(targets)


class TemplateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(label=_("Description"), required=False, max_length=4000,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    is_active = forms.BooleanField(label=_("Active (offered for new inspections)"),
                                   required=False)

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        for kind in CRITERION_ORDER:
            label = CriterionKind(kind).label
            self.fields[f"criteria.{kind}.enabled"] = forms.BooleanField(
                label=_("Check %(criterion)s") % {"criterion": str(label).lower()},
                required=False)
            if kind in TOLERANCES:
                # xgettext:no-python-format
                unit = {"%": _("± % of the theoretical weight"),
                        "mm": _("± mm per dimension"),
                        "defects": _("visible defects allowed")}[TOLERANCES[kind]["unit"]]
                self.fields[f"criteria.{kind}.tolerance"] = _number(
                    _("%(criterion)s tolerance") % {"criterion": label}, step="0.001",
                    help_text=unit)

    @staticmethod
    def initial_for(template) -> dict:
        initial = {"name": template.name, "description": template.description,
                   "is_active": template.is_active}
        for c in template.criteria.all():
            initial[f"criteria.{c.kind}.enabled"] = c.enabled
            if c.kind in TOLERANCES and c.tolerance is not None:
                step = Decimal(1).scaleb(-TOLERANCES[c.kind]["places"])
                initial[f"criteria.{c.kind}.tolerance"] = str(c.tolerance.quantize(step))
        return initial

    def criteria_rows(self):
        return [(CriterionKind(k).label, self[f"criteria.{k}.enabled"],
                 self[f"criteria.{k}.tolerance"] if k in TOLERANCES else None)
                for k in CRITERION_ORDER]

    def criteria(self) -> list[dict]:
        data = self.cleaned_data
        rows = []
        for kind in CRITERION_ORDER:
            row = {"kind": kind, "enabled": bool(data.get(f"criteria.{kind}.enabled"))}
            if kind in TOLERANCES:
                row["tolerance"] = data.get(f"criteria.{kind}.tolerance") or None
            rows.append(row)
        return rows


class TemplateCreateForm(forms.Form):
    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=120)
    copy_from_id = forms.TypedChoiceField(label=_("Copy the criteria of"), coerce=int)

    def __init__(self, data=None, *, templates=(), **kwargs):
        super().__init__(data, **kwargs)
        self.fields["copy_from_id"].choices = [(t.pk, t.name) for t in templates]
