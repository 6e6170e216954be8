"""Forms of the piece pages: the dashboard/list filters and one small form per action.

The forms only parse what a person typed; the services decide what is allowed and say why not.
"""

from __future__ import annotations

import uuid

from django import forms
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from etabli.workshops.models import StepKind

from .models import ACTIVE_PIECE_STATUSES, HoldReason, PieceStatus

# ---------------------------------------------------------------------------------------------
# filters (the values are those of selectors.PieceFilters, so the query string is the API's)


def _attrs_html(attrs: dict) -> str:
    # django/forms/widgets/attrs.html, in Python.
    return "".join(f" {conditional_escape(k)}" if v is True else
                   f' {conditional_escape(k)}="{conditional_escape(str(v))}"'
                   for k, v in attrs.items() if v is not False)


class QuickSelect(forms.Select):
    """The HTML of Django's Select, without rendering two templates per option (the filter
    forms list every client: that was most of the dashboard's rendering time)."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        if any(group_name for group_name, _options, _index in widget["optgroups"]):
            return super().render(name, value, attrs, renderer)
        html = [f'<select name="{conditional_escape(widget["name"])}"'
                f'{_attrs_html(widget["attrs"])}>']
        for _group, options, _index in widget["optgroups"]:
            for o in options:
                html.append(f'\n  <option value="{conditional_escape(str(o["value"]))}"'
                            f'{_attrs_html(o["attrs"])}>{conditional_escape(o["label"])}'
                            f'</option>\n')
        html.append("\n</select>")
        return mark_safe("".join(html))  # noqa: S308 - every value above is escaped


class PieceFilterForm(forms.Form):
    """Only renders the filter fields; parsing goes through `selectors.PieceFilters`."""

    q = forms.CharField(label=_("Serial or order"), required=False,
                        widget=forms.TextInput(attrs={"type": "search"}))
    client_id = forms.TypedChoiceField(label=_("Client"), required=False, coerce=int,
                                       widget=QuickSelect)
    workshop_id = forms.TypedChoiceField(label=_("Workshop"), required=False, coerce=int,
                                         widget=QuickSelect)
    step = forms.ChoiceField(label=_("Step"), required=False, widget=QuickSelect)
    status = forms.ChoiceField(label=_("Status"), required=False, widget=QuickSelect)
    late = forms.BooleanField(label=_("Late only"), required=False)

    def __init__(self, data=None, *, clients=(), workshops=(), statuses=None, **kwargs):
        super().__init__(data, **kwargs)
        anything = [("", _("All"))]
        self.fields["client_id"].choices = anything + [(c.pk, c.name) for c in clients]
        self.fields["workshop_id"].choices = anything + [(w.pk, w.name) for w in workshops]
        self.fields["step"].choices = anything + list(StepKind.choices)
        statuses = statuses if statuses is not None else PieceStatus.choices
        self.fields["status"].choices = anything + list(statuses)
        self.fields["late"].widget.attrs["value"] = "true"


class DashboardFilterForm(PieceFilterForm):
    """The dashboard shows active pieces only: its status filter is "on hold" or nothing."""

    def __init__(self, data=None, **kwargs):
        super().__init__(data, statuses=[s for s in PieceStatus.choices
                                         if s[0] in ACTIVE_PIECE_STATUSES], **kwargs)
        del self.fields["q"]


# ---------------------------------------------------------------------------------------------
# actions on one piece


def _weight_field(label=None):
    return forms.DecimalField(
        label=label or _("Weight (g)"), required=False, max_digits=10, decimal_places=3,
        help_text=_("In grams, to the milligram (e.g. 12.345). Leave empty if not weighed."),
        widget=forms.NumberInput(attrs={"step": "0.001", "inputmode": "decimal"}))


def _comment_field(required=False, label=None):
    return forms.CharField(label=label or _("Comment"), required=required, max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 2}))


def _photo_field():
    return forms.FileField(
        label=_("Photo"), required=False,
        help_text=_("Optional: a JPEG, PNG or WebP photo."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))


class ActionForm(forms.Form):
    """Base of every action: a hidden id so a form sent twice records once."""

    client_event_id = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, prefix_action: str = "", **kwargs):
        kwargs.setdefault("auto_id", f"id_{prefix_action}_%s" if prefix_action else "id_%s")
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_event_id", uuid.uuid4().hex)


class ReceiveForm(ActionForm):
    weight_g = _weight_field(_("Weight on arrival (g)"))
    comment = _comment_field()
    photo = _photo_field()


class StartForm(ActionForm):
    comment = _comment_field()
    photo = _photo_field()


class CompleteForm(ActionForm):
    weight_g = _weight_field(_("Weight at the end of the step (g)"))
    comment = _comment_field()
    photo = _photo_field()


class SendForm(ActionForm):
    weight_g = _weight_field(_("Weight sent (g)"))
    comment = _comment_field()
    photo = _photo_field()


class HoldForm(ActionForm):
    reason = forms.ChoiceField(label=_("Reason"), choices=[("", "—")] + list(HoldReason.choices))
    comment = _comment_field(label=_("Comment (required for “Other”)"))
    photo = _photo_field()


class ReleaseForm(ActionForm):
    comment = _comment_field()


class ReworkForm(ActionForm):
    target_run_id = forms.TypedChoiceField(label=_("Back to step"), coerce=int)
    comment = _comment_field(required=True, label=_("What must be redone, and why"))
    photo = _photo_field()

    def __init__(self, *args, targets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_run_id"].choices = list(targets)


class NoteForm(ActionForm):
    comment = _comment_field(label=_("Note"))
    weight_g = _weight_field()
    photo = _photo_field()


ACTION_FORMS: dict[str, type[ActionForm]] = {
    "receive": ReceiveForm,
    "start": StartForm,
    "complete": CompleteForm,
    "send": SendForm,
    "hold": HoldForm,
    "release": ReleaseForm,
    "rework": ReworkForm,
    "note": NoteForm,
}
