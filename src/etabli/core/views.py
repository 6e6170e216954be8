from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from .web import role_home


@login_required
def home(request):
    """Each role lands on its own home page."""
    return redirect(role_home(request.user))
