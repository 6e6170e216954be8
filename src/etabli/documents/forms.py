"""Forms of the document pages (and what the upload forms elsewhere accept)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Visibility

ACCEPTED_FILES = ".jpg,.jpeg,.png,.webp,.pdf,.xlsx,.stl,.obj,.3dm"


def upload_help() -> str:
    return _("Photos (JPEG, PNG, WebP), PDFs, Excel workbooks (.xlsx) or CAD files (STL, OBJ, "
             "3DM), up to %(mb)s MB each.") % {"mb": settings.ETABLI_MAX_UPLOAD_MB}


class NewVersionForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("New version"),
                           widget=forms.ClearableFileInput(attrs={"accept": ACCEPTED_FILES}),
                           error_messages={"required": gettext_lazy("Choose a file.")})
    visibility = forms.ChoiceField(label=gettext_lazy("Who may see it"), required=False,
                                   choices=[("", gettext_lazy("As the version it replaces"))]
                                   + list(Visibility.choices))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = upload_help()


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(label=gettext_lazy("Who may see it"),
                                   choices=Visibility.choices)
