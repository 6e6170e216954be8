from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from etabli.core.assets import AssetError, install


class Command(BaseCommand):
    help = "Fetch the front-end libraries (htmx, jsQR) from the npm registry into static files."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Download again even if present")

    def handle(self, *args, force=False, **options):
        try:
            written = install(settings.VENDOR_STATIC_DIR, force=force)
        except AssetError as exc:
            raise CommandError(str(exc)) from exc
        if written:
            self.stdout.write(f"Front-end libraries installed in {settings.VENDOR_STATIC_DIR}")
        elif options["verbosity"] > 1:
            self.stdout.write("Front-end libraries already up to date")
