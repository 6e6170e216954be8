"""`etabli thumbnails`: make the thumbnails that images uploaded before they existed lack."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand

from etabli.core.management.common import ensure_migrated


class Command(BaseCommand):
    help = ("Make a thumbnail for every image document that has none (images uploaded before "
            "Établi made thumbnails, or restored from a backup). Safe to run again: documents "
            "that have one are left alone.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="Only count the images that lack a thumbnail.")

    def handle(self, *args, dry_run: bool = False, **options):
        from etabli.documents import checks
        from etabli.documents.models import IMAGE_CONTENT_TYPES, Document

        ensure_migrated()
        missing = (Document.objects.filter(content_type__in=IMAGE_CONTENT_TYPES)
                   .filter(thumbnail="").order_by("pk"))
        if dry_run:
            self.stdout.write(f"{missing.count()} image(s) without a thumbnail.")
            return
        made = skipped = 0
        for doc in missing.iterator(chunk_size=200):
            try:
                with doc.file.open("rb") as fh:
                    data = fh.read()
            except (OSError, ValueError) as exc:
                self.stderr.write(f"{doc.token} ({doc.original_name}): cannot read the file: "
                                  f"{exc}")
                skipped += 1
                continue
            thumb = checks.make_thumbnail(data)
            if thumb is None:
                skipped += 1
                continue
            doc.thumbnail.save(f"{doc.token}-thumb.jpg", ContentFile(thumb), save=False)
            Document.objects.filter(pk=doc.pk).update(thumbnail=doc.thumbnail.name)
            made += 1
        self.stdout.write(f"{made} thumbnail(s) made, {skipped} image(s) left without one.")
