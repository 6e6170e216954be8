"""Documents on S3-compatible storage, for real: moto's S3 server on a free local port, spoken to
over HTTP by boto3 through django-storages, as a deployment with ETABLI_S3_BUCKET would."""

from __future__ import annotations

import boto3
import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from moto.server import ThreadedMotoServer

from etabli.documents.services import document_new_version
from etabli.settings import s3_storage

from . import files

BUCKET = "etabli-documents"
KEYS = {"access_key_id": "testing", "secret_access_key": "testing-secret"}


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, settings):
    """The default storage swapped for the bucket, for this test only; the boto3 client to look
    inside the bucket."""
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id=KEYS["access_key_id"],
                          aws_secret_access_key=KEYS["secret_access_key"])
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(BUCKET, endpoint_url=s3_server, region="us-east-1", **KEYS),
    }
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def objects(client) -> dict[str, bytes]:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_documents_go_to_the_bucket_and_come_back_through_the_access_checked_view(s3, world,
                                                                                   _media):
    from .conftest import stored_files

    h, w = world.h, world
    assert default_storage.bucket_name == BUCKET
    before_local = stored_files(_media)
    photo_data = files.jpeg(size=(1200, 900))
    photo = w.upload("ring.jpg", photo_data, piece_id=w.piece1.pk)
    sheet = w.upload("sheet.pdf", files.pdf(), line_id=w.line1.pk, visibility="house")

    stored = objects(s3)
    key = f"documents/{w.order.pk}/{photo.token}"
    # under our random name, never the user's, and nothing written to the local disk
    assert stored[key] == photo_data
    assert stored[f"{key}-thumb"][:3] == b"\xff\xd8\xff"
    assert stored[f"documents/{w.order.pk}/{sheet.token}"] == files.pdf()
    assert not any("ring.jpg" in k or "sheet.pdf" in k for k in stored)
    assert stored_files(_media) == before_local
    # private objects: no public-read grant
    grants = s3.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
    assert not any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)

    # served through our view to those who may see it
    setter = Client()
    setter.force_login(h.setter_member)
    response = setter.get(reverse("document", args=[photo.token]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == photo_data
    assert response["X-Content-Type-Options"] == "nosniff"
    thumb = setter.get(reverse("document_thumb", args=[photo.token]))
    assert b"".join(thumb.streaming_content) == stored[f"{key}-thumb"]
    # and a 404 to those who may not
    assert setter.get(reverse("document", args=[sheet.token])).status_code == 404
    for user in (w.other_setter_member, h.client_contact, w.outsider):
        other = Client()
        other.force_login(user)
        assert other.get(reverse("document", args=[photo.token])).status_code == 404
        assert other.get(reverse("document_thumb", args=[photo.token])).status_code == 404

    # a new version is a new object; the old one stays
    v2 = document_new_version(actor=h.sales, document_id=sheet.pk,
                              uploaded_file=files.upload("sheet-v2.pdf", files.pdf("two")))
    stored = objects(s3)
    assert stored[f"documents/{w.order.pk}/{sheet.token}"] == files.pdf()
    assert stored[f"documents/{w.order.pk}/{v2.token}"] == files.pdf("two")


def test_a_refused_upload_leaves_nothing_in_the_bucket(s3, world):
    from etabli.core.errors import ValidationFailed

    before = objects(s3)
    with pytest.raises(ValidationFailed):
        world.upload("evil.jpg", files.jpeg() + b"<script>alert(1)</script>")
    assert objects(s3) == before


def test_settings_make_private_s3_storage():
    storage = s3_storage("bucket", endpoint_url="https://s3.example.net", region="fr-par",
                         access_key_id="AK", secret_access_key="SK")
    options = storage["OPTIONS"]
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert options["default_acl"] is None and options["querystring_auth"] is True
    assert options["file_overwrite"] is False and options["addressing_style"] == "path"
    assert (options["bucket_name"], options["endpoint_url"], options["region_name"]) == (
        "bucket", "https://s3.example.net", "fr-par")
    aws = s3_storage("bucket")["OPTIONS"]
    assert aws["endpoint_url"] is None and aws["addressing_style"] is None
