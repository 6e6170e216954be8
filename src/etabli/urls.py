from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from etabli.api import api
from etabli.core.api import api_not_found
from etabli.core.views import home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
]
