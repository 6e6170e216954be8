"""`ETABLI_HTTPS_PROXY`: behind a proxy that terminates HTTPS, the addresses Établi writes (QR
codes on job bags and slips) say https://."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import RequestFactory, override_settings

CODE = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'etabli.settings');"
        " django.setup(); from django.conf import settings;"
        " print(settings.SECURE_PROXY_SSL_HEADER)")


@pytest.mark.parametrize("value,expected", [
    ("true", "('HTTP_X_FORWARDED_PROTO', 'https')"),
    ("false", "None"),
    ("", "None"),
])
def test_the_setting_trusts_the_proxys_header_only_when_asked(tmp_path, value, expected):
    env = dict(os.environ, ETABLI_HTTPS_PROXY=value, ETABLI_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip() == expected


def test_an_address_written_behind_the_proxy_is_https():
    factory = RequestFactory()
    host = {"HTTP_HOST": "etabli.example.com"}  # as the proxy passes it on (no port)
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
                           ALLOWED_HOSTS=["etabli.example.com"]):
        request = factory.get("/", HTTP_X_FORWARDED_PROTO="https", **host)
        assert request.build_absolute_uri("/p/P26-000001/") == \
            "https://etabli.example.com/p/P26-000001/"
        plain = factory.get("/", **host)
        assert plain.build_absolute_uri("/p/P26-000001/") == \
            "http://etabli.example.com/p/P26-000001/"
