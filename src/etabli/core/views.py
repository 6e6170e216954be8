from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.templatetags.static import static

from .web import role_home


@login_required
def home(request):
    """Each role lands on its own home page."""
    return redirect(role_home(request.user))


def favicon(request):
    """Browsers and tools that ask for /favicon.ico without reading the pages' icon link."""
    return redirect(static("core/favicon.svg"), permanent=True)
