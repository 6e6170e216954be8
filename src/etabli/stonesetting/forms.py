"""The forms of the setting pages: parse what a person typed, the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from etabli.materials.models import StoneShape, StoneType

from .models import SettingGroup, SettingType, StonePosition


def _decimal_input():
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})


def _count_input(**attrs):
    return forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off",
                                  "pattern": "[0-9]*", **attrs})


class RefForm(forms.Form):
    """A hidden one-time token: the same form sent twice does the work once."""

    client_ref = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


class GroupForm(RefForm):
    setting_type = forms.ChoiceField(label=gettext_lazy("Setting"),
                                     choices=[("", "—")] + list(SettingType.choices))
    position = forms.ChoiceField(label=gettext_lazy("Position on the piece"),
                                 choices=[("", "—")] + list(StonePosition.choices))
    count = forms.CharField(label=gettext_lazy("Number of stones"), max_length=12,
                            widget=_count_input())
    lot_id = forms.ChoiceField(
        label=gettext_lazy("From lot"), required=False,
        help_text=gettext_lazy("The stones are reserved for this piece in the vault; only "
                               "lots with free stones are listed."))
    stone_type = forms.ChoiceField(label=gettext_lazy("Stone"), required=False,
                                   choices=[("", "—")] + list(StoneType.choices),
                                   help_text=gettext_lazy("Taken from the lot when empty."))
    shape = forms.ChoiceField(label=gettext_lazy("Shape"), required=False,
                              choices=[("", "—")] + list(StoneShape.choices))
    size_mm = forms.CharField(label=gettext_lazy("Size (mm)"), required=False, max_length=12,
                              widget=_decimal_input())
    sieve = forms.CharField(label=gettext_lazy("Sieve"), required=False, max_length=20,
                            help_text=gettext_lazy("e.g. +6.5-7"))
    carats = forms.CharField(label=gettext_lazy("Carats (whole group)"), required=False,
                             max_length=20, widget=_decimal_input(),
                             help_text=gettext_lazy("Optional; to the thousandth."))
    supplied_by_client = forms.BooleanField(label=gettext_lazy("The client's own stones"),
                                            required=False)
    note = forms.CharField(label=gettext_lazy("Note for the setter"), required=False,
                           max_length=240)

    def __init__(self, *args, lots=(), keeper: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if keeper:
            self.fields["lot_id"].choices = [("", "—")] + [
                (lot.pk, lot_choice_label(lot)) for lot in lots]
        else:
            del self.fields["lot_id"]

    @classmethod
    def for_group(cls, group: SettingGroup, **kwargs) -> GroupForm:
        initial = {"setting_type": group.setting_type, "position": group.position,
                   "count": group.count, "lot_id": group.lot_id or "",
                   "stone_type": group.stone_type, "shape": group.shape,
                   "size_mm": group.size_mm or "", "sieve": group.sieve,
                   "carats": group.carats or "", "supplied_by_client": group.supplied_by_client,
                   "note": group.note}
        return cls(initial=initial | kwargs.pop("initial", {}), **kwargs)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("client_ref", None)
        if "lot_id" in data:
            data["lot_id"] = data["lot_id"] or None
        for name in ("stone_type", "shape", "size_mm", "carats"):
            data[name] = data.get(name) or None
        return data


def lot_choice_label(lot) -> str:
    size = f" {lot.size_mm} mm" if lot.size_mm else ""
    sieve = f" ({lot.sieve})" if lot.sieve else ""
    return _("%(number)s — %(stone)s, %(shape)s%(size)s%(sieve)s: %(free)s free") % {
        "number": lot.number, "stone": lot.get_stone_type_display(),
        "shape": lot.get_shape_display().lower(), "size": size, "sieve": sieve,
        "free": getattr(lot, "free_count", "?")}


class CheckForm(RefForm):
    stones_match = forms.BooleanField(
        label=gettext_lazy("The stones match the order (type, count, size, quality)"),
        required=False)
    preparation_checked = forms.BooleanField(
        label=gettext_lazy("Preparation checked: seats cut, prongs raised, piece clean"),
        required=False)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2}),
                           help_text=gettext_lazy("Required when the plan departs from the "
                                                  "order line's stone budget: say why."))


class ReopenForm(RefForm):
    reason = forms.CharField(label=gettext_lazy("Why must the checked plan change?"),
                             max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class MultiplePhotoInput(forms.ClearableFileInput):
    """Several photos at once; on a phone the camera opens."""

    allow_multiple_selected = True

    def __init__(self):
        super().__init__(attrs={"accept": "image/*", "capture": "environment"})


class PhotosField(forms.FileField):
    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultiplePhotoInput())
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        one = super().clean
        if isinstance(data, list | tuple):
            return [one(item, initial) for item in data if item]
        return [one(data, initial)] if data else []


class ControlForm(RefForm):
    """The receipt control: one count per group of the plan, stones secure, photos."""

    stones_secure = forms.ChoiceField(
        label=gettext_lazy("Stones secure (each stone tested with the tweezers)?"),
        choices=[("yes", gettext_lazy("Yes, all secure")),
                 ("no", gettext_lazy("No, some move"))],
        widget=forms.RadioSelect)
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, max_length=4000,
                            widget=forms.Textarea(attrs={"rows": 2}))
    photos = PhotosField(label=gettext_lazy("Photos"), required=False,
                         help_text=gettext_lazy("Take photos of the set stones with the phone, "
                                                "or choose them."))
    breakage_group = forms.ChoiceField(label=gettext_lazy("Broken or lost stones: group"),
                                       required=False)
    breakage_count = forms.CharField(label=gettext_lazy("How many"), required=False,
                                     max_length=12, widget=_count_input())
    breakage_lost = forms.BooleanField(label=gettext_lazy("Lost, not broken"), required=False)
    breakage_reason = forms.CharField(label=gettext_lazy("What happened"), required=False,
                                      max_length=240)

    def __init__(self, *args, groups=(), books_stones: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.groups = list(groups)
        for g in self.groups:
            self.fields[f"count_{g.pk}"] = forms.CharField(
                label=_("Group %(n)s: %(label)s — stones counted")
                % {"n": g.number, "label": getattr(g, "label", "")},
                max_length=12, widget=_count_input(placeholder=str(g.count)),
                help_text=_("Planned: %(count)s.") % {"count": g.count})
        ledgered = [g for g in self.groups if g.lot_id]
        if books_stones and ledgered:
            self.fields["breakage_group"].choices = [("", "—")] + [
                (g.pk, _("Group %(n)s") % {"n": g.number}) for g in ledgered]
        else:
            for name in ("breakage_group", "breakage_count", "breakage_lost", "breakage_reason"):
                del self.fields[name]

    def count_fields(self):
        return [self[f"count_{g.pk}"] for g in self.groups]

    def breakage_fields(self):
        return [self[name] for name in ("breakage_group", "breakage_count", "breakage_lost",
                                        "breakage_reason") if name in self.fields]

    def clean(self):
        data = super().clean()
        if data.get("breakage_group") and not data.get("breakage_count"):
            self.add_error("breakage_count", _("Say how many stones."))
        if data.get("breakage_count") and not data.get("breakage_group"):
            self.add_error("breakage_group", _("Say which group they were from."))
        return data

    def service_args(self) -> dict:
        data = self.cleaned_data
        breakages = []
        if data.get("breakage_group"):
            breakages.append({"group_id": data["breakage_group"],
                              "count": data["breakage_count"],
                              "lost": bool(data.get("breakage_lost")),
                              "reason": data.get("breakage_reason", "")})
        return {"stones_secure": data["stones_secure"] == "yes",
                "counts": [{"group_id": g.pk, "counted": data[f"count_{g.pk}"]}
                           for g in self.groups],
                "breakages": breakages, "notes": data.get("notes", ""),
                "photos": data.get("photos") or [],
                "client_ref": data.get("client_ref") or None}


def field_of(error_field: str, form: forms.Form) -> str | None:
    """The form field a service's error names (`counts[0].counted` → `count_<gid>`)."""
    if error_field in form.fields:
        return error_field
    if error_field.startswith("counts[") and isinstance(form, ControlForm):
        try:
            index = int(error_field[len("counts["):].split("]", 1)[0])
            return f"count_{form.groups[index].pk}"
        except (ValueError, IndexError):
            return None
    if error_field.startswith("breakages["):
        rest = error_field.split(".", 1)[-1]
        name = {"count": "breakage_count", "carats": "breakage_count",
                "reason": "breakage_reason", "group_id": "breakage_group",
                "lost": "breakage_lost"}.get(rest)
        return name if name in form.fields else None
    if error_field == "breakages":
        return "breakage_group" if "breakage_group" in form.fields else None
    return None
