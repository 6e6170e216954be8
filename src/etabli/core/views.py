from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def home(request):
    return render(request, "core/home.html", {"house_name": settings.ETABLI_HOUSE_NAME})
