from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path

from etabli.api import api


def home(request):
    return HttpResponseRedirect("/api/v1/docs")


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
