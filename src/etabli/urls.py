from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path, re_path

from etabli.api import api
from etabli.core.api import api_not_found


def home(request):
    return HttpResponseRedirect("/api/v1/docs")


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]
