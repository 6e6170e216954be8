from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DocumentKind(models.TextChoices):
    REFERENCE_PHOTO = "reference_photo", _("Reference photo")
    PHOTO = "photo", _("Photo")
    CAD = "cad", _("CAD file")
    RENDER = "render", _("Render")
    SPECIFICATION = "specification", _("Specification")
    TECHNICAL_SHEET = "technical_sheet", _("Technical sheet")
    MATERIAL_SPEC = "material_spec", _("Material specification")
    CERTIFICATE = "certificate", _("Certificate")
    WARRANTY = "warranty", _("Warranty")
    CLIENT_ACCEPTANCE = "client_acceptance", _("Client's written acceptance")
    OTHER = "other", _("Other document")


# What designers attach to an order or a line (DESIGN.md, step 2); other documents on an order
# come from the order roles.
DESIGN_KINDS = frozenset({DocumentKind.CAD, DocumentKind.RENDER, DocumentKind.TECHNICAL_SHEET,
                          DocumentKind.MATERIAL_SPEC})


class Visibility(models.TextChoices):
    HOUSE = "house", _("House only")
    WORKSHOPS = "workshops", _("House and the workshops on the route")
    CLIENT = "client", _("House, workshops and the client")


class DocumentQuerySet(models.QuerySet):
    def visible_to(self, user) -> DocumentQuerySet:
        """The one place that says who sees which document (every version is checked alone).

        House staff see every document. A workshop member sees the documents marked for the
        workshops (or the client) of the pieces whose route passes through one of their
        workshops — for a line's or an order's documents, when a piece of that line or order
        does — but never a photo taken at another workshop's event. A client contact sees the
        documents shared with the client on their own orders.
        """
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if user.sees_clients:
            return self
        if user.role == Role.WORKSHOP:
            from etabli.production.models import EventKind, StepRun, StepStatus

            ids = user.workshop_ids()
            runs = StepRun.objects.filter(workshop_id__in=ids).exclude(status=StepStatus.SKIPPED)
            on_route = (Q(piece_id__in=runs.values("piece_id"))
                        | Q(piece__isnull=True, line__isnull=False,
                            line_id__in=runs.values("piece__line_id"))
                        | Q(piece__isnull=True, line__isnull=True,
                            order_id__in=runs.values("piece__order_id")))
            # An event's photos are seen where the event is seen (production.selectors.
            # piece_events): at the workshop it happened at, or where a sent piece is going.
            own_events = (Q(event__isnull=True) | Q(event__workshop_id__in=ids)
                          | Q(event__kind=EventKind.SENT, event__transfer__to_workshop_id__in=ids))
            return self.filter(Q(visibility__in=[Visibility.WORKSHOPS, Visibility.CLIENT])
                               & on_route & own_events)
        if user.role == Role.CLIENT:
            return self.filter(visibility=Visibility.CLIENT, order__client_id=user.client_id)
        return self.none()


def _upload_to(instance: Document, filename: str) -> str:
    # The stored name never comes from the user: no path tricks, no executable extensions.
    return f"documents/{instance.order_id}/{instance.token}"


def _thumbnail_to(instance: Document, filename: str) -> str:
    return f"documents/{instance.order_id}/{instance.token}-thumb"


class Document(models.Model):
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="documents",
                              verbose_name=_("order"))
    line = models.ForeignKey("orders.OrderLine", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="documents", verbose_name=_("order line"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="documents", verbose_name=_("piece"))
    event = models.ForeignKey("production.TrackingEvent", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="documents",
                              verbose_name=_("event"))
    kind = models.CharField(max_length=20, choices=DocumentKind.choices,
                            default=DocumentKind.OTHER, verbose_name=_("kind"))
    visibility = models.CharField(max_length=10, choices=Visibility.choices,
                                  default=Visibility.WORKSHOPS, verbose_name=_("visibility"))
    token = models.CharField(max_length=40, unique=True, verbose_name=_("token"))
    file = models.FileField(upload_to=_upload_to, max_length=200, verbose_name=_("file"))
    original_name = models.CharField(max_length=200, verbose_name=_("original name"))
    content_type = models.CharField(max_length=100, verbose_name=_("content type"))
    size_bytes = models.PositiveBigIntegerField(verbose_name=_("size bytes"))
    sha256 = models.CharField(max_length=64, verbose_name=_("sha256"))
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("uploaded by"))
    uploaded_at = models.DateTimeField(auto_now_add=True, verbose_name=_("uploaded at"))
    thumbnail = models.FileField(upload_to=_thumbnail_to, max_length=200, blank=True,
                                 verbose_name=_("thumbnail"))
    # Versions: a revised document is a new row; the old ones stay. `family` is the first
    # version's token, shared by every version of the document.
    family = models.CharField(max_length=40, db_index=True, verbose_name=_("family"))
    version = models.PositiveIntegerField(default=1, verbose_name=_("version"))
    # RESTRICT, not PROTECT: one version alone cannot be deleted from under the next, but a
    # whole order (or line) goes with all its versions.
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.RESTRICT,
                                    related_name="replaced_by",
                                    verbose_name=_("replaces"))
    is_current = models.BooleanField(default=True, verbose_name=_("is current"))

    objects = DocumentQuerySet.as_manager()

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["order", "uploaded_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["family", "version"],
                                    name="document_one_number_per_version",
                                    violation_error_message=_(
                                        "This version of the document exists already.")),
            models.UniqueConstraint(fields=["family"], condition=Q(is_current=True),
                                    name="document_one_current_version",
                                    violation_error_message=_(
                                        "A document has one current version.")),
            models.CheckConstraint(condition=Q(version__gte=1), name="document_version_positive"),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_CONTENT_TYPES

    @property
    def is_pdf(self) -> bool:
        return self.content_type == "application/pdf"

    @property
    def served_inline(self) -> bool:
        """Images and PDFs open in the browser (with nosniff and a sandbox); everything else
        downloads."""
        return self.is_image or self.is_pdf


IMAGE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
